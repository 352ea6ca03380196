"""Scripted ``LLMClient`` fakes for tests and offline runs.

``ScriptedLLM`` answers each call by its purpose (``narrate=``, ``classify=``, ``state=``, ...),
whatever order the engine makes its calls in: what most tests want. ``MockLLMClient`` answers
from one queue in call order: for tests whose subject is that order (gates, priorities).
An exception among the answers is raised instead of answering. Running dry raises
``MockLLMExhausted``, an ``AssertionError``, so code that swallows ``LLMError`` (structured
outputs) cannot hide a test that scripted too few answers.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.llm.base import Message, Priority, Purpose, Task

_WORDS = re.compile(r"\s+|\S+\s*")

Answer = str | BaseException
Answers = Answer | Sequence[Answer]
Script = Answers | Mapping[str, Answers]
"""One answer, several (used in turn, one per call), or per ``Purpose.about`` (a speaker, the
character whose feelings move, a summary's owner)."""


class MockLLMExhausted(AssertionError):
    """A test asked the mock for more answers than it scripted."""


@dataclass
class RecordedCall:
    kind: Literal["complete", "stream"]
    messages: list[Message]
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    priority: Priority = Priority.BACKGROUND
    purpose: Purpose | None = None


def split_words(text: str) -> list[str]:
    """Word-sized chunks, whitespace kept, so ``"".join(split_words(t)) == t``."""
    return _WORDS.findall(text)


class _Recording:
    """Records every call in ``calls``, asks ``answer`` for its answer and streams it word by
    word. A test double that computes its answers overrides ``answer``."""

    def __init__(self, *, chunk_delay: float = 0.0) -> None:
        self.calls: list[RecordedCall] = []
        self.chunk_delay = chunk_delay

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        priority: Priority = Priority.BACKGROUND,
        purpose: Purpose | None = None,
        **params: Any,
    ) -> str:
        return self._next(
            RecordedCall("complete", list(messages), model, params, priority, purpose)
        )

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        priority: Priority = Priority.NARRATIVE,
        purpose: Purpose | None = None,
        **params: Any,
    ) -> AsyncIterator[str]:
        call = RecordedCall("stream", list(messages), model, params, priority, purpose)
        text = self._next(call)
        for piece in split_words(text):
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
            yield piece

    def _next(self, call: RecordedCall) -> str:
        self.calls.append(call)
        answer = self.answer(call)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def answer(self, call: RecordedCall) -> Answer:
        """The answer to ``call`` (already in ``calls``); an exception is raised instead."""
        raise NotImplementedError


class MockLLMClient(_Recording):
    """Pops one canned answer per call, in call order; records every call in ``calls``."""

    def __init__(
        self, canned: Iterable[str | BaseException] = (), *, chunk_delay: float = 0.0
    ) -> None:
        super().__init__(chunk_delay=chunk_delay)
        self._canned: list[Answer] = list(canned)

    def add(self, *answers: str | BaseException) -> None:
        self._canned.extend(answers)

    @property
    def remaining(self) -> list[Answer]:
        """The answers no call has asked for yet (a copy)."""
        return list(self._canned)

    def answer(self, call: RecordedCall) -> Answer:
        if not self._canned:
            raise MockLLMExhausted(
                f"MockLLMClient ran out of canned answers at call #{len(self.calls)} "
                f"({call.kind}, model={call.model!r}); add more entries to canned=[...]"
            )
        return self._canned.pop(0)


class ScriptedLLM(_Recording):
    """Answers each call by its ``Purpose``: ``ScriptedLLM(narrate="BotA nods.",
    classify=..., state={"bot_a": ...})``. An answer keyed by ``about`` goes to that
    character's calls; an unkeyed one to any call of its task. Each answer is used once."""

    def __init__(
        self,
        *,
        chunk_delay: float = 0.0,
        narrate: Script = (),
        classify: Script = (),
        state: Script = (),
        summary: Script = (),
        digest: Script = (),
        threads: Script = (),
        condense: Script = (),
    ) -> None:
        super().__init__(chunk_delay=chunk_delay)
        self._queues: dict[tuple[Task, str | None], list[Answer]] = {}
        self.script(
            narrate=narrate,
            classify=classify,
            state=state,
            summary=summary,
            digest=digest,
            threads=threads,
            condense=condense,
        )

    def script(
        self,
        *,
        narrate: Script = (),
        classify: Script = (),
        state: Script = (),
        summary: Script = (),
        digest: Script = (),
        threads: Script = (),
        condense: Script = (),
    ) -> None:
        """Add answers, after those already scripted for the same task (and character)."""
        scripts = {
            Task.NARRATE: narrate,
            Task.CLASSIFY: classify,
            Task.STATE: state,
            Task.SUMMARY: summary,
            Task.DIGEST: digest,
            Task.THREADS: threads,
            Task.CONDENSE: condense,
        }
        for task, script in scripts.items():
            if isinstance(script, Mapping):
                for about, answers in script.items():
                    self._queue(task, about).extend(_listed(answers))
            else:
                self._queue(task, None).extend(_listed(script))

    @property
    def unused(self) -> dict[str, list[Answer]]:
        """Scripted answers no call has asked for, by ``task`` or ``task[about]``."""
        return {
            str(task) if about is None else f"{task}[{about}]": list(answers)
            for (task, about), answers in self._queues.items()
            if answers
        }

    def calls_for(self, task: Task, about: str | None = None) -> list[RecordedCall]:
        """The calls made for ``task`` (and, if given, about one character), in call order."""
        return [
            call
            for call in self.calls
            if call.purpose is not None
            and call.purpose.task == task
            and (about is None or call.purpose.about == about)
        ]

    def _queue(self, task: Task, about: str | None) -> list[Answer]:
        return self._queues.setdefault((task, about), [])

    def answer(self, call: RecordedCall) -> Answer:
        purpose = call.purpose
        if purpose is None:
            raise MockLLMExhausted(
                f"ScriptedLLM got a {call.kind} call without a purpose (call #{len(self.calls)})"
                "; the caller must say what it is for, or use MockLLMClient"
            )
        for key in ((purpose.task, purpose.about), (purpose.task, None)):
            if self._queues.get(key):
                return self._queues[key].pop(0)
        whose = f" for {purpose.about!r}" if purpose.about is not None else ""
        raise MockLLMExhausted(
            f"ScriptedLLM has no {purpose.task} answer left{whose} at call #{len(self.calls)}; "
            f"script one with {purpose.task}=... (unused: {self.unused or 'none'})"
        )


def _listed(answers: Answers) -> list[Answer]:
    if isinstance(answers, str | BaseException):
        return [answers]
    return list(answers)
