"""The event store on PostgreSQL: per-turn append rate and rebuild rate, at 100k and 1M events.

    export STORYBOT_TEST_POSTGRES_URL=$(.ci/postgres start)
    .venv/bin/python bench/store_pg.py                        # 100k and 1M events
    .venv/bin/python bench/store_pg.py --sizes 100000

For each size the log is written on SQLite first with ``bench/store.py``'s realistic turns
(7 events each, one batch per turn: filling a big log through PostgreSQL's round trips would
take the bench most of an hour), copied into a fresh schema of the server with COPY, then
``project`` rebuilds every projection there from the log (one transaction), and 300 more turns
are appended through ``append_events`` as the bot writes them. The schema is dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.store import TURNS_PER_SCENE, _scene, _setup, _turn
from bot.store import append_and_apply, append_events, open_db, project
from bot.store.pg.connect import connect
from bot.store.pg.db import open_pg

APPEND_SAMPLE_TURNS = 300


async def _fill_sqlite(path: Path, size: int) -> tuple[int, int]:
    """A log of ``size`` events on SQLite (projections applied); returns (container, turns)."""
    async with open_db(path) as db:
        ids = await append_events(db, list(_setup()))
        container, written, turns, scene = ids[-1], len(ids), 0, 0
        while written < size:
            if turns % TURNS_PER_SCENE == 0:
                scene = await append_and_apply(db, kind="scene_opened", payload=_scene(container))
                written += 1
            written += len(await append_events(db, _turn(scene, turns), apply=False))
            turns += 1
    return container, turns


async def _copy_log(path: Path, url: str, schema: str) -> int:
    """The SQLite log's rows into the PostgreSQL schema's ``event_log`` (ids kept)."""
    async with open_db(path, read_only=True) as lite:
        rows = [
            tuple(r)
            for r in await lite.fetchall(
                "SELECT id, kind, payload_json, chat_id, created_at FROM event_log ORDER BY id"
            )
        ]
    conn = await connect(url, schema=schema)
    try:
        await conn.copy_records_to_table(
            "event_log",
            records=rows,
            columns=["id", "kind", "payload_json", "chat_id", "created_at"],
            schema_name=schema,
        )
    finally:
        await conn.close()
    return len(rows)


async def bench_size(url: str, size: int, directory: Path) -> None:
    path = directory / f"log-{size}.db"
    started = time.perf_counter()
    container, turns = await _fill_sqlite(path, size)
    filled = time.perf_counter() - started
    schema = f"storybot_bench_{uuid.uuid4().hex[:8]}"
    admin = await connect(url)
    await admin.execute(f"CREATE SCHEMA {schema}")
    try:
        async with open_pg(url, schema=schema) as db:
            copied = await _copy_log(path, url, schema)
            started = time.perf_counter()
            rebuilt = await project(db)
            rebuild_seconds = time.perf_counter() - started
            assert rebuilt == copied
            scene = await append_and_apply(db, kind="scene_opened", payload=_scene(container))
            started = time.perf_counter()
            appended = 0
            for n in range(APPEND_SAMPLE_TURNS):
                appended += len(await append_events(db, _turn(scene, turns + n)))
            append_seconds = time.perf_counter() - started
            size_row = await db.fetchone("SELECT pg_database_size(current_database())")
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.close()
    print(
        f"{rebuilt:>10,} events (log written on SQLite in {filled:,.0f} s) | "
        f"PostgreSQL rebuild {rebuilt / rebuild_seconds:>7,.0f} ev/s ({rebuild_seconds:,.1f} s) | "
        f"per-turn batches {appended / append_seconds:>6,.0f} ev/s "
        f"({1000 * append_seconds / APPEND_SAMPLE_TURNS:.1f} ms a turn) | "
        f"database {int(size_row[0]) / 1e6:,.0f} MB",
        flush=True,
    )


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated event counts")
    parser.add_argument(
        "--url",
        default=os.environ.get("STORYBOT_TEST_POSTGRES_URL", ""),
        help="the server (default: $STORYBOT_TEST_POSTGRES_URL); a schema is made and dropped",
    )
    parser.add_argument("--dir", type=Path, default=None, help="where to put the SQLite logs")
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("no server: pass --url or export STORYBOT_TEST_POSTGRES_URL")
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="storybot-bench-") as tmp:
        for size in sizes:
            await bench_size(args.url, size, Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
