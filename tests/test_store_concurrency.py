"""One writer under load: concurrent appenders, a reader beside them, migrations, cancellation."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import tests.helpers.store_factories as f
from bot.store import (
    Appendable,
    Database,
    Later,
    append_and_apply,
    append_events,
    events_by_kind,
    open_db,
    project,
)
from bot.store.events import MemoryWritten
from bot.store.schema import MIGRATIONS
from tests.helpers.stores import fresh_store

TASKS = 300
PER_TASK = 5


def _edge(task: int, step: int) -> dict[str, Any]:
    """Task ``task``'s ``step``-th event: +1 affinity on its own edge, tagged in the facts."""
    return f.edge_update(
        f"bot{task}", "bot_b", affinity_delta=1, knowledge_facts=[f"task {task} step {step}"]
    )


async def _appender(db: Database, task: int) -> list[int]:
    if task % 2:
        return await append_events(db, [("edge_update", _edge(task, s)) for s in range(PER_TASK)])
    return [
        await append_and_apply(db, kind="edge_update", payload=_edge(task, s))
        for s in range(PER_TASK)
    ]


async def test_hundreds_of_concurrent_appenders_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    async with open_db(path) as db, open_db(path, read_only=True) as reader:
        await append_and_apply(db, kind="chat_created", payload=f.chat_created())

        async def second_connection() -> list[int]:
            """Reads through its own (read-only) connection while the appenders run."""
            seen: list[int] = []
            for _ in range(10):
                row = await reader.fetchone("SELECT COUNT(*) FROM event_log")
                assert row is not None
                seen.append(row[0])
                await asyncio.sleep(0)
            return seen

        # When 300 tasks append 5 events each (half one by one, half as a batch) while a second
        # connection reads
        *results, seen = await asyncio.gather(
            *(_appender(db, task) for task in range(TASKS)), second_connection()
        )

        # Then every event is there once, in id order, and every batch is contiguous
        all_ids = [event_id for ids in results for event_id in ids]
        assert len(all_ids) == len(set(all_ids)) == TASKS * PER_TASK
        for task, ids in enumerate(results):
            assert ids == sorted(ids), task
            if task % 2:
                assert ids == list(range(ids[0], ids[0] + PER_TASK)), task
        log = await db.fetchall("SELECT id, payload_json FROM event_log ORDER BY id")
        assert [r["id"] for r in log] == list(range(1, 2 + TASKS * PER_TASK))
        assert seen == sorted(seen)
        # and the projections count every step of every task
        edges = await db.fetchall("SELECT source_id, affinity FROM edges")
        assert {r["source_id"]: r["affinity"] for r in edges} == {
            f"bot{task}": 50 + PER_TASK for task in range(TASKS)
        }
        changes = await db.fetchone("SELECT COUNT(*) FROM edge_changes")
        assert changes is not None
        assert changes[0] == TASKS * PER_TASK
        mode = await reader.fetchone("PRAGMA journal_mode")
        assert mode is not None
        assert mode[0] == "wal"


async def test_reopening_keeps_data_and_migrates_once(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    async with open_db(path) as db:
        ids = await f.seed_meanwhile_chat(db)
        before = await f.snapshot(db)
    async with open_db(path) as db:
        versions = await db.fetchall("SELECT version FROM schema_version ORDER BY version")
        assert [r[0] for r in versions] == list(range(1, len(MIGRATIONS) + 1))
        assert await f.snapshot(db) == before
        [chat] = await events_by_kind(db, "chat_created")
        assert chat.chat_id == ids.chat_id
        await append_and_apply(db, kind="scene_closed", payload=f.scene_closed(ids.scene_id))
    async with open_db(path) as db:
        versions = await db.fetchall("SELECT version FROM schema_version")
        assert len(versions) == len(MIGRATIONS)
        row = await db.fetchone("SELECT status FROM scenes WHERE id = ?", (ids.scene_id,))
        assert row is not None
        assert row["status"] == "closed"


class _SlowLater(Later[MemoryWritten]):
    """Built on the writer thread mid-transaction, slowly: the task is cancelled meanwhile."""

    def build(self, ids: list[int]) -> dict[str, Any]:
        time.sleep(0.005)
        return dict(self.fields)


@dataclass(frozen=True)
class _PinnedLater(Later[MemoryWritten]):
    """Built on the writer thread mid-transaction: says so, then waits for ``release``."""

    started: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def build(self, ids: list[int]) -> dict[str, Any]:
        self.started.set()
        self.release.wait(10)
        return dict(self.fields)


def _tagged_batch(batch: int, size: int, *, slow: bool = False) -> list[Appendable]:
    def event(step: int) -> Appendable:
        tagged = f.memory_written(scene_id=1, text=f"batch{batch} step{step}")
        if not slow or step != size // 2:
            return ("memory_written", tagged)
        return _SlowLater(MemoryWritten, tagged)

    return [event(step) for step in range(size)]


async def _batch_sizes(db: Database) -> dict[int, int]:
    rows = await db.fetchall("SELECT payload_json FROM event_log WHERE kind = 'memory_written'")
    sizes: dict[int, int] = {}
    for row in rows:
        text = json.loads(row["payload_json"])["text"]
        batch = int(text.split()[0].removeprefix("batch"))
        sizes[batch] = sizes.get(batch, 0) + 1
    return sizes


@pytest.mark.parametrize("slow", [False, True], ids=["queued", "mid-transaction"])
async def test_a_cancelled_append_never_leaves_half_a_batch(backend: str, slow: bool) -> None:
    size = 8
    async with fresh_store(backend) as db:
        await f.seed_meanwhile_chat(db)
        # Given many batches in flight, each cancelled after a different number of loop turns
        tasks = [
            asyncio.create_task(append_events(db, _tagged_batch(batch, size, slow=slow)))
            for batch in range(60)
        ]
        for batch, task in enumerate(tasks):
            for _ in range(batch % 4):
                await asyncio.sleep(0)
            task.cancel()
        # and one more cancelled for certain while its transaction runs on the writer thread
        pinned = len(tasks)
        *head, last = _tagged_batch(pinned, size)
        held = _PinnedLater(MemoryWritten, last[1])
        tasks.append(asyncio.create_task(append_events(db, [*head, held])))
        assert await asyncio.to_thread(held.started.wait, 10)
        tasks[pinned].cancel()
        held.release.set()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        cancelled = sum(isinstance(o, asyncio.CancelledError) for o in outcomes)
        assert cancelled > 0
        await append_and_apply(db, kind="you_authored", payload=f.you_authored())  # drains
        # Then each batch is in the log whole or not at all, and so are its projections
        sizes = await _batch_sizes(db)
        assert set(sizes.values()) <= {size}
        memories = await db.fetchone("SELECT COUNT(*) FROM memories")
        assert memories is not None
        assert memories[0] == size * len(sizes)
        for batch, outcome in enumerate(outcomes):
            if isinstance(outcome, list):
                assert sizes.get(batch) == size
        # (both cases happen whatever the schedule: the first batch is cancelled before its task
        # ever ran, the pinned one while in flight, where the transaction still completes whole)
        assert isinstance(outcomes[0], asyncio.CancelledError) and 0 not in sizes
        assert isinstance(outcomes[pinned], asyncio.CancelledError) and sizes[pinned] == size
        before = await f.snapshot(db)
        await project(db)
        assert await f.snapshot(db) == before
