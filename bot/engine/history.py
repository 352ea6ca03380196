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
from bot.engine.views import Beat
from bot.store import append_events
from bot.store.events import WORLD_BOOK_KINDS, BeatsRewound, RewindReason
from bot.store.rewinds import carried_past, next_event_in_story

TRAILING_KINDS = (
    "memory_written",
    "edge_update",
    "activity_change",
    "turn_classified",
    "turn_messages_linked",
    "story_thread_detected",
)
"""Events that finish a beat after its assistant_turn; any other kind starts what comes next."""


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


async def _reply_of(ctx: StoryContext, beat: Beat) -> int:
    """The id of the latest reply to ``beat`` (itself, for a reply; itself if unanswered)."""
    if beat.role == "assistant":
        return beat.id
    row = await ctx.db.fetchone(
        "SELECT MAX(id) FROM turns WHERE answers_turn_id = ? AND role = 'assistant'", (beat.id,)
    )
    return beat.id if row is None or row[0] is None else int(row[0])


async def _end_of_beat(ctx: StoryContext, chat_id: str, reply_id: int) -> int | None:
    """The id of the first event after ``reply_id`` that is still in the story and not part of
    that beat, if any. Rewound events, rewinds themselves and edits do not count."""
    quiet = (
        *TRAILING_KINDS,
        *WORLD_BOOK_KINDS,
        "beats_rewound",
        "manual_edit",
        "derivations_replaced",
    )
    return await next_event_in_story(ctx.db, chat_id, reply_id, passing_over=quiet)


BOUNDARY_KINDS = ("meanwhile_scene_started", "meanwhile_scene_closed")
"""Changes bound to Discord threads and digests that a rewind cannot take back with them."""


async def _refuse_crossing_meanwhile(
    ctx: StoryContext, chat_id: str, after: int, *, from_line: bool = False
) -> None:
    """A rewind may go back to any point after the latest meanwhile start or end; one that
    would take either back is refused, naming the earliest line it may go back to (the first
    beat after it, or with ``from_line`` the first of the player's lines)."""
    boundary = await ctx.db.fetchone(
        "SELECT id, kind FROM event_log WHERE chat_id = ? AND id > ? AND kind IN (?, ?) "
        "ORDER BY id DESC LIMIT 1",
        (chat_id, after, *BOUNDARY_KINDS),
    )
    if boundary is None:
        return
    role = " AND role = 'user'" if from_line else ""
    first = await ctx.db.fetchone(
        f"SELECT text, role FROM turns WHERE chat_id = ? AND id > ?{role} ORDER BY id LIMIT 1",
        (chat_id, boundary[0]),
    )
    ended = boundary[1] == "meanwhile_scene_closed"
    if first is None:
        raise RewindCrossesMeanwhile(ended, None)
    raise RewindCrossesMeanwhile(ended, _excerpt(first[0]), players=first[1] == "user")


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
    reply_id = await _reply_of(ctx, beat)
    boundary = await _end_of_beat(ctx, chat_id, reply_id)
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
    row = await ctx.db.fetchone("SELECT turn_started_id FROM turns WHERE id = ?", (beat.id,))
    started = row[0] if row is not None and row[0] is not None else beat.id
    return int(started) - 1


async def is_latest_player_line(ctx: StoryContext, chat_id: str, beat: Beat) -> bool:
    latest = await ctx.db.fetchone(
        "SELECT MAX(id) FROM turns WHERE chat_id = ? AND role = 'user'", (chat_id,)
    )
    return latest is not None and latest[0] == beat.id


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
        text, speaker = "", ""
        if beat_id is not None:
            row = await ctx.db.fetchone(
                "SELECT text, speaker_id FROM turns WHERE id = ?", (beat_id,)
            )
            if row is not None:
                text, speaker = row[0], row[1]
        changes.append(FeelingChange(event_id, affinity, trust, beat_id, text, speaker))
    return changes
