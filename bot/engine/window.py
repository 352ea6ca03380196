"""Which beats a character's transcript shows: a window that only grows between jumps.

A prefix cache reuses a prompt's unchanged beginning, so the transcript must not slide by one
beat a turn. ``prompts.settle_window`` plays the speaker's beats forward and moves the start
only when the window overflows; it is played from an anchor that itself moves in big steps,
so the rows read stay bounded however long the story gets.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.engine.prompts import PointOfView, beat_cost, settle_window, transcript_room
from bot.store.views import Beat

ANCHOR_STEPS = 2
"""The anchor moves every ANCHOR_STEPS × transcript_beats beats (a jump of its own, rarely)."""


def since_anchor(max_beats: int) -> Callable[[int], int]:
    """How many of its latest beats a character's window is played from, given how many it
    witnessed: those since the anchor (for ``views.speaker_view_read``)."""
    step = ANCHOR_STEPS * max_beats

    def beats_since(witnessed: int) -> int:
        return witnessed - max(0, (witnessed - max_beats) // step * step)

    return beats_since


def settled_window(
    pov: PointOfView, beats: list[Beat], *, budget_tokens: int, max_beats: int
) -> list[Beat]:
    """The beats since the anchor (``beats``, oldest first) that ``pov.speaker``'s next
    prompt shows."""
    room = transcript_room(pov, budget_tokens)
    start = settle_window([beat_cost(pov, b) for b in beats], room, max_beats)
    return beats[start:]
