"""kill -9 mid-stream: after a restart, the interrupted beat keeps the text the player saw."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bot.config import Settings
from bot.engine import Engine
from bot.llm import MockLLMClient
from bot.store import Database, open_db
from bot.store.events import ChatCreated
from tests.crash_child import REPLY
from tests.helpers.events import then_events

CHILD = Path(__file__).with_name("crash_child.py")


def _kill_mid_stream(db_path: Path) -> tuple[int, int]:
    """Run the child until the player has seen 2,000 characters, let it stream on for several
    checkpoint intervals, SIGKILL it; returns (characters shown then, shown at the kill)."""
    with subprocess.Popen(
        [sys.executable, str(CHILD), str(db_path)], stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None
        shown_before = 0
        for line in child.stdout:
            shown_before = int(line)
            if shown_before > 2_000:
                break
        time.sleep(0.4)  # checkpoints every 0.1 s while the reply goes on
        os.kill(child.pid, signal.SIGKILL)
        shown_after = max([shown_before, *(int(line) for line in child.stdout)])
    assert child.returncode == -signal.SIGKILL
    assert shown_after < len(REPLY)  # it really died mid-stream
    return shown_before, shown_after


async def test_a_reply_killed_mid_stream_keeps_what_was_shown(tmp_path: Path) -> None:
    db_path = tmp_path / "story.db"
    shown_before, shown_after = _kill_mid_stream(db_path)

    async with open_db(db_path) as db:
        engine = Engine(db, MockLLMClient(), Settings())
        assert await engine.turns.recover_interrupted() == 1
        [line, reply] = (await engine.queries.beats(await _chat_id(db)))[-2:]

    assert line.role == "user" and line.text == "tell me everything"
    assert reply.interrupted and REPLY.startswith(reply.text)
    # what the player saw before the last checkpoints is kept, nothing they did not see
    assert shown_before <= len(reply.text) <= shown_after


async def _chat_id(db: Database) -> str:
    [created] = await then_events(db, ChatCreated)
    return created.id
