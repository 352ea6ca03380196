"""A long scene closes with prompts within the budget, each witness's from its own memories."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from bot.config import Settings
from bot.engine import Engine
from bot.engine.prompts import prompt_tokens
from bot.llm import Message, Priority, Purpose, Task
from bot.store import YOU, Database, append_events
from tests.helpers.engine_helpers import GUEST, HOST, seed_story

BUDGET = 600


class RecordingLLM:
    """Answers every JSON call with a short summary and keeps what each call was sent."""

    def __init__(self) -> None:
        self.prompts: list[list[Message]] = []
        self.purposes: list[Purpose | None] = []

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        priority: Priority = Priority.BACKGROUND,
        purpose: Purpose | None = None,
        **params: Any,
    ) -> str:
        self.prompts.append(list(messages))
        self.purposes.append(purpose)
        if purpose is not None and purpose.task == Task.THREADS:
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


async def _long_scene(engine: Engine, chat_id: str, beats: int) -> int:
    scene = (await engine.queries.status(chat_id)).scene
    assert scene is not None and scene.status == "open"
    scene_id = scene.id
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
    await append_events(engine.ctx.db, events)
    return scene_id


async def test_a_long_scene_closes_with_every_prompt_within_the_budget(db: Database) -> None:
    # Given a scene of 300 beats, far more than one prompt of 600 tokens holds
    llm = RecordingLLM()
    engine = Engine(db, llm, Settings.model_validate({"engine": {"prompt_token_budget": BUDGET}}))
    chat_id = await seed_story(engine)
    scene_id = await _long_scene(engine, chat_id, 300)
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
    host_first = next(
        m for m in await engine.queries.scene_memories(scene_id) if m.owner_id == HOST
    )
    assert host_first.pov_summary.startswith("condensed")


async def test_a_scene_that_fits_is_summarised_in_one_call_per_witness(db: Database) -> None:
    llm = RecordingLLM()
    engine = Engine(db, llm, Settings.model_validate({"engine": {"prompt_token_budget": BUDGET}}))
    chat_id = await seed_story(engine)
    await _long_scene(engine, chat_id, 2)
    await engine.scenes.close(chat_id)
    # three witnesses, then the story threads: nothing condensed
    assert len(llm.prompts) == 4
    assert not any(p is not None and p.task == Task.CONDENSE for p in llm.purposes)
    assert not any("one part of a long scene" in p[0].content for p in llm.prompts)
