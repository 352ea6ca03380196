"""Event store benchmark: append rates (single events, per-turn batches) and rebuild rate.

    .venv/bin/python bench/store.py                      # 13k, 100k and 1M events
    .venv/bin/python bench/store.py --sizes 10000,100000
    .venv/bin/python bench/store.py --sizes 100000 --profile   # cProfile the rebuild

For each size a file database in a temporary directory is filled with realistic turns
(user_turn, assistant_turn, 3 memory_written, 2 edge_update, each turn one ``append_events``
batch), then single ``append_and_apply`` events are timed at that size, then ``project``
rebuilds every projection from the log. Targets: >= 5,000 events/s appended in per-turn batches,
>= 50,000 events/s rebuilt.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.store import Appendable, Later, Ref, append_and_apply, append_events, open_db, project
from bot.store.events import EdgeUpdate, MemoryWritten

BATCH_TARGET = 5_000
REBUILD_TARGET = 50_000
SINGLE_SAMPLE = 3_000
TURNS_PER_SCENE = 40
CHAT = "bench"
HOST, GUEST = "host", "guest"

REPLY = (
    "Mara sets the lantern on the table and leans in, lowering her voice. *quietly* "
    "The harbour master was not at his post tonight, and the ledger was open to a page "
    "I have never seen before. Someone tore out the entry for the ninth. "
) * 3
PROSE = 'I glance at the door. "Who else knew about the ledger?" I keep my hand on the key.'


def _setup() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("bot_authored", {"id": HOST, "name": "Mara", "persona": "a harbour pilot"}),
        ("bot_authored", {"id": GUEST, "name": "Ivo", "persona": "a clerk"}),
        ("you_authored", {"name": "Me", "pronouns": "they/them"}),
        (
            "chat_created",
            {"id": CHAT, "host_bot_id": HOST, "guest_bot_id": GUEST, "initial_time": "t0"},
        ),
        ("container_created", {"chat_id": CHAT, "name": "harbour office", "type": "workplace"}),
    ]


def _scene(container_id: int) -> dict[str, Any]:
    return {
        "chat_id": CHAT,
        "container_id": container_id,
        "started_at": "t",
        "participants": ["you", HOST, GUEST],
    }


def _turn(scene_id: int, n: int) -> list[Appendable]:
    """One realistic you-scene turn: 7 events, memories and edges pointing at the reply."""
    common = {"chat_id": CHAT, "scene_id": scene_id, "present_set_kind": "you_host_guest"}

    def memory(owner: str) -> Later[Any]:
        return Later(
            MemoryWritten,
            {
                **{k: v for k, v in common.items() if k != "present_set_kind"},
                "owner_id": owner,
                "witness_you": 1,
                "witness_host": 1,
                "witness_guest": 1,
                "text": f"{owner} remembers turn {n}: the torn ledger page and the missing master.",
                "beat_id": Ref(1),
            },
        )

    def edge(source: str, target: str) -> Later[Any]:
        return Later(
            EdgeUpdate,
            {
                "chat_id": CHAT,
                "source_id": source,
                "target_id": target,
                "affinity_delta": (n % 7) - 3,
                "trust_delta": (n % 5) - 2,
                # facts on the edges: a new one every turn, and one the edge already knows
                "knowledge_facts": [f"{source} learned fact {n} about {target}", f"fact {n % 50}"],
                "beat_id": Ref(1),
            },
        )

    return [
        ("user_turn", {**common, "prose": PROSE, "segments": [{"kind": "action", "text": PROSE}]}),
        ("assistant_turn", {**common, "speaker_id": HOST, "text": REPLY}),
        memory("you"),
        memory(HOST),
        memory(GUEST),
        edge(HOST, "you"),
        edge("you", HOST),
    ]


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def _verdict(value: float, target: float) -> str:
    return "ok" if value >= target else f"BELOW TARGET {target:,.0f}"


async def bench_size(size: int, directory: Path, *, profile: bool) -> dict[str, float]:
    path = directory / f"store-{size}.db"
    async with open_db(path) as db:
        ids = await append_events(db, list(_setup()))
        container = ids[-1]
        written = len(ids)
        scene = 0
        turns = 0
        batch_events = 0
        started = time.perf_counter()
        while written < size:
            if turns % TURNS_PER_SCENE == 0:
                scene = await append_and_apply(db, kind="scene_opened", payload=_scene(container))
                written += 1
            batch = await append_events(db, _turn(scene, turns))
            turns += 1
            written += len(batch)
            batch_events += len(batch)
        batch_rate = _rate(batch_events, time.perf_counter() - started)

        started = time.perf_counter()
        for n in range(SINGLE_SAMPLE):
            await append_and_apply(
                db,
                kind="edge_update" if n % 2 else "memory_written",
                payload=(
                    {"chat_id": CHAT, "source_id": GUEST, "target_id": HOST, "affinity_delta": 1}
                    if n % 2
                    else {
                        "owner_id": HOST,
                        "chat_id": CHAT,
                        "scene_id": scene,
                        "witness_you": 1,
                        "witness_host": 1,
                        "witness_guest": 0,
                        "text": f"single memory {n}",
                    }
                ),
            )
        single_rate = _rate(SINGLE_SAMPLE, time.perf_counter() - started)

        profiler = cProfile.Profile() if profile else None
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        rebuilt = await project(db)
        if profiler:
            profiler.disable()
        rebuild_rate = _rate(rebuilt, time.perf_counter() - started)
        if profiler:
            # project() runs on aiosqlite's thread; cProfile follows only this one, so profile
            # the same work synchronously instead.
            from bot.store.projector import rebuild_all

            def profiled_rebuild(raw: Any) -> int:
                local = cProfile.Profile()
                local.enable()
                try:
                    return rebuild_all(raw)
                finally:
                    local.disable()
                    stats = pstats.Stats(local).sort_stats("cumulative")
                    print(f"\n--- cProfile of rebuild_all at {rebuilt:,} events ---")
                    stats.print_stats(25)

            await db.write(profiled_rebuild)
    size_mb = path.stat().st_size / 1e6
    print(
        f"{rebuilt:>10,} events ({size_mb:,.0f} MB) | "
        f"batched {batch_rate:>8,.0f} ev/s ({_verdict(batch_rate, BATCH_TARGET)}) | "
        f"single {single_rate:>7,.0f} ev/s | "
        f"rebuild {rebuild_rate:>8,.0f} ev/s ({_verdict(rebuild_rate, REBUILD_TARGET)})",
        flush=True,
    )
    return {"batched": batch_rate, "single": single_rate, "rebuild": rebuild_rate}


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--sizes",
        default="13000,100000,1000000",
        help="comma-separated event counts (default: 13000,100000,1000000)",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile each rebuild")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the databases")
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="storybot-bench-") as tmp:
        results = [await bench_size(size, Path(tmp), profile=args.profile) for size in sizes]
    below = any(r["batched"] < BATCH_TARGET or r["rebuild"] < REBUILD_TARGET for r in results)
    return 1 if below else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
