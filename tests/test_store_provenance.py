"""The visibility rule, kind by kind: a derived item reaches only its source's witnesses, and an
edit's ``derivations_replaced`` takes every kind of derived item out of the story."""

from __future__ import annotations

from typing import Any

import pytest

import tests.helpers.store_factories as f
from bot.store import PAYLOAD_MODELS, Database, append_and_apply, project, validate
from bot.store.provenance import DERIVED_KINDS, NOT_DERIVED_KINDS, Source, source_of

MEANWHILE_ONLY = ("bot_a", "bot_b")  # "you" did not witness a meanwhile beat


def test_every_kind_says_whether_it_is_derived() -> None:
    """A new event kind must be placed on one side, so it cannot skip the rule unnoticed."""
    assert set(PAYLOAD_MODELS) == DERIVED_KINDS | NOT_DERIVED_KINDS
    assert not DERIVED_KINDS & NOT_DERIVED_KINDS


@pytest.mark.parametrize(
    ("kind", "payload", "source"),
    [
        ("memory_written", f.memory_written(beat_id=9), Source(beat_id=9)),
        ("edge_update", f.edge_update(beat_id=9), Source(beat_id=9)),
        ("edge_update", f.edge_update(scene_id=3), Source(scene_id=3)),
        ("activity_change", f.activity_change(beat_id=9), Source(beat_id=9)),
        ("turn_classified", f.turn_classified(9), Source(beat_id=9)),
        ("manual_edit", f.manual_edit(5, scene_id=3), Source(scene_id=3)),
        ("story_thread_detected", f.story_thread_detected(3), Source(scene_id=3)),
        ("digest_written", f.digest_written(3), Source(scene_id=3)),
        ("manual_edit", f.manual_edit(5, target_kind="user_turn_prose"), None),
        ("memory_written", f.memory_written(), None),  # logs from before provenance
    ],
)
def test_each_derived_kind_names_its_source(
    kind: str, payload: dict[str, Any], source: Source | None
) -> None:
    assert kind in DERIVED_KINDS
    assert source_of(validate(kind, payload)) == source


@pytest.fixture
async def db(store: Database) -> Database:
    """The store on each backend (``store``): every test here runs on SQLite and PostgreSQL."""
    return store


@pytest.fixture
async def seeded(db: Database) -> f.SeedIds:
    return await f.seed_meanwhile_chat(db)


async def _add(db: Database, kind: str, payload: dict[str, Any]) -> int:
    return await append_and_apply(db, kind=kind, payload=payload)


async def _beat(db: Database, ids: f.SeedIds, witnesses: tuple[str, ...]) -> int:
    return await _add(
        db,
        "assistant_turn",
        f.assistant_turn(ids.meanwhile_scene_id, ids.chat_id, witnesses=list(witnesses)),
    )


async def _rebuild_agrees(db: Database) -> None:
    before = await f.snapshot(db)
    await project(db)
    assert await f.snapshot(db) == before


async def test_an_activity_is_seen_only_by_its_beats_witnesses(
    db: Database, seeded: f.SeedIds
) -> None:
    beat = await _beat(db, seeded, MEANWHILE_ONLY)
    await _add(
        db,
        "activity_change",
        f.activity_change("bot_a", "hiding the key", chat_id=seeded.chat_id, beat_id=beat),
    )
    rows = await db.fetchall(
        "SELECT viewer_id, action_json FROM activity_views WHERE entity_id = 'bot_a'"
    )
    seen = {row[0]: "hiding the key" in row[1] for row in rows}
    assert seen == {"bot_a": True, "bot_b": True, "you": False}  # you keep the older sight
    await _rebuild_agrees(db)


async def test_nobody_keeps_a_memory_fact_or_summary_of_what_they_did_not_witness(
    db: Database, seeded: f.SeedIds
) -> None:
    beat = await _beat(db, seeded, MEANWHILE_ONLY)
    chat = seeded.chat_id
    await _add(db, "memory_written", f.memory_written("you", chat_id=chat, beat_id=beat))
    await _add(
        db,
        "edge_update",
        f.edge_update("you", "bot_a", chat, knowledge_facts=["the key"], beat_id=beat),
    )
    await _add(
        db,
        "edge_update",
        f.edge_update(
            "you",
            "bot_a",
            chat,
            knowledge_facts=["the cellar"],
            relationship_summary="knows too much",
            scene_id=seeded.meanwhile_scene_id,
        ),
    )
    kept = await _add(db, "memory_written", f.memory_written("you", scene_id=seeded.scene_id))
    await _add(
        db,
        "manual_edit",
        f.manual_edit(kept, "you saw the meanwhile", scene_id=seeded.meanwhile_scene_id),
    )

    assert (
        await db.fetchall("SELECT * FROM memories WHERE owner_id = 'you' AND beat_id IS NOT NULL")
        == []
    )
    assert await db.fetchall("SELECT * FROM edge_facts WHERE source_id = 'you'") == []
    assert await db.fetchall("SELECT * FROM edges WHERE source_id = 'you'") == []
    [summary] = await db.fetchall("SELECT pov_summary FROM memories WHERE id = ?", (kept,))
    assert summary[0] == ""
    await _rebuild_agrees(db)


async def test_derivations_replaced_takes_out_every_kind_derived_before_it(
    db: Database, seeded: f.SeedIds
) -> None:
    chat, scene = seeded.chat_id, seeded.meanwhile_scene_id
    beat = await _beat(db, seeded, MEANWHILE_ONLY)
    memory = await _add(db, "memory_written", f.memory_written(chat_id=chat, beat_id=beat))
    await _add(db, "edge_update", f.edge_update(knowledge_facts=["old"], beat_id=beat))
    await _add(db, "activity_change", f.activity_change("bot_a", "old", chat_id=chat, beat_id=beat))
    await _add(db, "manual_edit", f.manual_edit(memory, "old summary", scene_id=scene))
    await _add(db, "story_thread_detected", f.story_thread_detected(scene, chat, title="old"))
    await _add(db, "digest_written", f.digest_written(scene, chat, text="old"))

    await _add(db, "derivations_replaced", f.derivations_replaced(beat, chat))
    await _add(db, "derivations_replaced", f.derivations_replaced(None, chat, scene_id=scene))

    for table in ("memories", "edge_facts", "story_threads", "digests"):
        found = await db.fetchall(f"SELECT * FROM {table} WHERE chat_id = ?", (chat,))
        assert [tuple(r) for r in found if "old" in str(tuple(r))] == [], table
    verbs = await db.fetchall("SELECT action_json FROM activity_views WHERE entity_id = 'bot_a'")
    assert verbs and all('"old"' not in row[0] for row in verbs)
    await _rebuild_agrees(db)
