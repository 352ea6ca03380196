"""The log: every kind round-trips, chat_id is filled, bad events are refused whole."""

from __future__ import annotations

from typing import Any

import pytest

import tests.helpers.store_factories as f
from bot.store import (
    PAYLOAD_MODELS,
    Appendable,
    Batch,
    Database,
    EventError,
    Later,
    Ref,
    append_and_apply,
    append_event,
    append_events,
    events_after,
    events_by_kind,
    events_of_chat,
    project,
    validate,
)
from bot.store.events import MemoryWritten
from tests.helpers.events import count_events


@pytest.fixture
async def db(store: Database) -> Database:
    """The store on each backend (``store``): every test here runs on SQLite and PostgreSQL."""
    return store


def test_every_kind_has_a_factory_that_validates() -> None:
    # Given the factories, when each payload is validated, then every kind is covered and valid.
    assert set(f.PAYLOAD_FACTORIES) == set(PAYLOAD_MODELS)
    for kind, build in f.PAYLOAD_FACTORIES.items():
        assert type(validate(kind, build())) is PAYLOAD_MODELS[kind]


def test_the_seeds_meanwhile_payload_with_its_own_scene_id_validates() -> None:
    seed = {
        "scene_id": 2,
        "chat_id": "chat_bot_a",
        "parent_scene_id": 1,
        "host_bot_id": "bot_a",
        "guest_bot_id": "bot_b",
        "started_at": "2026-04-26T20:05:00+00:00",
    }
    assert validate("meanwhile_scene_started", seed).model_dump(exclude_defaults=True) == seed


@pytest.mark.parametrize("kind", sorted(PAYLOAD_MODELS))
@pytest.mark.parametrize("apply", [True, False], ids=["applied", "appended"])
async def test_every_kind_round_trips(db: Database, kind: str, apply: bool) -> None:
    # Given a seeded chat (scene 1 = the you-scene, 2 = the meanwhile scene, as first numbered)
    ids = await f.seed_meanwhile_chat(db, apply=apply)
    memory = await append_and_apply(
        db, kind="memory_written", payload=f.memory_written(scene_id=ids.meanwhile_scene_id)
    )
    payload = f.PAYLOAD_FACTORIES[kind]()
    if "scene_id" in payload and kind != "meanwhile_scene_started":
        payload["scene_id"] = ids.meanwhile_scene_id
    if kind == "manual_edit":
        payload["target_id"] = memory
    if kind == "chat_created":
        payload["id"] = "chat_new"
    # When it is appended
    append = append_and_apply if apply else append_event
    event_id = await append(db, kind=kind, payload=payload)
    # Then reading it back by kind and by id gives the same payload, and its chat is known
    [by_kind] = [e for e in await events_by_kind(db, kind) if e.id == event_id]
    [after] = await events_after(db, event_id - 1, limit=1)
    model = PAYLOAD_MODELS[kind]
    assert by_kind.payload == model.model_validate(payload)
    assert after == by_kind
    assert by_kind.kind == kind
    # (an activity_change of the first shape carries no chat_id and names no scene)
    unscoped = {"bot_authored", "character_deleted", "you_authored", "asset_stored"}
    expected_chat = {"chat_created": "chat_new", "activity_change": None}.get(
        kind, None if kind in unscoped else ids.chat_id
    )
    assert by_kind.chat_id == expected_chat
    in_chat = [e.id for e in await events_of_chat(db, ids.chat_id, after_id=memory)]
    assert in_chat == ([event_id] if expected_chat == ids.chat_id else [])


async def test_scene_closed_and_manual_edit_find_their_chat_through_what_they_point_at(
    db: Database,
) -> None:
    # Given two chats, each with a scene and a memory
    first = await f.seed_meanwhile_chat(db, chat_id="one")
    second = await f.seed_meanwhile_chat(db, chat_id="two", with_characters=False)
    memory_two = await append_and_apply(
        db,
        kind="memory_written",
        payload=f.memory_written(chat_id="two", scene_id=second.meanwhile_scene_id),
    )
    # When events that carry no chat_id are appended (without applying them)
    closed = await append_event(db, kind="scene_closed", payload=f.scene_closed(first.scene_id))
    mw_closed = await append_event(
        db, kind="meanwhile_scene_closed", payload=f.meanwhile_scene_closed(second.scene_id + 1)
    )
    edit = await append_event(db, kind="manual_edit", payload=f.manual_edit(memory_two))
    orphan = await append_event(db, kind="scene_closed", payload=f.scene_closed(10_000))
    # Then each is filed under the chat of the scene or memory it points at
    assert [e.id for e in await events_by_kind(db, "scene_closed", chat_id="one")] == [closed]
    assert [e.id for e in await events_by_kind(db, "meanwhile_scene_closed", chat_id="two")] == [
        mw_closed
    ]
    assert [e.id for e in await events_by_kind(db, "manual_edit", chat_id="two")] == [edit]
    [orphan_event] = [e for e in await events_by_kind(db, "scene_closed") if e.id == orphan]
    assert orphan_event.chat_id is None


async def test_events_after_pages_in_id_order(db: Database) -> None:
    ids = await append_events(
        db, [("you_authored", f.you_authored(name=f"Me{i}")) for i in range(7)]
    )
    first = await events_after(db, 0, limit=3)
    rest = await events_after(db, first[-1].id, limit=100)
    assert [e.id for e in first + rest] == ids


