"""Prompts a server's prefix cache can reuse, and context that says nothing twice (issue 13).

A reply prompt goes from what changes least to what changes most: the character, its memories
from before the transcript, the transcript (a window that only grows between jumps), then one
short message with what changes every turn, then the cue. Memories never repeat a beat the
same prompt's transcript shows, nor summarise a scene it is still showing.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config import Settings
from bot.engine import Engine, NullSink
from bot.engine.prompts import (
    EARLIER_HEADER,
    KEEP_AFTER_JUMP,
    RECALLED_HEADER,
    prompt_tokens,
    settle_window,
)
from bot.engine.state import state_prompt
from bot.llm import Message, MockLLMClient, Task
from bot.llm.mock import RecordedCall
from bot.store import Database
from bot.store.views import Relationship
from tests.helpers.engine_helpers import HOST, character, seed_story

REPLY = re.compile(r"\bR\d+\b")


class MarkingLLM(MockLLMClient):
    """Every reply carries a marker (R1, R2, …); a scene summary repeats every marker it was
    given, so a summary shown beside a beat it covers shows that beat's marker twice."""

    def __init__(self, *, reply_words: int = 12) -> None:
        super().__init__()
        self.replies = 0
        self.reply_words = reply_words

    def answer(self, call: RecordedCall) -> str:
        task = call.purpose.task if call.purpose is not None else None
        if task == Task.NARRATE:
            self.replies += 1
            return f"R{self.replies} " + "lantern harbour " * self.reply_words
        if task == Task.CLASSIFY:
            return json.dumps({"segments": []})
        if task == Task.STATE:
            n = len(self.calls)
            return json.dumps(
                {"relationships": [{"target_id": "you", "affinity_delta": n % 3 - 1}]}
            )
        if task == Task.SUMMARY:
            markers = REPLY.findall(call.messages[-1].content)
            return json.dumps({"summary": "SUMMARY " + " ".join(markers)})
        return json.dumps({"summary": "", "threads": []})

    def prompts(self) -> list[list[Message]]:
        return [c.messages for c in self.calls if c.kind == "stream"]


async def _story(db: Database, llm: MarkingLLM, **engine: Any) -> tuple[Engine, str]:
    app = Engine(db, llm, Settings.model_validate({"engine": engine} if engine else {}))
    return app, await seed_story(app, guest=False)


def _transcript(prompt: Sequence[Message]) -> list[Message]:
    """The beats of a reply prompt: between the head and the changing context."""
    return list(prompt[1:-2])


def _memory_markers(prompt: Sequence[Message]) -> list[str]:
    head = prompt[0].content
    earlier = head.split(EARLIER_HEADER, 1)[1] if EARLIER_HEADER in head else ""
    context = prompt[-2].content
    recalled = context.split(RECALLED_HEADER, 1)[1] if RECALLED_HEADER in context else ""
    return REPLY.findall(earlier) + REPLY.findall(recalled)


async def test_a_reply_prompt_goes_from_stable_to_changing(db: Database) -> None:
    llm = MarkingLLM()
    engine, chat_id = await _story(db, llm)
    for n in range(3):
        await engine.turns.take(chat_id, f"line {n} about the lantern", NullSink())
    await engine.chats.set_world(chat_id, time="23:30", weather="fog")

    await engine.turns.take(chat_id, "and now?", NullSink())

    prompt = llm.prompts()[-1]
    assert prompt[0].role == "system" and prompt[0].content.startswith("You are BotA")
    assert [m.role for m in prompt[-2:]] == ["system", "user"]
    context, cue = prompt[-2].content, prompt[-1].content
    assert cue == "Me: and now?"
    # what changes turn to turn is only in the message before the cue
    assert "23:30" in context and "fog" in context and "affinity" in context
    for stable in [prompt[0], *_transcript(prompt)]:
        assert "23:30" not in stable.content and "affinity" not in stable.content
    last_two = [m.content.split(" ", 1)[0] for m in _transcript(prompt)][-2:]
    assert last_two == ["Me:", "R3"]


