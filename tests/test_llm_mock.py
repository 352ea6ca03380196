"""MockLLMClient: the scripted fake every engine test leans on."""

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
    assert mock._canned == []
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
            answer = self._canned.pop(0)
            assert isinstance(answer, str)
            for letter in answer:
                yield letter

    mock = Letters(canned=["abc"])
    assert [p async for p in mock.stream(MSGS, model="m")] == ["a", "b", "c"]
    assert mock._canned == []
