"""Directed relationships (edges), the facts each side learned, and activities as each saw them.

Every item here is derived from a beat or a scene, so it reaches only that source's witnesses
(``bot.store.provenance``): a fact is kept only if its learner witnessed where it came from, and
an activity is recorded once per witness of its beat, so what X sees of Y's activity is what X
last saw while they were together.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

from bot.store import memo
from bot.store.events import YOU, ActivityChange, EdgeUpdate
from bot.store.fold import EdgeRow, Fold, folds
from bot.store.projections.chats import cast_of
from bot.store.projector import handles
from bot.store.provenance import Source, may_know, source_of, witnesses_of
from bot.store.recall import scoped_terms
from bot.store.record import StoredEvent
from bot.store.sql import Connection

LOW, HIGH = 0, 100


def clamp(value: int) -> int:
    return max(LOW, min(HIGH, value))


def fact_key(fact: str) -> str:
    """What makes two facts the same: case and spacing do not."""
    return " ".join(fact.split()).casefold()  # what \s+ -> " " and strip() give, faster


@handles(EdgeUpdate)
def edge_updated(raw: Connection, event: StoredEvent[EdgeUpdate]) -> None:
    p = event.payload
    if not may_know(raw, p.source_id, p):
        return  # nobody learns from what they did not witness
    key = (p.chat_id, p.source_id, p.target_id)
    edges = memo.table(raw, "edges")
    row = edges.get(key) if edges is not None else None
    if row is None:
        row = raw.execute(
            "SELECT affinity, trust, relationship_summary, summary_seen_at FROM edges "
            "WHERE chat_id = ? AND source_id = ? AND target_id = ?",
            key,
        ).fetchone()
    fields = vars(p)  # the fields as a dict, no copy (what the folder is given)
    new = _moved(None if row is None else tuple(row), fields)
    if row is None:
        raw.execute(
            "INSERT INTO edges (chat_id, source_id, target_id, affinity, trust, "
            "relationship_summary, summary_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (*key, *new),
        )
    elif new != tuple(row):
        raw.execute(
            "UPDATE edges SET affinity = ?, trust = ?, relationship_summary = ?, "
            "summary_seen_at = ? WHERE chat_id = ? AND source_id = ? AND target_id = ?",
            (*new, *key),
        )
    if edges is not None:
        edges[key] = new
    _learned(raw, event.id, fields, (50, 50) if row is None else (row[0], row[1]), new)


@folds(EdgeUpdate, beat="beat_id", scene="scene_id")
def fold_edge(fold: Fold, event_id: int, p: dict[str, Any]) -> None:
    """``edge_updated`` in a rebuild: the edge's row is kept in the fold, written at its end."""
    beat = p["beat_id"]
    seen = fold.witnesses(beat) if beat is not None else witnesses_of(fold.writer, _source(p))
    if seen is not None and p["source_id"] not in seen:
        return  # as ``edge_updated``
    key = (p["chat_id"], p["source_id"], p["target_id"])
    row = fold.edges.get(key)
    new = fold.edges[key] = _moved(row, p)
    _learned(
        fold.writer, event_id, p, (50, 50) if row is None else (row[0], row[1]), new, fold=fold
    )


def _source(p: dict[str, Any]) -> Source | None:
    beat, scene = p["beat_id"], p["scene_id"]
    return None if beat is None and scene is None else Source(beat_id=beat, scene_id=scene)


def _moved(row: tuple[Any, ...] | None, p: dict[str, Any]) -> EdgeRow:
    """The edge's (affinity, trust, summary, summary's scene) after the update ``p``."""
    affinity, trust, summary, seen_at = (50, 50, "", 0) if row is None else row
    # story order: a summary derived again from an older scene (an edit) does not replace the
    # view a later scene gave; one of no scene (a card's first view of you, older logs) is
    # replaced by the next, as always
    source_at = p["scene_id"] or 0
    if p["relationship_summary"] is not None and source_at >= seen_at:
        summary, seen_at = p["relationship_summary"], source_at
    return (
        clamp(affinity + p["affinity_delta"]),
        clamp(trust + p["trust_delta"]),
        summary,
        seen_at,
    )


