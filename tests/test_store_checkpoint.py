"""A full rebuild on SQLite commits without copying its pages into the database file; the copy
is made beside the writer afterwards. Committed is committed: a crash before the copy loses
nothing, turns go on while it runs, and a copy that fails only leaves it to the next commit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import tests.helpers.store_factories as f
from bot.store import append_and_apply, append_events, open_db, project
from bot.store import db as sqlite_store
from bot.store.checkpoint import AUTOCHECKPOINT_PAGES

ROOT = Path(__file__).resolve().parents[1]
TURNS = 300
PROSE = "the lantern gutters " * 500  # 10,000 characters: the rebuild outgrows one checkpoint


async def _story_in_the_log(path: Path) -> None:
    """A story appended but not applied: only ``project`` fills the projections."""
    async with open_db(path) as db:
        await f.seed_meanwhile_chat(db, apply=False)
        turns = [("user_turn", f.user_turn(prose=f"{PROSE} marker-{n}")) for n in range(TURNS)]
        await append_events(db, turns, apply=False)


@pytest.fixture
async def path(tmp_path: Path) -> Path:
    """A story file whose log holds ``TURNS`` beats and whose projections are empty."""
    path = tmp_path / "story.db"
    await _story_in_the_log(path)
    return path


def _turns_in_the_file_alone(path: Path, scratch: Path) -> int:
    """The turns a copy of the database file holds without its write-ahead log."""
    alone = scratch / "file-alone.db"
    shutil.copyfile(path, alone)
    with contextlib.closing(sqlite3.connect(alone)) as raw:
        return int(raw.execute("SELECT COUNT(*) FROM turns").fetchone()[0])


def _held_copy(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """The copy aside, made to wait: (set once it has begun, set it to let it go on)."""
    copying, release = threading.Event(), threading.Event()
    real_copy = sqlite_store.checkpoint_beside

    def slow_copy(where: str) -> None:
        copying.set()
        release.wait(30)
        real_copy(where)

    monkeypatch.setattr(sqlite_store, "checkpoint_beside", slow_copy)
    return copying, release


def _autocheckpoint(raw: sqlite3.Connection) -> int:
    return int(raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0])


async def test_a_crash_before_the_copy_loses_nothing_the_rebuild_committed(
    path: Path, tmp_path: Path
) -> None:
    child = (
        "import asyncio, os, sys\n"
        "from bot.store import open_db, project\n"
        "async def main():\n"
        "    async with open_db(sys.argv[1]) as db:\n"
        "        await project(db)\n"
        "        os._exit(0)  # before the copy aside has even started\n"
        "asyncio.run(main())\n"
    )
    command = [sys.executable, "-c", child, str(path)]
    await asyncio.to_thread(subprocess.run, command, cwd=ROOT, check=True, timeout=120)
    assert await asyncio.to_thread(_turns_in_the_file_alone, path, tmp_path) == 0  # not copied

    async with open_db(path) as db:
        rows = await db.fetchall("SELECT text FROM turns WHERE role = 'user' ORDER BY id")
    assert [row["text"].rsplit(" ", 1)[1] for row in rows] == [f"marker-{n}" for n in range(TURNS)]


async def test_the_copy_is_made_aside_and_then_commits_copy_again(path: Path) -> None:
    async with open_db(path) as db:
        await project(db)
        await db.checkpointed()
        assert await db.run(_autocheckpoint) == AUTOCHECKPOINT_PAGES
        with sqlite3.connect(path) as other:  # nothing is left in the log to copy
            _, in_log, copied = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert in_log == copied
        assert len(await db.fetchall("SELECT id FROM turns")) == TURNS


async def test_turns_are_written_while_the_copy_runs(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copying, release = _held_copy(monkeypatch)
    async with open_db(path) as db:
        await project(db)
        assert await asyncio.to_thread(copying.wait, 30)
        # the copy is still running: the writer neither waits for it nor copies on commit
        await append_and_apply(db, kind="user_turn", payload=f.user_turn(prose="after it"))
        assert await db.run(_autocheckpoint) == 0
        release.set()
        await db.checkpointed()
        assert await db.run(_autocheckpoint) == AUTOCHECKPOINT_PAGES
        last = await db.fetchone("SELECT text FROM turns ORDER BY id DESC LIMIT 1")
    assert last["text"] == "after it"


async def test_a_copy_that_fails_is_logged_and_left_to_the_next_commit(
    path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:

    def failing_copy(where: str) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(sqlite_store, "checkpoint_beside", failing_copy)
    with caplog.at_level(logging.WARNING, logger="bot.store.db"):
        async with open_db(path) as db:
            await project(db)
            await db.checkpointed()
            assert await db.run(_autocheckpoint) == AUTOCHECKPOINT_PAGES
            await append_and_apply(db, kind="user_turn", payload=f.user_turn(prose="later"))
            count = len(await db.fetchall("SELECT id FROM turns"))
    assert count == TURNS + 1
    assert any("could not copy the rebuild" in r.getMessage() for r in caplog.records)


async def test_a_write_queued_beside_a_rebuild_still_sees_the_rebuild_copied(
    path: Path,
    tmp_path: Path,
) -> None:
    """A turn's write waiting behind the rebuild must not start the copy before the rebuild
    has committed: once the copy is done, the file alone holds every turn."""
    async with open_db(path) as db:
        turn = asyncio.create_task(
            append_and_apply(db, kind="user_turn", payload=f.user_turn(prose="beside it"))
        )
        await asyncio.sleep(0)
        await asyncio.gather(turn, project(db))
        await db.checkpointed()
        assert await asyncio.to_thread(_turns_in_the_file_alone, path, tmp_path) == TURNS + 1


async def test_a_close_cancelled_while_the_copy_runs_still_lets_the_file_go(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copying, release = _held_copy(monkeypatch)

    async def session() -> None:
        async with open_db(path) as db:
            await project(db)

    closing = asyncio.create_task(session())
    assert await asyncio.to_thread(copying.wait, 30)
    await asyncio.sleep(0.05)  # the session is now closing, waiting for the copy
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    release.set()
    async with open_db(path) as db:  # the writer's lock was given back
        count = len(await db.fetchall("SELECT id FROM turns"))
    assert count == TURNS
