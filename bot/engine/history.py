"""Steering the story back: rewind, take back, regenerate, edit, and why a feeling moved.

Nothing is deleted from the log. A ``beats_rewound`` event names a range of a chat's events
that leaves the story; the projections replay that chat without it, so rebuilding from the log
always gives the state the player sees.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.engine.context import StoryContext
from bot.engine.errors import (
    NothingToRegenerate,
    NothingToRewind,
    NotLatestLine,
    NotOwnLine,
    RewindCrossesMeanwhile,
)
from bot.store import append_events
from bot.store.events import BeatsRewound, RewindReason
from bot.store.rewinds import carried_past, end_of_beat, meanwhile_boundary_after
from bot.store.views import Beat


@dataclass(frozen=True, slots=True)
class Rewound:
    """What left the story: the beats (with the adapter messages that showed them)."""

    beats: tuple[Beat, ...]
    after_event_id: int


@dataclass(frozen=True, slots=True)
class FeelingChange:
    event_id: int
    affinity_delta: int
    trust_delta: int
    beat_id: int | None
    beat_text: str
    speaker_id: str


async def beat_by_message(ctx: StoryContext, chat_id: str, message_id: int) -> Beat | None:
    """The beat a Discord message shows (the player's message or a reply's message)."""
    return await ctx.views.beat_showing(chat_id, message_id)


async def beat_by_id(ctx: StoryContext, chat_id: str, turn_id: int) -> Beat | None:
    return await ctx.views.beat(chat_id, turn_id)


async def _reply_of(ctx: StoryContext, chat_id: str, beat: Beat) -> int:
    """The id of the latest reply to ``beat`` (itself, for a reply; itself if unanswered)."""
    if beat.role == "assistant":
        return beat.id
    reply = await ctx.views.latest_reply_to(chat_id, beat.id)
    return beat.id if reply is None else reply.id


async def _refuse_crossing_meanwhile(
    ctx: StoryContext, chat_id: str, after: int, *, from_line: bool = False
) -> None:
    """A rewind may go back to any point after the latest meanwhile start or end; one that
    would take either back is refused, naming the earliest line it may go back to (the first
    beat after it, or with ``from_line`` the first of the player's lines)."""
    boundary = await meanwhile_boundary_after(ctx.db, chat_id, after)
    if boundary is None:
        return
    first = await ctx.views.first_beat_after(chat_id, boundary.event_id, players_only=from_line)
    if first is None:
        raise RewindCrossesMeanwhile(boundary.ended, None)
    raise RewindCrossesMeanwhile(boundary.ended, _excerpt(first.text), players=first.role == "user")


def _excerpt(text: str, limit: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


async def _rewind_after(
    ctx: StoryContext,
    chat_id: str,
    after: int,
    reason: RewindReason,
    *,
    from_line: bool = False,
) -> Rewound:
    await _refuse_crossing_meanwhile(ctx, chat_id, after, from_line=from_line)
    gone = tuple(await ctx.views.beats(chat_id, after_id=after))
    rewind = BeatsRewound(chat_id=chat_id, after_event_id=after, reason=reason)
    # edits of lines that stay, and what they derived again, would otherwise go with the range
    carried = await carried_past(ctx.db, chat_id, after)
    await append_events(ctx.db, [rewind, *carried])
    return Rewound(gone, after)


async def rewind_to(ctx: StoryContext, chat_id: str, beat: Beat) -> Rewound:
    """Return to the state right after ``beat`` (a player's line keeps the reply to it)."""
    reply_id = await _reply_of(ctx, chat_id, beat)
    boundary = await end_of_beat(ctx.db, chat_id, reply_id)
    if boundary is None:
        raise NothingToRewind()
    return await _rewind_after(ctx, chat_id, boundary - 1, "rewind")


async def rewind_from(ctx: StoryContext, chat_id: str, beat: Beat) -> Rewound:
    """Take ``beat`` and everything after it out of the story (what came before it stays,
    a meanwhile's end and a world change included)."""
    return await _rewind_after(
        ctx, chat_id, await _before_start(ctx, beat), "rewind", from_line=beat.role == "user"
    )


async def _before_start(ctx: StoryContext, beat: Beat) -> int:
    """The last event before ``beat``'s turn began: its turn_started goes with it, or the beat
    would look cut off by a crash at the next start."""
    started = await ctx.views.turn_started_of(beat.id)
    return (started or beat.id) - 1


async def is_latest_player_line(ctx: StoryContext, chat_id: str, beat: Beat) -> bool:
    latest = await ctx.views.last_player_lines(chat_id, 1)
    return bool(latest) and latest[0].id == beat.id


async def take_back(ctx: StoryContext, chat_id: str, beat: Beat) -> Rewound:
    """Remove a player's latest beat and the reply to it, as if it was never sent."""
    if beat.role != "user":
        raise NotOwnLine("taken back")
    if not await is_latest_player_line(ctx, chat_id, beat):
        raise NotLatestLine()
    return await _rewind_after(ctx, chat_id, await _before_start(ctx, beat), "deleted")


async def latest_reply(ctx: StoryContext, chat_id: str) -> tuple[Beat, Beat | None]:
    """The latest character beat and the player's line it answered (if any)."""
    reply = await ctx.views.last_beat(chat_id)
    if reply is None or reply.role != "assistant":
        raise NothingToRegenerate()
    answered = reply.answers_turn_id
    player = None if answered is None else await beat_by_id(ctx, chat_id, answered)
    return reply, player


async def rewind_reply(
    ctx: StoryContext, chat_id: str, reply: Beat, player: Beat | None
) -> Rewound:
    """Take the latest reply out of the story (keeping the player's line it answered)."""
    if player is not None:
        after = player.id
    else:
        after = await _before_start(ctx, reply)
    return await _rewind_after(ctx, chat_id, after, "regenerate")


async def why(
    ctx: StoryContext, chat_id: str, source_id: str, target_id: str, limit: int = 10
) -> list[FeelingChange]:
    """The beats that moved source's affinity and trust toward target, newest first."""
    changes = []
    for event_id, affinity, trust, beat_id in await ctx.views.edge_history(
        chat_id, source_id, target_id, limit
    ):
        beat = None if beat_id is None else await ctx.views.beat(chat_id, beat_id)
        text, speaker = ("", "") if beat is None else (beat.text, beat.speaker_id)
        changes.append(FeelingChange(event_id, affinity, trust, beat_id, text, speaker))
    return changes
