"""What a rewind must carry past itself: the steering of beats that stay.

A rewind leaves out every event after a point. Some of those events belong to beats *before*
the point: an edit of a line that stays, and what that edit derived again (memories, facts,
feelings, labels, a closed scene's summaries). Left out, the old words would come back; so the
rewind writes them again after itself, in their order. Changes to the world book are no beat's:
they are always carried (adding lore, then regenerating a reply, keeps the lore).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.store.batch import Later, Ref
from bot.store.database import Database
from bot.store.events import WORLD_BOOK_KINDS, ManualEdit, Payload
from bot.store.projector import Exclusions
from bot.store.provenance import Source, source_of
from bot.store.record import StoredEvent, parse_row
from bot.store.sql import Connection

CARRIED_KINDS = (
    "manual_edit",
    "derivations_replaced",
    "memory_written",
    "edge_update",
    "activity_change",
    "turn_classified",
    "story_thread_detected",
    "digest_written",
    *WORLD_BOOK_KINDS,
)
"""The kinds that may steer a beat that stays (each is checked by ``_steers_kept``)."""


async def carried_past(
    db: Database, chat_id: str, after: int, *, placed_at: int = 1
) -> list[Payload | Later[Any]]:
    """The events after ``after`` that steer or re-derive beats at or before it, to be written
    at ``placed_at`` in a batch (after the rewind itself).

    A carried memory is a copy with a new id; a scene summary written on it is pointed at the
    copy, or it would land on nothing.
    """

    def read(raw: Connection) -> list[Payload | Later[Any]]:
        exclusions = Exclusions.of_chat(raw, chat_id, up_to=2**62)
        marks = ",".join("?" * len(CARRIED_KINDS))
        events = [
            parse_row(row)
            for row in raw.execute(
                f"SELECT * FROM event_log WHERE chat_id = ? AND id > ? AND kind IN ({marks}) "
                "ORDER BY id",
                (chat_id, after, *CARRIED_KINDS),
            )
            if not exclusions.rewound(row["id"])
        ]
        closed = _closed_scenes(raw, chat_id, after, exclusions, _scenes_asked(events))
        carried: list[Payload | Later[Any]] = []
        copies: dict[int, int] = {}  # a carried memory's event id -> where its copy stands
        for event in events:
            if _steers_kept(event, after, closed):
                if event.kind == "memory_written":
                    copies[event.id] = placed_at + len(carried)
                carried.append(_copy(event, copies))
        return carried

    return await db.read(read)


def _copy(event: StoredEvent[Payload], copies: dict[int, int]) -> Payload | Later[Any]:
    payload = event.payload
    if (
        isinstance(payload, ManualEdit)
        and payload.target_kind == "memory_pov_summary"
        and payload.target_id in copies
    ):
        fields = {**payload.model_dump(), "target_id": Ref(copies[payload.target_id])}
        return Later(ManualEdit, fields)
    return payload


def _steers_kept(event: StoredEvent[Payload], after: int, closed: frozenset[int]) -> bool:
    payload = event.payload
    if event.kind in WORLD_BOOK_KINDS:
        return True
    if isinstance(payload, ManualEdit) and payload.target_kind == "user_turn_prose":
        return payload.target_id <= after
    source = _derived_from(event)
    return source is not None and _kept(source, after, closed)


def _derived_from(event: StoredEvent[Payload]) -> Source | None:
    """The source an event's staying depends on (for an edit, the source it derives again)."""
    payload = event.payload
    if event.kind == "derivations_replaced":
        beat, scene = getattr(payload, "beat_id", None), getattr(payload, "scene_id", None)
        return Source(beat_id=beat, scene_id=scene)
    return source_of(payload)


def _kept(source: Source, after: int, closed: frozenset[int]) -> bool:
    """A beat stays if it was written at or before the point; a scene's summaries stay if the
    scene had closed by then."""
    if source.beat_id is not None:
        return source.beat_id <= after
    return source.scene_id in closed


