"""The events of one beat, built in one place for the pipeline, recovery, benches and tests.

A beat starts as a ``turn_started`` (who speaks, where, who is there to witness it, what it
answers) and ends as its ``user_turn`` (the player's line, if any) and ``assistant_turn``; a
finished beat adds one memory per witness. Everything here is a pure function of what the
turn knew when it started and how its stream ended, so recovery after a crash writes the same
beat the pipeline would have, with the text the player saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.engine.parse import fallback_segments
from bot.engine.sink import BeatStatus
from bot.store import YOU, Batch, Ref
from bot.store.events import MAX_TEXT, AssistantTurn, MemoryWritten, TurnStarted, UserTurn


def clip(text: str) -> str:
    """Keep text within what an event may hold: no size of LLM output may lose a beat."""
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


@dataclass(frozen=True, slots=True)
class TurnBatch:
    """A beat's events, and where its line and its reply stand in the batch."""

    batch: Batch
    reply: Ref
    line: Ref | None


def turn_events(
    started: TurnStarted,
    started_id: int,
    *,
    text: str,
    status: BeatStatus,
    message_ids: Sequence[int] = (),
) -> TurnBatch:
    """The beat's user_turn (when it has a player's line) and assistant_turn.

    The line is written with the rules' labels; the classifier's come later, if the beat
    finishes (``turn_classified``).
    """
    where = {
        "chat_id": started.chat_id,
        "scene_id": started.scene_id,
        "present_set_kind": started.present_set_kind,
        "meanwhile_scene_id": started.meanwhile_scene_id,
        "witnesses": list(started.witnesses),
        "turn_started_id": started_id,
    }
    reply = {
        **where,
        "speaker_id": started.speaker_id,
        "text": clip(text),
        "cancelled": status == "stopped",
        "interrupted": status == "failed",
        "message_ids": list(message_ids),
    }
    batch = Batch()
    if not started.prose:
        answered = AssistantTurn(**reply, answers_turn_id=started.answers_turn_id)
        return TurnBatch(batch, reply=batch.add(answered), line=None)
    line = batch.add(
        UserTurn(
            **where,
            prose=started.prose,
            segments=fallback_segments(started.prose),
            author_id=started.author_id,
            message_id=started.message_id,
        )
    )
    return TurnBatch(
        batch, reply=batch.later(AssistantTurn, **reply, answers_turn_id=line), line=line
    )


def add_memories(
    batch: Batch,
    *,
    chat_id: str,
    scene_id: int,
    witnesses: Sequence[str],
    cast: tuple[str, str | None],
    text: str,
    beat: int | Ref,
) -> None:
    """One memory of the beat per witness. ``beat`` is the beat's id, or, for a beat written
    in the same batch, its ``Ref``. ``cast`` is (host id, guest id)."""
    host_id, guest_id = cast
    present = set(witnesses)
    fields: dict[str, Any] = {
        "chat_id": chat_id,
        "scene_id": scene_id,
        "text": clip(text),
        "witness_you": int(YOU in present),
        "witness_host": int(host_id in present),
        "witness_guest": int(guest_id is not None and guest_id in present),
    }
    for owner in witnesses:
        if isinstance(beat, Ref):
            batch.later(MemoryWritten, **fields, owner_id=owner, beat_id=beat)
        else:
            batch.add(MemoryWritten(**fields, owner_id=owner, beat_id=beat))
