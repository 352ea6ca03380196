"""One writer per database, a file that cannot vanish unnoticed, damage found at the start.

In-process here; the same refusals through the command line are in test_cli_store.py.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tests.helpers.store_factories as f
from bot.config import StorageSettings
from bot.store import (
    DatabaseDamagedError,
    DatabaseGoneError,
    DatabaseLockedError,
    StoreError,
    WriteFailedError,
    append_and_apply,
    append_events,
    open_db,
    open_store,
)
from bot.store.health import quick_check
from bot.store.lock import WriterLock, lock_path
from bot.store.pg.connect import display_url
from tests.helpers.events import count_events

ROOT = Path(__file__).resolve().parents[1]


async def _seeded(path: Path, memories: int = 0) -> None:
    async with open_db(path) as db:
        await f.seed_meanwhile_chat(db)
        if memories:
            long = "the lighthouse keeper's ledger " * 20
            await append_events(
                db,
                [
                    ("memory_written", f.memory_written(scene_id=1, text=f"{i} {long}"))
                    for i in range(memories)
                ],
            )


def _overwrite_middle_page(path: Path) -> None:
    """What a failing disk does: a page in the middle of the file turns to garbage."""
    pages = path.stat().st_size // 4096
    with path.open("r+b") as fh:
        fh.seek((pages // 2) * 4096)
        fh.write(b"\xa5" * 4096)


async def test_a_second_writer_is_refused_naming_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "story.db"
    async with open_db(path) as db:
        with pytest.raises(DatabaseLockedError) as refused:
            async with open_db(path):
                pass
        # the owner is not disturbed by the refusal
        await append_and_apply(db, kind="chat_created", payload=f.chat_created())

    message = str(refused.value)
    assert f"on host {socket.gethostname()}, PID {os.getpid()}" in message
    assert "only one process may write" in message
    # closed: the next writer may open it
    async with open_db(path) as db:
        assert await count_events(db) == 1


async def test_two_spellings_of_one_file_meet_at_one_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "story.db"
    (tmp_path / "link.db").symlink_to(path)
    monkeypatch.chdir(tmp_path)
    async with open_db(path):
        for other in ("link.db", "./story.db"):
            with pytest.raises(DatabaseLockedError):
                async with open_db(other):
                    pass


async def test_a_reader_works_beside_the_writer_and_cannot_write(tmp_path: Path) -> None:
    path = tmp_path / "story.db"
    async with open_db(path) as db, open_db(path, read_only=True) as reader:
        await append_and_apply(db, kind="chat_created", payload=f.chat_created())
        row = await reader.fetchone("SELECT COUNT(*) FROM event_log")
        assert row is not None and row[0] == 1
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await append_and_apply(reader, kind="chat_created", payload=f.chat_created("c2"))


async def test_a_reader_never_creates_a_missing_database(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="no database at"):
        async with open_db(tmp_path / "typo.db", read_only=True):
            pass
    assert not (tmp_path / "typo.db").exists()


def test_the_lock_dies_with_its_process(tmp_path: Path) -> None:
    """A killed owner leaves no stale lock: the OS drops a flock with the process."""
    path = tmp_path / "story.db"
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from bot.store.lock import WriterLock;"
            f"WriterLock(Path({str(path)!r})); print('held', flush=True); time.sleep(60)",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    ) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline() == b"held\n"
            with pytest.raises(DatabaseLockedError, match=f"PID {holder.pid}"):
                WriterLock(path)
        finally:
            holder.kill()
            holder.wait()
    WriterLock(path).release()
    assert lock_path(path).exists()  # left in place on purpose


@pytest.mark.parametrize("how", ["deleted", "replaced"])
async def test_a_database_removed_under_the_writer_stops_every_write(
    tmp_path: Path, how: str
) -> None:
    path = tmp_path / "story.db"
    async with open_db(path) as db:
        await append_and_apply(db, kind="chat_created", payload=f.chat_created())
        if how == "deleted":
            path.unlink()
        else:
            other = tmp_path / "other.db"
            sqlite3.connect(other).close()
            os.replace(other, path)

        for _ in range(2):  # and it stays stopped
            with pytest.raises(DatabaseGoneError, match=f"was {how}") as stopped:
                await append_and_apply(db, kind="chat_ended", payload=f.chat_ended())
        assert "stopped writing" in str(stopped.value)


async def test_a_damaged_page_is_refused_at_start_with_how_to_restore(tmp_path: Path) -> None:
    path = tmp_path / "story.db"
    await _seeded(path, memories=300)
    _overwrite_middle_page(path)

    with pytest.raises(DatabaseDamagedError) as refused:
        async with open_db(path):
            pass

    message = str(refused.value)
    assert "is damaged" in message
    assert "import-log" in message


async def test_damage_the_start_check_did_not_reach_stops_with_the_same_advice(
    tmp_path: Path,
) -> None:
    """Damage after the start (or where a big file was checked in part) is refused the same."""
    path = tmp_path / "story.db"
    await _seeded(path, memories=300)

    async with open_db(path) as db:
        _overwrite_middle_page(path)
        await db.read(lambda raw: raw.execute("PRAGMA shrink_memory"))  # drop cached pages
        with pytest.raises(DatabaseDamagedError, match="import-log"):  # wherever the page was
            await db.fetchall("SELECT id, length(payload_json) FROM event_log")
            await db.fetchall("SELECT id, length(text) FROM memories")
            await db.fetchall("SELECT rowid FROM memories_fts WHERE memories_fts MATCH 'ledger'")


@pytest.mark.parametrize("content", [b"", b"not a database, just some text\n" * 200])
async def test_an_empty_or_foreign_file_is_reported_not_replaced(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "story.db"
    path.write_bytes(content)

    with pytest.raises(DatabaseDamagedError, match="empty file" if not content else "damaged"):
        async with open_db(path):
            pass

    assert path.read_bytes() == content


async def test_another_programs_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")

    with pytest.raises(DatabaseDamagedError, match="some other program"):
        async with open_db(path):
            pass


async def test_the_start_check_is_bounded_in_time(tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    await _seeded(path, memories=2000)
    raw = sqlite3.connect(path)
    try:
        started = time.monotonic()
        assert quick_check(raw, str(path), seconds=0.0) is False  # gave up, did not refuse
        assert time.monotonic() - started < 0.5
        assert quick_check(raw, str(path)) is True
        assert raw.execute("SELECT COUNT(*) FROM event_log").fetchone()[0] > 2000
    finally:
        raw.close()


async def test_a_full_disk_refuses_the_write_whole_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "story.db"
    async with open_db(path) as db:
        await append_and_apply(db, kind="chat_created", payload=f.chat_created())
        pages = await db.fetchone("PRAGMA page_count")
        assert pages is not None
        await db.read(lambda raw: raw.execute(f"PRAGMA max_page_count = {pages[0] + 2}"))
        batch = [
            ("memory_written", f.memory_written(scene_id=1, text="x" * 3000)) for _ in range(20)
        ]

        with pytest.raises(WriteFailedError, match="the disk is full") as refused:
            await append_events(db, batch)

        assert "nothing is half-written" in str(refused.value)
        assert await count_events(db) == 1
        # room again: the store goes on (the transaction was rolled back, none left open)
        await db.read(lambda raw: raw.execute("PRAGMA max_page_count = 1000000"))
        await append_events(db, batch)
        assert await count_events(db) == 21


async def test_an_unreachable_server_is_one_clear_error_without_the_password() -> None:
    url = "postgresql://storybot:s3cret@127.0.0.1:9/storybot"  # port 9: nothing listens
    with pytest.raises(StoreError) as caught:
        async with open_store(StorageSettings(url=url)):
            pass
    assert "cannot reach PostgreSQL at postgresql://storybot@127.0.0.1:9/storybot" in str(
        caught.value
    )
    assert "s3cret" not in str(caught.value)
    assert display_url(url) == "postgresql://storybot@127.0.0.1:9/storybot"


async def test_a_plain_path_or_nothing_keeps_sqlite(tmp_path: Path) -> None:
    for storage, file in (
        (StorageSettings(url=str(tmp_path / "a.db")), tmp_path / "a.db"),
        (StorageSettings(db_path=tmp_path / "b.db"), tmp_path / "b.db"),
    ):
        async with open_store(storage) as db:
            assert db.dialect == "sqlite"
        with sqlite3.connect(file) as raw:
            assert raw.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] > 0
