"""A storybot process to kill: it streams one slow reply and prints what the player has seen.

Run by test_story_crash.py as ``python tests/crash_child.py DB``; each line it prints is the
number of characters shown so far, flushed, so the test knows what the player saw when it
sends SIGKILL.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config import Settings
from bot.engine import BeatEnd, Engine, Speaker
from bot.llm import ScriptedLLM
from bot.store import open_db
from tests.helpers.engine_helpers import seed_story

REPLY = " ".join(f"w{i}" for i in range(2000))


class PrintingSink:
    def __init__(self) -> None:
        self.shown = 0

    async def begin(self, speaker: Speaker) -> None:
        return None

    async def append(self, text: str) -> None:
        self.shown += len(text)
        sys.stdout.write(f"{self.shown}\n")
        sys.stdout.flush()

    async def end(self, outcome: BeatEnd) -> Sequence[int]:
        return ()


async def main(path: str) -> None:
    async with open_db(path) as db:
        llm = ScriptedLLM(narrate=REPLY, chunk_delay=0.005)
        settings = Settings.model_validate({"engine": {"checkpoint_seconds": 0.1}})
        engine = Engine(db, llm, settings)
        chat_id = await seed_story(engine, guest=False)
        await engine.turns.take(chat_id, "tell me everything", PrintingSink())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
