"""The PostgreSQL store itself: its schema matches SQLite's, migrations run once, one writer's
lock across connections keeps ids in commit order, and what cannot be used says why.

The store suite proper (replay == incremental, rewinds, recall, export) runs on both stores
through ``tests.helpers.stores.BACKENDS``; this file holds what only PostgreSQL has.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

import tests.helpers.store_factories as f
from bot import cli
from bot.store import StoreError, append_and_apply, append_events, open_db, project
from bot.store.pg.connect import connect
from bot.store.pg.db import PgDatabase, open_pg
from bot.store.pg.schema import MIGRATIONS
from bot.store.schema import PROJECTION_TABLES
from tests.helpers.stores import fresh_schema, fresh_store

pytestmark = pytest.mark.postgres

SQLITE_ONLY = {"memories_fts", "sqlite_sequence", "recall_tiers"}


async def _sqlite_columns() -> dict[str, list[str]]:
    async with open_db(":memory:") as db:
        tables = await db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
        names = [t[0] for t in tables if not t[0].startswith(("memories_fts", "edge_facts_fts"))]
        return {
            name: [c[1] for c in await db.fetchall(f"PRAGMA table_info({name})")]
            for name in names
            if name not in SQLITE_ONLY
        }


async def test_the_schema_has_sqlites_tables_and_columns_in_order(postgres_url: str) -> None:
    async with fresh_store("postgres") as db:
        rows = await db.fetchall(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
        )
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row[0], []).append(row[1])
    assert found == await _sqlite_columns()
    assert set(PROJECTION_TABLES) <= set(found)


async def test_reopening_keeps_the_story_and_migrates_once(postgres_url: str) -> None:
    async with fresh_schema(postgres_url) as schema:
        async with open_pg(postgres_url, schema=schema) as db:
            ids = await f.seed_meanwhile_chat(db)
            before = await f.snapshot(db)
        async with open_pg(postgres_url, schema=schema) as db:
            versions = await db.fetchall("SELECT version FROM schema_version ORDER BY version")
            assert [r[0] for r in versions] == list(range(1, len(MIGRATIONS) + 1))
            assert await f.snapshot(db) == before
            await append_and_apply(db, kind="scene_closed", payload=f.scene_closed(ids.scene_id))


async def test_processes_starting_together_migrate_once(postgres_url: str) -> None:
    async with fresh_schema(postgres_url) as schema:

        async def open_and_count() -> int:
            async with open_pg(postgres_url, schema=schema) as db:
                return len(await db.fetchall("SELECT version FROM schema_version"))

        counts = await asyncio.gather(*(open_and_count() for _ in range(4)))
    assert counts == [len(MIGRATIONS)] * 4


async def test_two_writers_on_one_database_keep_ids_in_commit_order(postgres_url: str) -> None:
    """Two connections (as two bot processes would) append at once: every id once, 1..N with
    no gap, each batch contiguous, every event applied (the log's write lock)."""
    async with (
        fresh_schema(postgres_url) as schema,
        open_pg(postgres_url, schema=schema) as one,
        open_pg(postgres_url, schema=schema) as two,
    ):

        async def appender(db: PgDatabase, task: int) -> list[int]:
            edges = [
                ("edge_update", f.edge_update(f"bot{task}", "bot_b", affinity_delta=1))
                for _ in range(4)
            ]
            return await append_events(db, edges)

        results = await asyncio.gather(*(appender((one, two)[t % 2], t) for t in range(40)))
        ids = sorted(i for batch in results for i in batch)
        assert ids == list(range(1, 161))
        for batch in results:
            assert batch == list(range(batch[0], batch[0] + 4))
        edges = await one.fetchall("SELECT source_id, affinity FROM edges")
        assert {r[0]: r[1] for r in edges} == {f"bot{t}": 54 for t in range(40)}


async def test_another_programs_schema_is_refused(postgres_url: str) -> None:
    async with fresh_schema(postgres_url) as schema:
        admin = await connect(postgres_url, schema=schema)
        await admin.execute("CREATE TABLE invoices (id BIGINT)")
        await admin.close()
        with pytest.raises(StoreError, match=r"another program.*invoices"):
            async with open_pg(postgres_url, schema=schema):
                pass


async def test_read_only_needs_a_store_and_writes_nothing(postgres_url: str) -> None:
    async with fresh_schema(postgres_url) as schema:
        with pytest.raises(StoreError, match="no storybot store"):
            async with open_pg(postgres_url, schema=schema, read_only=True):
                pass
        async with open_pg(postgres_url, schema=schema) as db:
            await f.seed_meanwhile_chat(db)
        async with open_pg(postgres_url, schema=schema, read_only=True) as reader:
            assert len(await reader.fetchall("SELECT id FROM event_log")) > 0
            with pytest.raises(StoreError, match="read-only"):
                await append_and_apply(reader, kind="you_authored", payload=f.you_authored())


def test_the_command_line_restores_rebuilds_and_reads_a_story_on_postgres(
    postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """import-log, rebuild and events with ``--db postgresql://…`` (a schema of its own, by
    ``?search_path=``, which asyncpg passes on as a server setting)."""

    async def exported() -> str:
        async with fresh_store("sqlite") as db:
            await f.seed_meanwhile_chat(db)
            return "".join(
                json.dumps(
                    {
                        "id": r["id"],
                        "kind": r["kind"],
                        "chat_id": r["chat_id"],
                        "created_at": r["created_at"],
                        "payload": json.loads(r["payload_json"]),
                    }
                )
                + "\n"
                for r in await db.fetchall("SELECT * FROM event_log ORDER BY id")
            )

    log = tmp_path / "story.jsonl"
    log.write_text(asyncio.run(exported()), encoding="utf-8")

    async def run(schema: str) -> list[tuple[int, str]]:
        url = f"{postgres_url}?search_path={schema}"
        results = []
        for argv in (["import-log", str(log)], ["rebuild"], ["events", f.CHAT]):
            code = await asyncio.to_thread(cli.main, ["--db", url, *argv])
            results.append((code, capsys.readouterr().out))
        return results

    async def in_schema() -> list[tuple[int, str]]:
        async with fresh_schema(postgres_url) as schema:
            return await run(schema)

    (imported, rebuilt, events) = asyncio.run(in_schema())
    assert imported[0] == 0 and "restored" in imported[1] and "postgresql://" in imported[1]
    assert rebuilt[0] == 0 and "rebuilt projections" in rebuilt[1]
    assert events[0] == 0
    of_chat = [json.loads(line) for line in log.read_text().splitlines()]
    assert [json.loads(line) for line in events[1].splitlines()] == [
        event for event in of_chat if event["chat_id"] == f.CHAT
    ]


async def test_a_rebuild_whose_scratch_file_runs_out_of_room_changes_nothing(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL rebuilds in a scratch SQLite file (``pg/rebuild.py``): when that file's disk
    is full the rebuild says where, and the store keeps its projections as they were."""
    from bot.store.pg import rebuild

    cramped = rebuild.scratch_store

    def full_disk(path: Path) -> sqlite3.Connection:
        lite = cramped(path)
        pages = lite.execute("PRAGMA page_count").fetchone()[0]
        lite.execute(f"PRAGMA max_page_count = {pages}")
        return lite

    async with fresh_store("postgres") as db:
        await f.seed_meanwhile_chat(db)
        persona = "A courier who remembers every door. " * 200  # the log outgrows a page
        await append_and_apply(db, kind="you_authored", payload=f.you_authored(persona=persona))
        before = await f.snapshot(db)
        monkeypatch.setattr(rebuild, "scratch_store", full_disk)
        with pytest.raises(StoreError, match=r"scratch file in .*full.*nothing was changed"):
            await project(db)
        assert await f.snapshot(db) == before
        monkeypatch.undo()
        await project(db)
        assert await f.snapshot(db) == before
