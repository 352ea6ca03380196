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
    affinity, trust = (50, 50) if row is None else (row[0], row[1])
    new_affinity = clamp(affinity + p.affinity_delta)
    new_trust = clamp(trust + p.trust_delta)
    facts_json = "[]" if row is None else row[2]
    if p.knowledge_facts:  # most updates learn nothing: skip the JSON round trip then
        facts = json.loads(facts_json)
        facts += [f for f in dict.fromkeys(p.knowledge_facts) if f and f not in facts]
        facts_json = json.dumps(facts, ensure_ascii=False)
    summary = p.relationship_summary
    if summary is None:
        summary = "" if row is None else row[3]
    if row is None:
        raw.execute(
            "INSERT INTO edges (chat_id, source_id, target_id, affinity, trust, "
            "knowledge_facts_json, relationship_summary) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (*key, new_affinity, new_trust, facts_json, summary),
        )
    else:
        raw.execute(
            "UPDATE edges SET affinity = ?, trust = ?, knowledge_facts_json = ?, "
            "relationship_summary = ? WHERE chat_id = ? AND source_id = ? AND target_id = ?",
            (new_affinity, new_trust, facts_json, summary, *key),
        )
    if new_affinity != affinity or new_trust != trust:
        # what the beat actually moved, after clamping, is what "why" should show
        raw.execute(
            "INSERT INTO edge_changes (event_id, chat_id, source_id, target_id, affinity_delta, "
            "trust_delta, beat_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (event.id, *key, new_affinity - affinity, new_trust - trust, p.beat_id),
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