@pytest.mark.parametrize("post_history", ["", "Stay in character, in the present tense. " * 30])
async def test_between_jumps_each_prompt_is_the_last_one_with_new_beats_appended(
    db: Database, post_history: str
) -> None:
    llm = MarkingLLM(reply_words=40)
    engine, chat_id = await _story(db, llm, prompt_token_budget=1500, transcript_beats=20)
    if post_history:  # long instructions after the cue must not make the window slide
        await engine.characters.author(
            character(HOST, "BotA", post_history_instructions=post_history)
        )
    for n in range(40):
        await engine.turns.take(chat_id, f"line {n}, quietly", NullSink())

    prompts = llm.prompts()
    after_beats = 3 if post_history else 2  # the changing context, the cue, the instructions
    jumps = 0
    for before, after in itertools.pairwise(prompts):
        kept = before[:-after_beats]
        if after[: len(kept)] == kept:
            cue = before[-after_beats + 1]
            assert after[len(kept)].content == cue.content  # the cue, now a beat
        else:
            jumps += 1
    # the window moves by a chunk at a time (budget or beat count), not every turn
    assert 0 < jumps <= len(prompts) // 3
    assert all(len(prompt) - 1 - after_beats <= 20 for prompt in prompts)
    assert max(prompt_tokens(prompt) for prompt in prompts) <= 1500


@given(st.lists(st.integers(min_value=0, max_value=60), max_size=80))
def test_the_window_start_only_moves_forward_and_only_when_it_overflows(
    costs: list[int],
) -> None:
    room, max_beats = 150, 10
    previous = 0
    for n in range(len(costs) + 1):
        start = settle_window(costs[:n], room, max_beats)
        assert start >= previous
        assert sum(costs[start:n]) <= room and n - start <= max_beats
        if start != previous:  # a jump: it leaves room for the next beats
            assert sum(costs[start:n]) <= room * KEEP_AFTER_JUMP
            assert n - start <= int(max_beats * KEEP_AFTER_JUMP)
        previous = start


async def test_memories_never_repeat_a_beat_of_the_transcript_nor_summarise_its_scene(
    db: Database,
) -> None:
    llm = MarkingLLM(reply_words=30)
    engine, chat_id = await _story(db, llm, prompt_token_budget=1200, recalled_memories=6)
    await engine.turns.take(chat_id, "I hide the brass key under the mat", NullSink())
    for n in range(7):
        await engine.turns.take(chat_id, f"scene one, line {n}", NullSink())
    await engine.scenes.close(chat_id)  # the memory of the key line now holds the summary
    # the scene's last beats are still in the transcript: its summary would repeat them
    await engine.turns.take(chat_id, "where is the brass key?", NullSink())
    for n in range(12):
        await engine.turns.take(chat_id, f"scene two, line {n}", NullSink())
    await engine.turns.take(chat_id, "again, the brass key?", NullSink())

    for prompt in llm.prompts():
        shown = {m for beat in _transcript(prompt) for m in REPLY.findall(beat.content)}
        assert not shown & set(_memory_markers(prompt)), "a memory repeats the transcript"
    asked_early, asked_late = (p for p in llm.prompts() if p[-1].content.endswith("key?"))
    assert "SUMMARY" not in asked_early[-2].content
    # once the first scene has left the transcript, its summary is what the key brings back
    assert "SUMMARY" in asked_late[-2].content


def test_a_state_prompt_puts_what_stays_the_same_first() -> None:
    def prompt(beat: str, affinity: int) -> list[Message]:
        return state_prompt(
            source_name="Mira",
            user_name="Alex",
            persona="Runs the Lantern.",
            beat_text=beat,
            targets=[("you", "Alex", Relationship("mira", "you", affinity=affinity))],
        )

    first, second = prompt("Alex: QUAY\nMira: hello", 50), prompt("Alex: bye\nMira: wait", 53)
    assert first[0] == second[0]  # the whole system message, instructions and answer shape
    assert "Answer with JSON only" in first[0].content
    assert "QUAY" not in first[0].content and "affinity 50/100" in first[-1].content


async def test_the_same_character_is_told_it_never_speaks_for_the_player_in_a_meanwhile(
    db: Database,
) -> None:
    """The character part does not depend on who is present (so a meanwhile keeps the
    cache), and it still forbids writing for the player, who is absent there."""
    llm = MarkingLLM()
    app = Engine(db, llm, Settings())
    chat_id = await seed_story(app)
    await app.turns.take(chat_id, "hello", NullSink())
    await app.scenes.start_meanwhile(chat_id)
    await app.turns.meanwhile_beats(chat_id, 2, NullSink)

    host_heads = [p[0].content for p in llm.prompts() if p[0].content.startswith("You are BotA")]
    assert len(host_heads) == 2 and host_heads[0] == host_heads[1]
    assert "never for Me" in host_heads[1]
