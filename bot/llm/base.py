"""The LLM seam the engine codes against: messages, priorities and the client protocol."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message, as the OpenAI chat-completions API takes it."""

    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


class Priority(enum.IntEnum):
    """Who waits for a free LLM slot first: a player watching a reply beats bookkeeping."""

    NARRATIVE = 0
    BACKGROUND = 1


class Task(enum.StrEnum):
    """The kinds of call the story makes."""

    NARRATE = "narrate"
    CLASSIFY = "classify"
    STATE = "state"
    SUMMARY = "summary"
    DIGEST = "digest"
    THREADS = "threads"
    CONDENSE = "condense"


@dataclass(frozen=True, slots=True)
class Purpose:
    """What one call is for, said by the caller: the server never sees it, a test fake answers
    by it (calls run concurrently, so their order says nothing). ``about`` is whose call it is:
    the speaker of a reply, the character whose feelings move, the owner of a summary."""

    task: Task
    about: str | None = None


@runtime_checkable
class LLMClient(Protocol):
    """Anything that answers chat messages: the HTTP client, the mock, a test double.

    ``params`` (temperature, top_p, max_tokens, response_format, ...) go to the server as is;
    ``purpose`` does not (see ``Purpose``).
    ``stream`` is an async generator: close it (``contextlib.aclosing``) or cancel the task that
    iterates it to hang up on the server at once.
    """

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        priority: Priority = Priority.BACKGROUND,
        purpose: Purpose | None = None,
        **params: Any,
    ) -> str: ...

    def stream(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        priority: Priority = Priority.NARRATIVE,
        purpose: Purpose | None = None,
        **params: Any,
    ) -> AsyncIterator[str]: ...