def _learned(
    raw: Connection,
    event_id: int,
    p: dict[str, Any],
    old: tuple[int, int],
    new: EdgeRow,
    *,
    fold: Fold | None = None,
) -> None:
    """The update's new facts, and what it moved (after clamping: what "why" should show)."""
    _learn(raw, event_id, p, None if fold is None else fold.known_facts())
    if new[0] != old[0] or new[1] != old[1]:
        raw.execute(
            "INSERT INTO edge_changes (event_id, chat_id, source_id, target_id, affinity_delta, "
            "trust_delta, beat_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                *(event_id, p["chat_id"], p["source_id"], p["target_id"]),
                *(new[0] - old[0], new[1] - old[1], p["beat_id"]),
            ),
        )


@functools.lru_cache(maxsize=1024)
def fact_scope(chat_id: str, source_id: str, target_id: str) -> str:
    """One full-text token naming an edge: a search for facts matching a line stays inside it."""
    edge = f"{chat_id}\0{source_id}\0{target_id}".encode()
    return "e" + hashlib.sha1(edge, usedforsecurity=False).hexdigest()[:20]


def _learn(
    raw: Connection, event_id: int, p: dict[str, Any], known: dict[Any, None] | None = None
) -> None:
    """One row per new fact; a fact already known keeps its first source.

    ``known``: facts a rebuild's fold saw written, skipped here before their terms are made
    (those it has forgotten are still refused by the table's key).
    """
    rows = []
    chat, source, target = p["chat_id"], p["source_id"], p["target_id"]
    scope = fact_scope(chat, source, target)
    for fact in p["knowledge_facts"]:
        key = fact_key(fact)
        if not key:
            continue
        if known is not None:
            if (seen := (chat, source, target, key)) in known:
                continue
            known[seen] = None
        rows.append(
            (
                *(chat, source, target, key, fact.strip(), event_id, p["beat_id"]),
                *(p["scene_id"], scope, scoped_terms(scope, key)),
            )
        )
    if rows:  # a rebuild sends these in long runs (``bulk``), hence one row a statement
        raw.executemany(
            "INSERT INTO edge_facts (chat_id, source_id, target_id, fact_key, fact, "
            "event_id, beat_id, scene_id, scope, terms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            rows,
        )


@handles(ActivityChange)
def activity_changed(raw: Connection, event: StoredEvent[ActivityChange]) -> None:
    p = event.payload
    seen = witnesses_of(raw, source_of(p))
    if seen is None:  # no source (logs from before provenance): everyone in the chat saw it
        seen = frozenset({YOU, p.entity_id, *_cast_of(raw, p.chat_id)})
    if p.entity_id not in seen:
        return  # derived from a beat its own subject did not witness: no one's to keep
    row = (
        p.posture,
        p.action.model_dump_json(),
        p.attention,
        json.dumps(p.holding, ensure_ascii=False),
        json.dumps(p.status, sort_keys=True, ensure_ascii=False),
        # story order: an activity derived again from an older beat (an edit) does not
        # replace what a later beat showed
        p.beat_id if p.beat_id is not None else event.id,
    )
    raw.executemany(
        "INSERT INTO activity_views (chat_id, viewer_id, entity_id, posture, action_json, "
        "attention, holding_json, status_json, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (chat_id, viewer_id, entity_id) DO UPDATE SET posture = excluded.posture, "
        "action_json = excluded.action_json, attention = excluded.attention, "
        "holding_json = excluded.holding_json, status_json = excluded.status_json, "
        "seen_at = excluded.seen_at WHERE excluded.seen_at >= activity_views.seen_at",
        [(p.chat_id, viewer, p.entity_id, *row) for viewer in sorted(seen)],
    )


def _cast_of(raw: Connection, chat_id: str) -> tuple[str, ...]:
    return tuple(e for e in cast_of(raw, chat_id) if e)
