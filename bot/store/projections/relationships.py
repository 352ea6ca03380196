"""Directed relationships (edges) and what each entity is doing (activities)."""

from __future__ import annotations

import json
import sqlite3

from bot.store.events import ActivityChange, EdgeUpdate
from bot.store.projector import handles
from bot.store.record import StoredEvent

LOW, HIGH = 0, 100


def clamp(value: int) -> int:
    return max(LOW, min(HIGH, value))


@handles("edge_update")
def edge_updated(raw: sqlite3.Connection, event: StoredEvent) -> None:
    p = event.payload
    assert isinstance(p, EdgeUpdate)
    key = (p.chat_id, p.source_id, p.target_id)
    row = raw.execute(
        "SELECT affinity, trust, knowledge_facts_json, relationship_summary FROM edges "
        "WHERE chat_id = ? AND source_id = ? AND target_id = ?",
        key,
    ).fetchone()
    affinity, trust, facts, summary = (
        (50, 50, [], "")
        if row is None
        else (
            row[0],
            row[1],
            json.loads(row[2]),
            row[3],
        )
    )
    for fact in p.knowledge_facts:
        if fact and fact not in facts:
            facts.append(fact)
    raw.execute(
        "INSERT OR REPLACE INTO edges (chat_id, source_id, target_id, affinity, trust, "
        "knowledge_facts_json, relationship_summary) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            *key,
            clamp(affinity + p.affinity_delta),
            clamp(trust + p.trust_delta),
            json.dumps(facts, ensure_ascii=False),
            summary if p.relationship_summary is None else p.relationship_summary,
        ),
    )
    moved_affinity = clamp(affinity + p.affinity_delta) - affinity
    moved_trust = clamp(trust + p.trust_delta) - trust
    if moved_affinity or moved_trust:
        # what the beat actually moved, after clamping, is what "why" should show
        raw.execute(
            "INSERT INTO edge_changes (event_id, chat_id, source_id, target_id, affinity_delta, "
            "trust_delta, beat_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (event.id, *key, moved_affinity, moved_trust, p.beat_id),
        )


@handles("activity_change")
def activity_changed(raw: sqlite3.Connection, event: StoredEvent) -> None:
    p = event.payload
    assert isinstance(p, ActivityChange)
    raw.execute(
        "INSERT OR REPLACE INTO activities (chat_id, entity_id, posture, action_json, attention, "
        "holding_json, status_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            p.chat_id,
            p.entity_id,
            p.posture,
            p.action.model_dump_json(),
            p.attention,
            json.dumps(p.holding, ensure_ascii=False),
            json.dumps(p.status, sort_keys=True, ensure_ascii=False),
        ),
    )
