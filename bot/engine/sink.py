"""The output seam of a streaming beat: Discord, the console and tests each implement it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

log = logging.getLogger(__name__)

BeatStatus = Literal["done", "stopped", "failed"]
A = TypeVar("A")


@dataclass(frozen=True, slots=True)
class Speaker:
    """Who is speaking, as an adapter needs to show it (name, avatar image key)."""

    id: str
    name: str
    avatar: str = ""


@dataclass(frozen=True, slots=True)
class BeatEnd:
    text: str
    status: BeatStatus
    error: str = ""
    """What went wrong, in full, for the log (may name URLs or quote the server)."""
    reason: str = ""
    """What went wrong in a few words fit for a public channel."""


class BeatSink(Protocol):
    """Receives one beat as it streams. ``end`` returns the ids of messages that show it."""

    async def begin(self, speaker: Speaker) -> None: ...

    async def append(self, text: str) -> None: ...

    async def end(self, outcome: BeatEnd) -> Sequence[int]: ...


class NullSink:
    """Discards a beat: for background beats no one watches, and for tests."""

    async def begin(self, speaker: Speaker) -> None:
        return None

    async def append(self, text: str) -> None:
        return None

    async def end(self, outcome: BeatEnd) -> Sequence[int]:
        return ()


class GuardedSink:
    """Wraps an adapter's sink so a failure to *show* a beat never loses the beat itself."""

    def __init__(self, inner: BeatSink) -> None:
        self._inner = inner
        self._broken = False

    async def begin(self, speaker: Speaker) -> None:
        await self._call("begin", self._inner.begin, speaker)

    async def append(self, text: str) -> None:
        if not self._broken:
            await self._call("append", self._inner.append, text)

    async def end(self, outcome: BeatEnd) -> Sequence[int]:
        try:
            return await self._inner.end(outcome)
        except Exception:
            log.exception("the output sink failed to finish a beat; the beat is kept in the log")
            return ()

    async def _call(self, what: str, method: Callable[[A], Awaitable[None]], arg: A) -> None:
        try:
            await method(arg)
        except Exception:
            self._broken = True
            log.exception("the output sink failed in %s; the beat keeps streaming to the log", what)
