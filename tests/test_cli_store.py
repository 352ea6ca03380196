"""The database through the command line: one writer, readers beside it, damage, a full disk.

Each failure ends in one clear line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
from pathlib import Path
from typing import Any

import pytest

from bot import cli
from tests.helpers.bot_process import ROOT, start_bot
from tests.helpers.events import log_in_file

MIRA = ROOT / "examples" / "characters" / "mira.toml"
BEGINS = re.compile(r"\(story (console-\w+) begins")


async def _console(db: Path, **kwargs: Any) -> asyncio.subprocess.Process:
    return await start_bot("--db", str(db), "console", **kwargs)


async def _line_matching(process: asyncio.subprocess.Process, pattern: re.Pattern[str]) -> str:
    assert process.stdout is not None
    while line := await asyncio.wait_for(process.stdout.readline(), 20):
        if pattern.search(line.decode()):
            return line.decode()
    raise AssertionError(f"the console ended without printing {pattern.pattern}")


def _main(*argv: str) -> int:
    return cli.main(list(argv))


async def test_one_writer_refuses_others_and_lets_readers_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "story.db"
    owner = await _console(db)
    assert owner.stdin is not None
    try:
        owner.stdin.write(f"/character import {MIRA}\n/chat start host=mira\n".encode())
        await owner.stdin.drain()
        found = BEGINS.search(await _line_matching(owner, BEGINS))
        assert found is not None
        chat_id = found[1]
        backup = tmp_path / "backup.jsonl"
        backup.write_text("", encoding="utf-8")

        # a second console, a rebuild and an import are refused, naming the owner
        for argv in (["console"], ["rebuild"], ["import-log", str(backup)]):
            code = await asyncio.to_thread(_main, "--db", str(db), *argv)
            err = capsys.readouterr().err
            assert code == 1, argv
            assert f"already open for writing by storybot (on host {os.uname().nodename}" in err
            assert f"PID {owner.pid})" in err
            assert "Traceback" not in err
        # reading the log works beside it
        code = await asyncio.to_thread(_main, "--db", str(db), "events", chat_id)
        out = capsys.readouterr().out
        assert code == 0
        kinds = [json.loads(x)["kind"] for x in out.splitlines()]
        assert kinds[0] == "chat_created" and "scene_opened" in kinds
    finally:
        owner.stdin.close()
        assert await asyncio.wait_for(owner.wait(), 20) == 0
    # once the owner has gone, anyone may write
    assert await asyncio.to_thread(_main, "--db", str(db), "rebuild") == 0


async def test_a_database_deleted_under_the_console_stops_it_loudly(tmp_path: Path) -> None:
    db = tmp_path / "story.db"
    console = await _console(db)
    assert console.stdin is not None and console.stderr is not None
    console.stdin.write(f"/character import {MIRA}\n".encode())
    await console.stdin.drain()
    await _line_matching(console, re.compile("imported Mira"))

    db.unlink()
    console.stdin.write(b"/chat start host=mira\n/character list\n")
    console.stdin.close()
    out, err = await asyncio.wait_for(console.communicate(), 20)

    assert console.returncode == 1
    assert "begins" not in out.decode()  # no story was reported started
    assert f"error: database {db} was deleted while storybot was running" in err.decode()
    assert "Traceback" not in err.decode()
    assert not db.exists()


async def test_a_damaged_database_is_refused_at_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "story.db"
    db.write_bytes(b"SQLite format 3\x00" + b"\xff" * 8192)

    code = await asyncio.to_thread(_main, "--db", str(db), "console", "--script", os.devnull)

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"error: database {db} is damaged")
    assert "import-log story-<chat>.jsonl" in err
    assert "Traceback" not in err


async def test_an_empty_database_file_is_reported_not_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "story.db"
    db.touch()

    code = await asyncio.to_thread(_main, "--db", str(db), "rebuild")

    assert code == 1
    assert "is an empty file (0 bytes)" in capsys.readouterr().err
    assert db.stat().st_size == 0


async def test_a_full_disk_ends_the_console_clearly_and_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "story.db"
    assert await asyncio.to_thread(_main, "--db", str(db), "rebuild") == 0  # created, migrated
    room = db.stat().st_size + 200_000

    def limit_file_size() -> None:
        """A full disk, as a writer sees it: no file may grow past ``room`` bytes (Python
        ignores SIGXFSZ, so the write fails with EFBIG)."""
        resource.setrlimit(resource.RLIMIT_FSIZE, (room, room))

    console = await _console(db, preexec_fn=limit_file_size)
    script = "".join(f"/you set name=Ash{i} persona={'x' * 3000}\n" for i in range(200))
    out, err = await asyncio.wait_for(console.communicate(script.encode()), 60)

    text = err.decode()
    assert console.returncode == 1, text
    assert f"error: could not write to database {db} (disk I/O error" in text
    assert "Traceback" not in text
    written = [x for x in out.decode().splitlines() if x.startswith("you are Ash")]
    assert 0 < len(written) < 200
    # every change the console confirmed is in the log
    code = await asyncio.to_thread(_main, "--db", str(db), "rebuild")
    assert code == 0
    kinds = [event.kind for event in await log_in_file(db)]
    assert kinds.count("you_authored") == len(written)
