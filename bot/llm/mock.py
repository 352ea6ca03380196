"""``MockLLMClient``: a scripted ``LLMClient`` for tests and offline runs.

Answers come from ``canned`` in order (``_canned`` is the remaining list, on purpose, so tests
and subclasses can inspect and pop it). An exception in the list is raised instead of answering.
Running dry raises ``MockLLMExhausted``, an ``AssertionError``, so code that swallows
``LLMError`` (structured outputs) cannot hide a test that scripted too few answers.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.llm.base import Message, Priority

_WORDS = re.compile(r"\s+|\S+\s*")


class MockLLMExhausted(AssertionError):
    """A test asked the mock for more answers than it scripted."""


@dataclass
class RecordedCall:
    kind: Literal["complete", "stream"]
    messages: list[Message]
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    priority: Priority = Priority.BACKGROUND


def split_words(text: str) -> list[str]:
    """Word-sized chunks, whitespace kept, so ``"".join(split_words(t)) == t``."""
    return _WORDS.findall(text)


class MockLLMClient:
    """Pops one canned answer per call; records every call in ``calls``."""

    def __init__(
        self, canned: Iterable[str | BaseException] = (), *, chunk_delay: float = 0.0
    ) -> None:
        self._canned: list[str | BaseException] = list(canned)
        self.calls: list[RecordedCall] = []
        self.chunk_delay = chunk_delay

    def add(self, *answers: str | BaseException) -> None:
        self._canned.extend(answers)

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        priority: Priority = Priority.BACKGROUND,
        **params: Any,
    ) -> str:
        return self._next(RecordedCall("complete", list(messages), model, params, priority))

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        priority: Priority = Priority.NARRATIVE,
        **params: Any,
    ) -> AsyncIterator[str]:
        text = self._next(RecordedCall("stream", list(messages), model, params, priority))
        for piece in split_words(text):
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
            yield piece

    def _next(self, call: RecordedCall) -> str:
        self.calls.append(call)
        if not self._canned:
            raise MockLLMExhausted(
                f"MockLLMClient ran out of canned answers at call #{len(self.calls)} "
                f"({call.kind}, model={call.model!r}); add more entries to canned=[...]"
            )
        answer = self._canned.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer
