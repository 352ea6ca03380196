"""Where every derived item came from, and who may therefore know it: the one visibility rule.

A derived item (a memory, a fact, a feeling, an activity, a classification, a summary, a story
thread, a digest) comes from a *source*: one beat, or one scene. Only the source's witnesses
may know it: a beat's are in ``turn_witnesses``, a scene's are its participants. Projections ask
``witnesses_of`` before they let an item reach anyone's view, and the exclusion rules of edits
and rewinds ask ``source_of``; every event kind must say here whether it is derived, so a new
kind cannot slip past the rule (a test holds every kind to it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from bot.store import memo
from bot.store.events import (
    ActivityChange,
    DigestWritten,
    EdgeUpdate,
    ManualEdit,
    MemoryWritten,
    Payload,
    StoryThreadDetected,
    TurnClassified,
)
from bot.store.sql import Connection


@dataclass(frozen=True, slots=True)
class Source:
    """The beat (a turn id) or the scene (a scene id) an item was derived from."""

    beat_id: int | None = None
    scene_id: int | None = None


DERIVED_KINDS = frozenset(
    {
        "memory_written",
        "edge_update",
        "activity_change",
        "turn_classified",
        "manual_edit",  # a scene summary is derived; an edit of a line is the player's own act
        "story_thread_detected",
        "digest_written",
    }
)
"""Kinds whose events may be derived from a beat or a scene (``source_of`` says which)."""

NOT_DERIVED_KINDS = frozenset(
    {
        "bot_authored",
        "character_deleted",
        "you_authored",
        "asset_stored",
        "chat_created",
        "chat_ended",
        "cast_changed",
        "world_changed",
        "container_created",
        "scene_opened",
        "scene_closed",
        "meanwhile_scene_started",
        "meanwhile_scene_closed",
        "turn_started",
        "user_turn",
        "assistant_turn",
        "turn_messages_linked",
        "beats_rewound",
        "derivations_replaced",
        "world_book_imported",
        "lore_entry_added",
        "lore_entry_removed",
    }
)
"""Kinds that are facts of the story itself (what someone did or said), not derived from one."""


def source_of(payload: Payload) -> Source | None:
    """The source of a derived event; None for events that are not derived (or have no source:
    logs written before provenance, whose items stay visible as they always were)."""
    beat: int | None = None
    scene: int | None = None
    match payload:
        case MemoryWritten(beat_id=beat) | ActivityChange(beat_id=beat):
            pass
        case EdgeUpdate(beat_id=beat, scene_id=scene):
            pass
        case TurnClassified(turn_id=beat):
            pass
        case ManualEdit(target_kind="memory_pov_summary", scene_id=scene):
            pass
        case StoryThreadDetected(scene_id=scene) | DigestWritten(meanwhile_scene_id=scene):
            pass
    if beat is None and scene is None:
        return None
    return Source(beat_id=beat, scene_id=scene)


def witnesses_of(raw: Connection, source: Source | None) -> frozenset[str] | None:
    """Who witnessed ``source``; None when an item has no known source (everyone, as before).

    Inside a batch the answer is kept (``memo``): every memory and fact of a beat asks it.
    """
    if source is None:
        return None
    if source.beat_id is not None:
        return beat_witnesses(raw, source.beat_id)
    scenes = memo.table(raw, "scene_participants")
    if scenes is not None and (known := scenes.get(source.scene_id)) is not None:
        return known  # type: ignore[no-any-return]
    row = raw.execute(
        "SELECT participants_json FROM scenes WHERE id = ?", (source.scene_id,)
    ).fetchone()
    if row is None:
        return frozenset()
    found = frozenset(json.loads(row[0]))
    if scenes is not None:
        scenes[source.scene_id] = found
    return found


def beat_witnesses(raw: Connection, beat_id: int) -> frozenset[str]:
    """Who witnessed the beat ``beat_id`` (nobody, for a beat not in the story)."""
    beats = memo.table(raw, "turn_witnesses")
    if beats is not None and (known := beats.get(beat_id)) is not None:
        return known  # type: ignore[no-any-return]
    rows = raw.execute("SELECT entity_id FROM turn_witnesses WHERE turn_id = ?", (beat_id,))
    found = frozenset(row[0] for row in rows)
    if beats is not None and found:  # none yet may still be recorded later in the batch
        beats[beat_id] = found
    return found


def witnessed(raw: Connection, beat_id: int, witnesses: list[str]) -> None:
    """The handler recording a beat's witnesses says so, for the rest of its batch."""
    beats = memo.table(raw, "turn_witnesses")
    if beats is not None:
        beats[beat_id] = beats.get(beat_id, frozenset()) | frozenset(witnesses)


def participated(raw: Connection, scene_id: int, participants: list[str]) -> None:
    """The handler opening a scene says who is in it, for the rest of its batch."""
    scenes = memo.table(raw, "scene_participants")
    if scenes is not None:
        scenes[scene_id] = frozenset(participants)


def may_know(raw: Connection, entity_id: str, payload: Payload) -> bool:
    """True if ``entity_id`` witnessed the source of ``payload`` (or it has none)."""
    seen = witnesses_of(raw, source_of(payload))
    return seen is None or entity_id in seen
