"""An engine in a process of its own, playing many chats: two of them make "two processes".

    python -m tests.helpers.engine_process --db A.db --llm URL [--pg URL] --chats c0,c1 ...

It opens its store (its own SQLite file, or with ``--db postgresql://…`` one PostgreSQL store
that every process plays in), what it shares with other processes (``[storage]
url``: the LLM cap and the chat locks in PostgreSQL, as ``python -m bot run`` does), seeds one
story per chat, prints ``ready`` and waits for a line on stdin; then plays ``--turns`` turns in
every chat at once (one after another within a chat) and prints one JSON line: each turn's
chat, wall-clock start and end, when it held the chat's lock, and the CPU seconds spent. The
multi-process test (tests/test_shards_processes.py) and bench/scale.py drive it against one
loopback LLM server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from bot.config import Settings, StorageSettings
from bot.engine import Engine
from bot.engine.inflight import ChatLock, OneProcess
from bot.llm import OpenAICompatibleClient
from bot.sharing import sharing
from bot.store import open_store
from bot.store.pg.connect import is_postgres_url
from tests.helpers.engine_helpers import GUEST, HOST, RecordingSink, character
from tests.helpers.llm_server import TEST_API_KEY, RecordedRequest, Reply

HANG = "(hang)"
"""A line that makes ``scale_answers`` hold the reply forever: a process stuck mid-call."""


def scale_answers(
    request: RecordedRequest, *, prompt_delay: float = 0.02, json_delay: float = 0.01
) -> Reply:
    """A loopback LLM for many chats: short replies, valid JSON for every background call."""
    if request.stream:
        if any(HANG in str(m.get("content", "")) for m in request.messages[-1:]):
            return Reply.hang()
        return Reply.text("BotA nods and answers.", prompt_delay=prompt_delay)
    system = str(request.messages[0]["content"])
    if system.startswith("You split"):
        body: object = {"segments": [{"kind": "narration", "text": "x"}]}
    else:
        body = {"relationships": []}
    return Reply.text(chunks=[json.dumps(body)], chunk_delay=json_delay)


class TimedChatLock:
    """The process's chat lock, noting when each turn held it (wall clock, inside the lock)."""

    def __init__(self, inner: ChatLock | None) -> None:
        self.inner: ChatLock = inner or OneProcess()
        self.held: list[tuple[str, float, float]] = []

    @asynccontextmanager
    async def hold(self, chat_id: str) -> AsyncIterator[None]:
        async with self.inner.hold(chat_id):
            taken = time.time()
            try:
                yield
            finally:
                self.held.append((chat_id, taken, time.time()))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", required=True)
    parser.add_argument("--llm", required=True, help="the loopback server's /v1 base URL")
    parser.add_argument("--pg", default="", help="[storage] url: share the cap and chat locks")
    parser.add_argument("--cap", type=int, default=2, help="[llm] max_concurrency")
    parser.add_argument("--chats", required=True, help="comma-separated chat ids to play")
    parser.add_argument("--turns", type=int, default=3, help="turns per chat")
    parser.add_argument("--line", default="Hello there.", help="what the player says")
    return parser


async def _play(args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings.model_validate(
        {
            "llm": {"base_url": args.llm, "api_key": TEST_API_KEY, "max_concurrency": args.cap},
            "storage": {"db_path": args.db, "url": args.pg},
        }
    )
    # --db may name the story's store itself (a PostgreSQL URL shared by both processes)
    story = StorageSettings(url=args.db) if is_postgres_url(args.db) else settings.storage
    chats = [c for c in args.chats.split(",") if c]
    async with (
        open_store(story) as db,
        sharing(settings) as shared,
        OpenAICompatibleClient.from_settings(settings.llm, gate=shared.gate) as llm,
    ):
        lock = TimedChatLock(shared.chat_lock)
        engine = Engine(db, llm, settings, chat_lock=lock)
        await engine.characters.author(character(HOST, "BotA"))
        await engine.characters.author(character(GUEST, "BotB"))
        await engine.characters.set_you(name="Me", pronouns="they/them")
        for chat in chats:
            if await engine.queries.chat(chat) is None:  # a process before this one may have
                await engine.chats.start(
                    host_id=HOST, guest_id=None, place="office", time="20:00", chat_id=chat
                )
        lock.held.clear()
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        cpu = time.process_time()
        started = time.time()
        turns = await asyncio.gather(
            *(_chat_turns(engine, c, args.turns, args.line) for c in chats)
        )
        return {
            "turns": [t for chat_turns in turns for t in chat_turns],
            "held": lock.held,
            "wall": time.time() - started,
            "cpu": time.process_time() - cpu,
        }


async def _chat_turns(engine: Engine, chat: str, turns: int, line: str) -> list[dict[str, Any]]:
    done = []
    for n in range(turns):
        began = time.time()
        sink = RecordingSink()
        await engine.turns.take(chat, f"{line} ({n})", sink)
        ended = time.time()
        status = sink.ends[-1].status if sink.ends else "no end"
        done.append({"chat": chat, "start": began, "end": ended, "status": status})
    return done


def main() -> None:
    result = asyncio.run(_play(_parser().parse_args()))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