def _scenes_asked(events: list[StoredEvent[Payload]]) -> frozenset[int]:
    """The scenes whose close decides whether one of ``events`` stays (a beat's items stay by
    the beat's id alone)."""
    sources = (_derived_from(event) for event in events)
    return frozenset(
        s.scene_id for s in sources if s is not None and s.beat_id is None and s.scene_id
    )


def _closed_scenes(
    raw: Connection, chat_id: str, after: int, exclusions: Exclusions, asked: frozenset[int]
) -> frozenset[int]:
    """Which of the scenes ``asked`` had closed at ``after`` (a rewound close closed nothing).

    A scene closes after it opens (its id), so only closes after the oldest scene asked are
    read: a rewind of the last beat asks none and reads none, however many scenes the story
    closed before (reading them all cost 1 ms a rewind at 250 scenes).
    """
    if not asked:
        return frozenset()
    rows = raw.execute(
        # by kind (few rows), not by chat (every event the chat has): ``|| ''`` keeps the
        # planner off the chat index (on both stores)
        "SELECT id, payload_json FROM event_log WHERE chat_id || '' = ? AND id > ? "
        "AND id <= ? AND kind IN ('scene_closed', 'meanwhile_scene_closed')",
        (chat_id, min(asked), after),
    ).fetchall()
    closed = (int(json.loads(row[1])["scene_id"]) for row in rows if not exclusions.rewound(row[0]))
    return frozenset(scene for scene in closed if scene in asked)


TRAILING_KINDS = (
    "memory_written",
    "edge_update",
    "activity_change",
    "turn_classified",
    "turn_messages_linked",
    "story_thread_detected",
)
"""Events that finish a beat after its assistant_turn; any other kind starts what comes next."""

_QUIET_KINDS = (
    *TRAILING_KINDS,
    *WORLD_BOOK_KINDS,
    "beats_rewound",
    "manual_edit",
    "derivations_replaced",
)
"""Kinds that neither finish nor start a beat, as far as where a beat ends is concerned."""

BOUNDARY_KINDS = ("meanwhile_scene_started", "meanwhile_scene_closed")
"""Changes bound to an adapter's threads and digests, which a rewind cannot take back."""


async def end_of_beat(db: Database, chat_id: str, reply_id: int) -> int | None:
    """The id of the first event after the beat ``reply_id`` that is still in the story and
    not part of that beat, if any. Rewound events, rewinds themselves and edits do not count."""
    return await _next_event_in_story(db, chat_id, reply_id, passing_over=_QUIET_KINDS)


@dataclass(frozen=True, slots=True)
class Boundary:
    """A meanwhile scene's start or end: a rewind may not go back past it."""

    event_id: int
    ended: bool
    """True for a meanwhile's end, False for its start."""


async def meanwhile_boundary_after(db: Database, chat_id: str, after: int) -> Boundary | None:
    """The latest meanwhile start or end after event ``after``, if any."""
    row = await db.fetchone(
        "SELECT id, kind FROM event_log WHERE chat_id = ? AND id > ? AND kind IN (?, ?) "
        "ORDER BY id DESC LIMIT 1",
        (chat_id, after, *BOUNDARY_KINDS),
    )
    return None if row is None else Boundary(int(row[0]), row[1] == "meanwhile_scene_closed")


async def _next_event_in_story(
    db: Database, chat_id: str, after: int, *, passing_over: tuple[str, ...]
) -> int | None:
    """The id of the chat's first event after ``after`` still in the story (not rewound), of a
    kind not in ``passing_over``; None if there is none."""

    def read(raw: Connection) -> int | None:
        exclusions = Exclusions.of_chat(raw, chat_id, up_to=2**62)
        marks = ",".join("?" * len(passing_over))
        for (event_id,) in raw.execute(
            f"SELECT id FROM event_log WHERE chat_id = ? AND id > ? AND kind NOT IN ({marks}) "
            "ORDER BY id",
            (chat_id, after, *passing_over),
        ):
            if not exclusions.rewound(event_id):
                return int(event_id)
        return None

    return await db.read(read)
