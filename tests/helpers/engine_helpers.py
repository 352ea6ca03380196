"""Building blocks for engine tests: a store, a scripted LLM, and a seeded story."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.config import Settings
from bot.engine import BeatEnd, Engine, Speaker
from bot.llm import ScriptedLLM
from bot.store import Database
from tests.helpers.store_factories import bot_authored

HOST, GUEST = "bot_a", "bot_b"


def zero_state() -> str:
    return json.dumps({"affinity_delta": 0, "trust_delta": 0, "knowledge_facts": []})


def parse_answer(text: str, kind: str = "narration") -> str:
    return json.dumps({"segments": [{"kind": kind, "text": text}]})


def summary_answer(text: str) -> str:
    return json.dumps({"summary": text, "knowledge_facts": [], "relationship_summary": ""})


def threads_answer(*titles: str) -> str:
    return json.dumps({"threads": [{"title": t, "summary": ""} for t in titles]})


def character(bot_id: str, name: str, **extra: Any) -> dict[str, Any]:
    """A character's fields as the store's payload factory writes them."""
    return bot_authored(bot_id, name, **extra)


@dataclass
class RecordingSink:
    """A BeatSink that keeps what it was shown."""

    speakers: list[Speaker] = field(default_factory=list)
    chunks: list[str] = field(default_factory=list)
    ends: list[BeatEnd] = field(default_factory=list)
    first_text: asyncio.Event = field(default_factory=asyncio.Event)

    async def begin(self, speaker: Speaker) -> None:
        self.speakers.append(speaker)

    async def append(self, text: str) -> None:
        self.chunks.append(text)
        self.first_text.set()

    async def end(self, outcome: BeatEnd) -> Sequence[int]:
        self.ends.append(outcome)
        return ()


async def seed_story(engine: Engine, *, guest: bool = True, chat_id: str = "chat_bot_a") -> str:
    """Two characters, you, and a chat with both wired in: the usual test world, via the API."""
    await engine.characters.author(character(HOST, "BotA"))
    await engine.characters.author(character(GUEST, "BotB"))
    await engine.characters.set_you(name="Me", pronouns="they/them")
    started = await engine.chats.start(
        host_id=HOST,
        guest_id=GUEST if guest else None,
        place="office",
        time="2026-04-26T20:00:00+00:00",
        chat_id=chat_id,
    )
    return started.chat.id


def make_engine(db: Database, **settings: Any) -> tuple[Engine, ScriptedLLM]:
    """An engine on ``db`` and the LLM fake it asks: script it by purpose (``llm.script``)."""
    llm = ScriptedLLM()
    return Engine(db, llm, Settings.model_validate(settings)), llm