# --- refusals -------------------------------------------------------------------------------

BAD_PAYLOADS: list[tuple[str, dict[str, Any], str]] = [
    ("edge_update", f.edge_update(affinity_delta=101), "affinity_delta"),
    ("edge_update", {k: v for k, v in f.edge_update().items() if k != "chat_id"}, "chat_id"),
    ("memory_written", f.memory_written(witness=(2, 1, 1)), "witness_you"),
    ("bot_authored", f.bot_authored("Not A Slug"), "id"),
    ("scene_opened", f.scene_opened(participants=()), "participants"),
    ("manual_edit", f.manual_edit(target_kind="chat_title"), "target_kind"),
    ("beats_rewound", f.beats_rewound(-1), "after_event_id"),
    ("user_turn", f.user_turn(present_set_kind="everyone"), "present_set_kind"),
    ("activity_change", f.activity_change(actoin={}), "actoin"),
    ("chat_created", f.chat_created(initial_time=None), "initial_time"),
]


@pytest.mark.parametrize(("kind", "payload", "field"), BAD_PAYLOADS)
async def test_a_bad_payload_is_refused_naming_kind_and_field_and_nothing_is_written(
    db: Database, kind: str, payload: dict[str, Any], field: str
) -> None:
    await f.seed_meanwhile_chat(db)
    before, tables_before = await count_events(db), await f.snapshot(db)
    for append in (append_event, append_and_apply):
        with pytest.raises(EventError) as caught:
            await append(db, kind=kind, payload=payload)
        assert kind in str(caught.value)
        assert field in str(caught.value)
    with pytest.raises(EventError, match=field):
        await append_events(db, [("you_authored", f.you_authored()), (kind, payload)])
    assert await count_events(db) == before
    assert await f.snapshot(db) == tables_before


async def test_an_unknown_kind_is_refused_and_the_known_kinds_are_listed(db: Database) -> None:
    with pytest.raises(EventError, match=r"unknown event kind 'bot_created'.*bot_authored"):
        await append_and_apply(db, kind="bot_created", payload=f.bot_authored())
    with pytest.raises(EventError, match="bot_created"):
        await append_events(db, [("you_authored", f.you_authored()), ("bot_created", {})])
    assert await count_events(db) == 0


async def _assert_batch_refused(db: Database, batch: list[Appendable], *needles: str) -> None:
    before, tables_before = await count_events(db), await f.snapshot(db)
    with pytest.raises(EventError) as caught:
        await append_events(db, batch)
    for needle in needles:
        assert needle in str(caught.value)
    assert await count_events(db) == before
    assert await f.snapshot(db) == tables_before
    # and the log still replays to the same tables afterwards
    await project(db)
    assert await f.snapshot(db) == tables_before


def _turn_batch(ids: f.SeedIds, third: dict[str, Any] | Later[Any]) -> list[Appendable]:
    return [
        ("user_turn", f.user_turn(ids.meanwhile_scene_id)),
        ("assistant_turn", f.assistant_turn(ids.meanwhile_scene_id)),
        ("memory_written", third) if isinstance(third, dict) else third,
    ]


async def test_a_batch_whose_third_payload_is_bad_writes_none_of_it(db: Database) -> None:
    ids = await f.seed_meanwhile_chat(db)
    bad = f.memory_written(scene_id=ids.meanwhile_scene_id, witness_host="yes")
    await _assert_batch_refused(db, _turn_batch(ids, bad), "memory_written", "witness_host")


def _memory_of(ids: f.SeedIds, beat: Ref, **overrides: Any) -> Later[MemoryWritten]:
    fields = f.memory_written(scene_id=ids.meanwhile_scene_id, **overrides)
    return Later(MemoryWritten, {**fields, "beat_id": beat})


async def test_a_later_event_that_is_invalid_writes_none_of_the_batch(db: Database) -> None:
    ids = await f.seed_meanwhile_chat(db)
    third = _memory_of(ids, Ref(1), witness_host="yes")
    await _assert_batch_refused(db, _turn_batch(ids, third), "memory_written", "witness_host")


async def test_a_later_event_pointing_past_its_batch_writes_none_of_it(db: Database) -> None:
    ids = await f.seed_meanwhile_chat(db)
    third = _memory_of(ids, Ref(5))
    await _assert_batch_refused(db, _turn_batch(ids, third), "memory_written", "points past")


def test_a_batch_refuses_a_ref_to_an_event_not_yet_added() -> None:
    batch = Batch()
    with pytest.raises(ValueError, match="added before it"):
        batch.later(MemoryWritten, beat_id=Ref(0))


async def test_a_later_event_gets_the_ids_given_so_far(db: Database) -> None:
    ids = await f.seed_meanwhile_chat(db)
    written = await append_events(db, _turn_batch(ids, _memory_of(ids, Ref(1))))
    row = await db.fetchone("SELECT beat_id FROM memories WHERE id = ?", (written[2],))
    assert row is not None
    assert row["beat_id"] == written[1]


async def test_append_events_without_apply_leaves_projections_to_project(db: Database) -> None:
    written = await append_events(
        db, [("bot_authored", f.bot_authored()), ("you_authored", f.you_authored())], apply=False
    )
    assert await db.fetchall("SELECT * FROM characters") == []
    assert await project(db) == 2
    rows = await db.fetchall("SELECT id, updated_event_id FROM characters")
    assert [tuple(r) for r in rows] == [(f.HOST, written[0])]
