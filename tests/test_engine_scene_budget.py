"""A long scene closes with prompts within the budget, each witness's from its own memories."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from bot.config import Settings
from bot.engine import Engine
from bot.engine.prompts import prompt_tokens
from bot.llm import Message, Priority
from bot.store import YOU, Database, append_events
from tests.helpers.engine_helpers import GUEST, HOST, seed_story

BUDGET = 600


class RecordingLLM:
    """Answers every JSON call with a short summary and keeps what each call was sent."""

    def __init__(self) -> None:
        self.prompts: list[list[Message]] = []

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        priority: Priority = Priority.BACKGROUND,
        **params: Any,
    ) -> str:
        self.prompts.append(list(messages))
        if messages[0].content.startswith("List the open plot threads"):
            return json.dumps({"threads": [{"title": "the ledger", "summary": "torn out"}]})
        return json.dumps({"summary": f"condensed {len(self.prompts)}"})

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        priority: Priority = Priority.NARRATIVE,
        **params: Any,
    ) -> AsyncIterator[str]:
        raise AssertionError("no reply is streamed in this test")
        yield ""  # pragma: no cover


async def _long_scene(db: Database, chat_id: str, beats: int) -> int:
    row = await db.fetchone(
        "SELECT id FROM scenes WHERE chat_id = ? AND status = 'open'", (chat_id,)
    )
    assert row is not None
    scene_id = int(row[0])
    events = [
        (
            "memory_written",
            {
                "owner_id": owner,
                "chat_id": chat_id,
                "scene_id": scene_id,
                "witness_you": 1,
                "witness_host": 1,
                "witness_guest": 1,
                "text": f"{owner} alone knows secret {n}: " + "the harbour fog rolls in. " * 6,
            },
        )
        for n in range(beats)
        for owner in (YOU, HOST, GUEST)
    ]
    await append_events(db, events)
    return scene_id


async def test_a_long_scene_closes_with_every_prompt_within_the_budget(db: Database) -> None:
    # Given a scene of 300 beats, far more than one prompt of 600 tokens holds
    llm = RecordingLLM()
    engine = Engine(db, llm, Settings.model_validate({"engine": {"prompt_token_budget": BUDGET}}))
    chat_id = await seed_story(engine)
    scene_id = await _long_scene(db, chat_id, 300)
    # When the scene closes
    closed = await engine.scenes.close(chat_id)
    # Then no prompt was bigger than the budget
    assert max(prompt_tokens(p) for p in llm.prompts) <= BUDGET
    # and every witness still got its summary, and the threads were found
    assert set(closed.summaries) == {YOU, HOST, GUEST}
    assert closed.threads == ("the ledger",)
    # and each witness's summary read only its own memories, condensed or not
    for owner in (HOST, GUEST):
        own = [p for p in llm.prompts if f"{owner} alone knows" in p[-1].content]
        assert own, owner
        assert all(
            f"{other} alone knows" not in p[-1].content
            for p in own
            for other in (YOU, HOST, GUEST)
            if other != owner
        )
    row = await db.fetchone(
        "SELECT pov_summary FROM memories WHERE scene_id = ? AND owner_id = ? ORDER BY id",
        (scene_id, HOST),
    )
    assert row is not None and row[0].startswith("condensed")


async def test_a_scene_that_fits_is_summarised_in_one_call_per_witness(db: Database) -> None:
    llm = RecordingLLM()
    engine = Engine(db, llm, Settings.model_validate({"engine": {"prompt_token_budget": BUDGET}}))
    chat_id = await seed_story(engine)
    await _long_scene(db, chat_id, 2)
    await engine.scenes.close(chat_id)
    # three witnesses, then the story threads: nothing condensed
    assert len(llm.prompts) == 4
    assert not any("one part of a long scene" in p[0].content for p in llm.prompts)
