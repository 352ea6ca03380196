"""MockLLMClient (answers in call order) and ScriptedLLM (answers by purpose): the fakes every
engine test leans on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from bot.llm import (
    LLMClient,
    LLMHTTPError,
    Message,
    MockLLMClient,
    MockLLMExhausted,
    Priority,
    Purpose,
    ScriptedLLM,
    Task,
)
from bot.llm.mock import split_words

MSGS = [Message(role="user", content="hi")]


async def test_answers_in_order_and_records_calls() -> None:
    mock = MockLLMClient(canned=["first", "second answer  here\n"])
    assert isinstance(mock, LLMClient)
    assert await mock.complete(MSGS, model="m1", temperature=0.1) == "first"
    pieces = [p async for p in mock.stream(MSGS, model="m2", priority=Priority.NARRATIVE)]
    assert "".join(pieces) == "second answer  here\n"
    assert len(pieces) > 1
    assert mock.remaining == []
    assert [(c.kind, c.model, c.params) for c in mock.calls] == [
        ("complete", "m1", {"temperature": 0.1}),
        ("stream", "m2", {}),
    ]
    assert mock.calls[0].messages == MSGS


async def test_running_dry_is_a_loud_assertion_not_an_llm_error() -> None:
    mock = MockLLMClient()
    with pytest.raises(MockLLMExhausted, match="ran out of canned answers at call #1"):
        await mock.complete(MSGS, model="m")
    assert issubclass(MockLLMExhausted, AssertionError)
    with pytest.raises(MockLLMExhausted):
        [p async for p in mock.stream(MSGS, model="m")]


async def test_exception_entries_are_raised() -> None:
    mock = MockLLMClient(canned=[LLMHTTPError(503), "after"])
    with pytest.raises(LLMHTTPError):
        await mock.complete(MSGS, model="m")
    assert await mock.complete(MSGS, model="m") == "after"


async def test_chunk_delay_makes_a_slow_stream() -> None:
    mock = MockLLMClient(canned=["a b c"], chunk_delay=0.01)
    start = asyncio.get_running_loop().time()
    assert "".join([p async for p in mock.stream(MSGS, model="m")]) == "a b c"
    assert asyncio.get_running_loop().time() - start >= 0.025


def test_split_words_keeps_every_character() -> None:
    text = "  Hello,\tworld!\n\nÜnïcode 🙂 "
    assert "".join(split_words(text)) == text
    assert split_words("") == []


async def test_subclass_can_override_stream() -> None:
    class Letters(MockLLMClient):
        async def stream(
            self,
            messages: Sequence[Message],
            *,
            model: str,
            priority: Priority = Priority.NARRATIVE,
            **params: Any,
        ) -> AsyncIterator[str]:
            words = super().stream(messages, model=model, priority=priority, **params)
            for letter in "".join([w async for w in words]):
                yield letter

    mock = Letters(canned=["abc"])
    assert [p async for p in mock.stream(MSGS, model="m")] == ["a", "b", "c"]
    assert mock.remaining == []


def about(task: Task, who: str | None = None) -> Purpose:
    return Purpose(task, who)


async def test_scripted_answers_by_purpose_whatever_the_order_of_calls() -> None:
    llm = ScriptedLLM(
        narrate={"bot_b": "BotB speaks.", "bot_a": "BotA speaks."},
        classify="labels",
        state={"bot_a": "a feels", "bot_b": "b feels"},
        summary=["any summary"],
    )
    assert isinstance(llm, LLMClient)
    assert await llm.complete(MSGS, model="m", purpose=about(Task.STATE, "bot_b")) == "b feels"
    assert await llm.complete(MSGS, model="m", purpose=about(Task.CLASSIFY)) == "labels"
    reply = llm.stream(MSGS, model="m", purpose=about(Task.NARRATE, "bot_a"))
    assert "".join([p async for p in reply]) == "BotA speaks."
    assert await llm.complete(MSGS, model="m", purpose=about(Task.STATE, "bot_a")) == "a feels"
    assert await llm.complete(MSGS, model="m", purpose=about(Task.SUMMARY, "you")) == (
        "any summary"
    )
    assert llm.unused == {"narrate[bot_b]": ["BotB speaks."]}
    assert [c.purpose for c in llm.calls_for(Task.STATE)] == [
        about(Task.STATE, "bot_b"),
        about(Task.STATE, "bot_a"),
    ]
    assert len(llm.calls_for(Task.STATE, "bot_a")) == 1


async def test_scripted_answers_of_one_purpose_come_in_turn_and_keyed_ones_first() -> None:
    llm = ScriptedLLM(state=["first", LLMHTTPError(503), "third"])
    llm.script(state={"bot_a": "for bot_a"})
    state_of = about(Task.STATE, "bot_a")
    assert await llm.complete(MSGS, model="m", purpose=state_of) == "for bot_a"
    assert await llm.complete(MSGS, model="m", purpose=state_of) == "first"
    with pytest.raises(LLMHTTPError):
        await llm.complete(MSGS, model="m", purpose=state_of)
    assert await llm.complete(MSGS, model="m", purpose=about(Task.STATE)) == "third"
    assert llm.unused == {}


async def test_scripted_running_dry_names_the_purpose_loudly() -> None:
    llm = ScriptedLLM(classify="labels")
    with pytest.raises(MockLLMExhausted, match=r"no state answer left for 'bot_a' at call #1"):
        await llm.complete(MSGS, model="m", purpose=about(Task.STATE, "bot_a"))
    with pytest.raises(MockLLMExhausted, match=r"unused: \{'classify': \['labels'\]\}"):
        [p async for p in llm.stream(MSGS, model="m", purpose=about(Task.NARRATE))]
    with pytest.raises(MockLLMExhausted, match="without a purpose"):
        await llm.complete(MSGS, model="m")
