"""Which beats a character's transcript shows: a window that only grows between jumps.

A prefix cache reuses a prompt's unchanged beginning, so the transcript must not slide by one
beat a turn. ``prompts.settle_window`` plays the speaker's beats forward and moves the start
only when the window overflows; it is played from an anchor that itself moves in big steps,
so the rows read stay bounded however long the story gets.
"""

from __future__ import annotations

from bot.engine.prompts import PointOfView, beat_cost, settle_window, transcript_room
from bot.store.views import Beat, Views

ANCHOR_STEPS = 2
"""The anchor moves every ANCHOR_STEPS × transcript_beats beats (a jump of its own, rarely)."""


async def witnessed_window(
    views: Views, pov: PointOfView, *, budget_tokens: int, max_beats: int
) -> list[Beat]:
    """The beats ``pov.speaker`` witnessed that its next prompt shows, oldest first."""
    chat_id, speaker_id = pov.chat.id, pov.speaker.id
    step = ANCHOR_STEPS * max_beats

    def since_anchor(witnessed: int) -> int:
        return witnessed - max(0, (witnessed - max_beats) // step * step)

    beats = await views.witnessed_latest(chat_id, speaker_id, since_anchor)
    room = transcript_room(pov, budget_tokens)
    start = settle_window([beat_cost(pov, b) for b in beats], room, max_beats)
    return beats[start:]
