"""Memories, edits, digests, story threads, and rewinds of the story."""

from __future__ import annotations

import functools
import hashlib
from typing import Any

from bot.store.events import (
    BeatsRewound,
    DerivationsReplaced,
    DigestWritten,
    ManualEdit,
    MemoryWritten,
    StoryThreadDetected,
)
from bot.store.fold import Fold, folds
from bot.store.projector import handles, rebuild_chat, start_of
from bot.store.provenance import Source, may_know
from bot.store.record import StoredEvent
from bot.store.sql import Connection

_MEMORY = (
    "INSERT INTO memories (id, owner_id, chat_id, scene_id, beat_id, witness_you, "
    "witness_host, witness_guest, text, pov_summary, scope) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@handles(MemoryWritten)
def memory_written(raw: Connection, event: StoredEvent[MemoryWritten]) -> None:
    p = event.payload
    if not may_know(raw, p.owner_id, p):
        return  # a memory of a beat its owner did not witness is no one's memory
    raw.execute(_MEMORY, _memory_row(event.id, vars(p)))


@folds(MemoryWritten, beat="beat_id")
def fold_memory(fold: Fold, event_id: int, p: dict[str, Any]) -> None:
    beat = p["beat_id"]
    if beat is not None and p["owner_id"] not in fold.witnesses(beat):
        return  # as ``memory_written``: its source is its beat
    fold.writer.execute(_MEMORY, _memory_row(event_id, p))


def _memory_row(event_id: int, p: dict[str, Any]) -> tuple[object, ...]:
    return (
        *(event_id, p["owner_id"], p["chat_id"], p["scene_id"], p["beat_id"]),
        *(p["witness_you"], p["witness_host"], p["witness_guest"], p["text"]),
        *(p["pov_summary"], memory_scope(p["chat_id"], p["owner_id"])),
    )


@functools.lru_cache(maxsize=1024)
def memory_scope(chat_id: str, owner_id: str) -> str:
    """One full-text token naming a (chat, owner): recall searches only inside it."""
    return (
        "s"
        + hashlib.sha1(f"{chat_id}\0{owner_id}".encode(), usedforsecurity=False).hexdigest()[:20]
    )


_EDITS = {
    "memory_pov_summary": "UPDATE memories SET pov_summary = ? WHERE id = ?",
    "user_turn_prose": "UPDATE turns SET text = ? WHERE id = ? AND role = 'user'",
    "assistant_turn_text": "UPDATE turns SET text = ? WHERE id = ? AND role = 'assistant'",
}


@handles(ManualEdit)
def manual_edit(raw: Connection, event: StoredEvent[ManualEdit]) -> None:
    p = event.payload
    if p.target_kind == "user_turn_prose":
        _rewrite_remembered_line(raw, p.target_id, p.new_value)
    elif p.target_kind == "memory_pov_summary" and p.scene_id is not None:
        owner = raw.execute("SELECT owner_id FROM memories WHERE id = ?", (p.target_id,)).fetchone()
        if owner is None or not may_know(raw, owner[0], p):
            return
    raw.execute(_EDITS[p.target_kind], (p.new_value, p.target_id))


def _rewrite_remembered_line(raw: Connection, turn_id: int, new_prose: str) -> None:
    """An edited line reads the new way in every memory of the beat that answered it too.

    Edits now derive a beat's memories again from the new words (``derivations_replaced``);
    this keeps logs written before that as they were rebuilt then.
    """
    row = raw.execute(
        "SELECT text FROM turns WHERE id = ? AND role = 'user'", (turn_id,)
    ).fetchone()
    if row is None or not row[0]:
        return
    raw.execute(
        "UPDATE memories SET text = replace(text, ?, ?) "
        "WHERE beat_id IN (SELECT id FROM turns WHERE answers_turn_id = ?)",
        (row[0], new_prose, turn_id),
    )


@handles(DigestWritten)
def digest_written(raw: Connection, event: StoredEvent[DigestWritten]) -> None:
    p = event.payload
    raw.execute(
        "INSERT INTO digests (id, chat_id, meanwhile_scene_id, text) VALUES (?, ?, ?, ?)",
        (event.id, p.chat_id, p.meanwhile_scene_id, p.text),
    )


@handles(StoryThreadDetected)
def story_thread(raw: Connection, event: StoredEvent[StoryThreadDetected]) -> None:
    p = event.payload
    raw.execute(
        "INSERT INTO story_threads (id, chat_id, scene_id, title, summary) VALUES (?, ?, ?, ?, ?)",
        (event.id, p.chat_id, p.scene_id, p.title, p.summary),
    )


@handles(BeatsRewound)
def beats_rewound(raw: Connection, event: StoredEvent[BeatsRewound]) -> None:
    p = event.payload
    raw.execute(
        "INSERT INTO rewound_ranges (event_id, chat_id, after_event_id, reason) "
        "VALUES (?, ?, ?, ?)",
        (event.id, p.chat_id, p.after_event_id, p.reason),
    )
    rebuild_chat(raw, p.chat_id, up_to=event.id, since=p.after_event_id)


@handles(DerivationsReplaced)
def derivations_replaced(raw: Connection, event: StoredEvent[DerivationsReplaced]) -> None:
    p = event.payload
    raw.execute(
        "INSERT INTO derived_replaced (event_id, chat_id, beat_id, scene_id) VALUES (?, ?, ?, ?)",
        (event.id, p.chat_id, p.beat_id, p.scene_id),
    )
    # what it replaces was written after its source: undo and replay from there on
    source = Source(beat_id=p.beat_id, scene_id=p.scene_id)
    rebuild_chat(raw, p.chat_id, up_to=event.id, since=start_of(source))
