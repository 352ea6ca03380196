"""Projection handlers, given the usual world's events: then these rows."""

from __future__ import annotations

import json
from typing import Any

import pytest

import tests.helpers.store_factories as f
from bot.store import Database, Later, Ref, append_and_apply, append_events, project, recall
from bot.store.events import MemoryWritten
from bot.store.views import Views


@pytest.fixture
async def db(store: Database) -> Database:
    """The store on each backend (``store``): every test here runs on SQLite and PostgreSQL."""
    return store


@pytest.fixture
async def seeded(db: Database) -> f.SeedIds:
    return await f.seed_meanwhile_chat(db)


async def rows(db: Database, sql: str, *params: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in await db.fetchall(sql, params)]


async def matching(db: Database, word: str) -> list[int]:
    """The memories the full-text index finds for ``word`` (FTS5, or PostgreSQL's GIN)."""
    return await db.read(lambda raw: recall.ids_matching(raw, word))


async def add(db: Database, kind: str, payload: dict[str, Any]) -> int:
    return await append_and_apply(db, kind=kind, payload=payload)


async def assert_rebuild_agrees(db: Database) -> None:
    before = await f.snapshot(db)
    await project(db)
    assert await f.snapshot(db) == before


# --- characters and you ---------------------------------------------------------------------


async def test_characters_upsert_by_guild_and_id_and_delete(db: Database) -> None:
    first = await add(db, "bot_authored", f.bot_authored())
    await add(db, "bot_authored", f.bot_authored(guild_id=7, name="Other guild's BotA"))
    rewrite = await add(db, "bot_authored", f.bot_authored(name="BotA v2", nickname="A"))
    characters = await rows(
        db, "SELECT guild_id, id, name, nickname, updated_event_id FROM characters ORDER BY 1"
    )
    assert characters == [
        {"guild_id": 0, "id": "bot_a", "name": "BotA v2", "nickname": "A", "updated_event_id": 3},
        {
            "guild_id": 7,
            "id": "bot_a",
            "name": "Other guild's BotA",
            "nickname": "",
            "updated_event_id": 2,
        },
    ]
    assert rewrite == 3 and first == 1
    [stored] = await rows(db, "SELECT payload_json FROM characters WHERE guild_id = 0")
    assert json.loads(stored["payload_json"])["nickname"] == "A"

    await add(db, "character_deleted", f.character_deleted(guild_id=7))
    assert await rows(db, "SELECT guild_id, id FROM characters") == [{"guild_id": 0, "id": "bot_a"}]
    await assert_rebuild_agrees(db)


async def test_you_is_one_persona_per_guild_and_owner(db: Database) -> None:
    await add(db, "you_authored", f.you_authored())
    await add(db, "you_authored", f.you_authored(name="Me again", owner_id=5))
    await add(db, "you_authored", f.you_authored(name="Renamed"))
    assert await rows(db, "SELECT owner_id, name, pronouns FROM yous ORDER BY owner_id") == [
        {"owner_id": 0, "name": "Renamed", "pronouns": "they/them"},
        {"owner_id": 5, "name": "Me again", "pronouns": "they/them"},
    ]


async def test_an_asset_is_stored_as_bytes(db: Database) -> None:
    await add(db, "asset_stored", f.asset_stored(b"avatar bytes"))
    [asset] = await rows(db, "SELECT content_type, data FROM assets")
    assert asset == {"content_type": "image/png", "data": b"avatar bytes"}


# --- chats, containers, scenes --------------------------------------------------------------


async def test_chat_created_then_world_and_cast_changed_and_ended(db: Database) -> None:
    created = await add(db, "chat_created", f.chat_created())
    await add(db, "world_changed", f.world_changed(weather="rain"))
    await add(db, "world_changed", f.world_changed(time=None, narrative_anchor="Day 2"))
    await add(db, "cast_changed", f.cast_changed(guest=None))
    [chat] = await rows(db, "SELECT * FROM chats")
    assert chat | {"guild_id": 0} == {
        "id": f.CHAT,
        "guild_id": 0,
        "channel_id": 0,
        "owner_id": 0,
        "host_id": f.HOST,
        "guest_id": None,
        "world_time": "2026-04-26T21:00:00+00:00",
        "narrative_anchor": "Day 2",
        "weather": "rain",
        "place": "",
        "status": "open",
        "created_event_id": created,
    }
    await add(db, "chat_ended", f.chat_ended())
    assert await rows(db, "SELECT status FROM chats") == [{"status": "ended"}]


async def test_the_seed_world_rows(db: Database, seeded: f.SeedIds) -> None:
    assert await rows(db, "SELECT * FROM containers") == [
        {
            "id": seeded.container_id,
            "chat_id": f.CHAT,
            "name": "office",
            "type": "workplace",
            "properties_json": "{}",
        }
    ]
    scenes = await rows(
        db,
        "SELECT id, container_id, parent_scene_id, kind, present_set_kind, participants_json, "
        "status, closed_at FROM scenes ORDER BY id",
    )
    assert scenes == [
        {
            "id": seeded.scene_id,
            "container_id": seeded.container_id,
            "parent_scene_id": None,
            "kind": "you",
            "present_set_kind": "you_host_guest",
            "participants_json": '["you", "bot_a", "bot_b"]',
            "status": "open",
            "closed_at": None,
        },
        {
            "id": seeded.meanwhile_scene_id,
            "container_id": seeded.container_id,
            "parent_scene_id": seeded.scene_id,
            "kind": "meanwhile",
            "present_set_kind": "host_guest",
            "participants_json": '["bot_a", "bot_b"]',
            "status": "open",
            "closed_at": None,
        },
    ]


@pytest.mark.parametrize(
    ("participants", "present_set"),
    [
        (("you", "bot_a"), "you_host"),
        (("bot_a", "you"), "you_host"),
        (("you", "bot_a", "bot_b"), "you_host_guest"),
        (("bot_a", "bot_b"), "host_guest"),
    ],
)
async def test_present_set_kind_is_derived_from_participants(
    db: Database, participants: tuple[str, ...], present_set: str
) -> None:
    scene = await add(db, "scene_opened", f.scene_opened(participants=participants))
    assert await rows(db, "SELECT present_set_kind FROM scenes WHERE id = ?", scene) == [
        {"present_set_kind": present_set}
    ]


async def test_a_meanwhile_scene_keeps_thread_and_premise_and_closes(
    db: Database, seeded: f.SeedIds
) -> None:
    meanwhile = await add(
        db,
        "meanwhile_scene_started",
        f.meanwhile_scene_started(parent_scene_id=seeded.scene_id, thread_id=987, premise="dusk"),
    )
    await add(db, "meanwhile_scene_closed", f.meanwhile_scene_closed(meanwhile))
    await add(db, "scene_closed", f.scene_closed(seeded.scene_id))
    scenes = await rows(
        db,
        "SELECT id, parent_scene_id, thread_id, premise, status, closed_at FROM scenes ORDER BY id",
    )
    assert scenes == [
        {
            "id": seeded.scene_id,
            "parent_scene_id": None,
            "thread_id": 0,
            "premise": "",
            "status": "closed",
            "closed_at": "2026-04-26T20:45:00+00:00",
        },
        {
            "id": seeded.meanwhile_scene_id,
            "parent_scene_id": seeded.scene_id,
            "thread_id": 0,
            "premise": "",
            "status": "open",
            "closed_at": None,
        },
        {
            "id": meanwhile,
            "parent_scene_id": seeded.scene_id,
            "thread_id": 987,
            "premise": "dusk",
            "status": "closed",
            "closed_at": "2026-04-26T20:30:00+00:00",
        },
    ]


# --- edges and activities -------------------------------------------------------------------


async def test_an_edge_update_with_only_facts_starts_at_schema_defaults(
    db: Database, seeded: f.SeedIds
) -> None:
    edges = await rows(db, "SELECT * FROM edges ORDER BY source_id")
    assert edges == [
        {
            "chat_id": f.CHAT,
            "source_id": source,
            "target_id": target,
            "affinity": 50,
            "trust": 50,
            "relationship_summary": "",
            "summary_seen_at": 0,
        }
        for source, target in [(f.HOST, f.GUEST), (f.GUEST, f.HOST)]
    ]
    assert await rows(db, "SELECT * FROM edge_changes") == []


async def test_edge_deltas_clamp_and_facts_deduplicate(db: Database, seeded: f.SeedIds) -> None:
    beat = await add(
        db, "assistant_turn", f.assistant_turn(seeded.meanwhile_scene_id, seeded.chat_id)
    )
    up = await add(
        db,
        "edge_update",
        f.edge_update(
            affinity_delta=80, trust_delta=-70, knowledge_facts=["likes tea", "", "likes tea"]
        ),
    )
    await add(
        db,
        "edge_update",
        f.edge_update(
            affinity_delta=-30,
            knowledge_facts=["saw the letter", "likes tea"],
            relationship_summary="wary friends",
            beat_id=beat,
        ),
    )
    await add(db, "edge_update", f.edge_update(knowledge_facts=["likes tea"]))
    await add(
        db, "edge_update", f.edge_update(knowledge_facts=["  Likes   TEA ", "Saw the LETTER"])
    )
    [edge] = await rows(db, "SELECT * FROM edges WHERE source_id = ?", f.HOST)
    assert edge["affinity"] == 70  # 50 + 80 -> 100, then -30
    assert edge["trust"] == 0  # 50 - 70 clamps at 0
    facts = await rows(db, "SELECT fact, event_id FROM edge_facts ORDER BY event_id, fact")
    # one row per fact, case and spacing aside; a fact keeps the update it was first learned in
    assert facts == [
        {"fact": "likes tea", "event_id": up},
        {"fact": "saw the letter", "event_id": up + 1},
    ]
    assert edge["relationship_summary"] == "wary friends"  # kept when a later update omits it
    changes = await rows(
        db, "SELECT event_id, affinity_delta, trust_delta, beat_id FROM edge_changes"
    )
    assert changes == [  # what each update moved after clamping, which "why" shows
        {"event_id": up, "affinity_delta": 50, "trust_delta": -50, "beat_id": None},
        {"event_id": up + 1, "affinity_delta": -30, "trust_delta": 0, "beat_id": beat},
    ]
    [reverse] = await rows(db, "SELECT affinity, trust FROM edges WHERE source_id = ?", f.GUEST)
    assert reverse == {"affinity": 50, "trust": 50}
    await assert_rebuild_agrees(db)


async def test_activities_keep_the_latest_per_entity(db: Database, seeded: f.SeedIds) -> None:
    await add(db, "activity_change", f.activity_change(f.GUEST, "pouring tea", chat_id=f.CHAT))
    activities = await rows(
        db,
        "SELECT entity_id, posture, action_json, holding_json, status_json FROM activity_views "
        "WHERE viewer_id = 'you'",
    )
    by_entity = {a["entity_id"]: a for a in activities}
    assert set(by_entity) == {f.HOST, f.GUEST}
    assert json.loads(by_entity[f.GUEST]["action_json"]) == {
        "verb": "pouring tea",
        "interruptible": True,
        "required_attention": "low",
        "expected_duration": "ongoing",
    }
    assert json.loads(by_entity[f.HOST]["action_json"])["verb"] == "listening"


# --- memories, turns, edits -----------------------------------------------------------------


async def _meanwhile_turn(db: Database, ids: f.SeedIds, text: str) -> list[int]:
    """A meanwhile turn: the player's prose, the host's reply, a memory per witness."""
    scene, chat = ids.meanwhile_scene_id, ids.chat_id
    return await append_events(
        db,
        [
            ("user_turn", f.user_turn(scene, chat)),
            ("assistant_turn", f.assistant_turn(scene, chat, text=text)),
            *[
                Later(
                    MemoryWritten,
                    {
                        **f.memory_written(owner, scene, chat, text=f"{owner} recalls: {text}"),
                        "beat_id": Ref(1),
                    },
                )
                for owner in (f.HOST, f.GUEST)
            ],
        ],
    )


async def test_meanwhile_memories_carry_witness_0_1_1_and_are_searchable(
    db: Database, seeded: f.SeedIds
) -> None:
    user, assistant, host_memory, guest_memory = await _meanwhile_turn(
        db, seeded, "BotA leans in. Tell me what you saw at the lighthouse."
    )
    memories = await rows(
        db,
        "SELECT id, owner_id, scene_id, beat_id, witness_you, witness_host, witness_guest "
        "FROM memories ORDER BY id",
    )
    assert memories == [
        {
            "id": memory,
            "owner_id": owner,
            "scene_id": seeded.meanwhile_scene_id,
            "beat_id": assistant,
            "witness_you": 0,
            "witness_host": 1,
            "witness_guest": 1,
        }
        for memory, owner in [(host_memory, f.HOST), (guest_memory, f.GUEST)]
    ]
    assert await matching(db, "lighthouse") == [host_memory, guest_memory]
    assert await matching(db, "harbour") == []
    assert user < assistant


async def test_manual_edit_rewrites_a_pov_summary_as_at_scene_close(
    db: Database, seeded: f.SeedIds
) -> None:
    _, _, host_memory, guest_memory = await _meanwhile_turn(db, seeded, "they speak quietly")
    await add(db, "meanwhile_scene_closed", f.meanwhile_scene_closed(seeded.meanwhile_scene_id))
    await add(db, "manual_edit", f.manual_edit(host_memory))
    await add(
        db, "manual_edit", f.manual_edit(guest_memory, "BotB notices BotA's reserved manner.")
    )
    povs = await rows(
        db,
        "SELECT owner_id, pov_summary FROM memories WHERE scene_id = ? ORDER BY owner_id",
        seeded.meanwhile_scene_id,
    )
    assert povs == [
        {"owner_id": f.HOST, "pov_summary": "BotA reflects on the quiet moment with BotB."},
        {"owner_id": f.GUEST, "pov_summary": "BotB notices BotA's reserved manner."},
    ]
    assert await rows(db, "SELECT id FROM memories WHERE owner_id = 'you'") == []
    assert await matching(db, "reserved") == [guest_memory]
    await assert_rebuild_agrees(db)


async def test_turns_record_both_roles_and_close_the_turn_they_started(
    db: Database, seeded: f.SeedIds
) -> None:
    scene = seeded.meanwhile_scene_id
    started = await add(db, "turn_started", f.turn_started(scene))
    other = await add(db, "turn_started", f.turn_started(scene, speaker_id=f.GUEST))
    assert [r["turn_started_id"] for r in await rows(db, "SELECT * FROM open_turns")] == [
        started,
        other,
    ]
    user = await add(db, "user_turn", f.user_turn(scene, turn_started_id=started, message_id=42))
    assert [r["turn_started_id"] for r in await rows(db, "SELECT * FROM open_turns")] == [other]
    cancelled = await add(
        db,
        "assistant_turn",
        f.assistant_turn(
            scene, speaker_id=f.GUEST, text="BotB begi", cancelled=True, turn_started_id=other
        ),
    )
    assert await rows(db, "SELECT * FROM open_turns") == []
    turns = await rows(
        db,
        "SELECT id, role, speaker_id, text, segments_json, present_set_kind, cancelled, "
        "meanwhile_scene_id, message_ids_json FROM turns ORDER BY id",
    )
    assert turns == [
        {
            "id": user,
            "role": "user",
            "speaker_id": "you",
            "text": "they exchange a glance",
            "segments_json": '[{"kind": "narration", "text": "they exchange a glance"}]',
            "present_set_kind": "host_guest",
            "cancelled": 0,
            "meanwhile_scene_id": scene,
            "message_ids_json": "[42]",
        },
        {
            "id": cancelled,
            "role": "assistant",
            "speaker_id": f.GUEST,
            "text": "BotB begi",
            "segments_json": "[]",
            "present_set_kind": "host_guest",
            "cancelled": 1,
            "meanwhile_scene_id": scene,
            "message_ids_json": "[]",
        },
    ]


async def test_turn_edits_and_message_links_hit_only_their_role(
    db: Database, seeded: f.SeedIds
) -> None:
    user, assistant, *_ = await _meanwhile_turn(db, seeded, "hello")
    await add(db, "manual_edit", f.manual_edit(user, "they trade a look", "user_turn_prose"))
    await add(db, "manual_edit", f.manual_edit(user, "not a reply", "assistant_turn_text"))
    await add(db, "manual_edit", f.manual_edit(assistant, "Hi.", "assistant_turn_text"))
    await add(db, "turn_messages_linked", f.turn_messages_linked(assistant))
    assert await rows(db, "SELECT id, text, message_ids_json FROM turns ORDER BY id") == [
        {"id": user, "text": "they trade a look", "message_ids_json": "[]"},
        {"id": assistant, "text": "Hi.", "message_ids_json": "[111, 112]"},
    ]


async def test_digests_and_story_threads(db: Database, seeded: f.SeedIds) -> None:
    digest = await add(db, "digest_written", f.digest_written(seeded.meanwhile_scene_id))
    thread = await add(db, "story_thread_detected", f.story_thread_detected(seeded.scene_id))
    assert await rows(db, "SELECT * FROM digests") == [
        {
            "id": digest,
            "chat_id": f.CHAT,
            "meanwhile_scene_id": seeded.meanwhile_scene_id,
            "text": "While you were away, BotA and BotB talked quietly.",
        }
    ]
    assert await rows(db, "SELECT id, scene_id, title FROM story_threads") == [
        {"id": thread, "scene_id": seeded.scene_id, "title": "What BotA saw"}
    ]


# --- rewinds --------------------------------------------------------------------------------


async def test_beats_rewound_removes_the_rewound_rows_of_one_chat_only(db: Database) -> None:
    # Given two chats with a turn each, and in chat one a second turn, an edit and an edge move
    one = await f.seed_meanwhile_chat(db, chat_id="one")
    two = await f.seed_meanwhile_chat(db, chat_id="two", with_characters=False)
    first_turn = await _meanwhile_turn(db, one, "first")
    mark = await add(db, "manual_edit", f.manual_edit(first_turn[2], "kept summary"))
    await _meanwhile_turn(db, two, "elsewhere")
    second_turn = await _meanwhile_turn(db, one, "second")
    await add(db, "edge_update", f.edge_update(chat_id="one", affinity_delta=20))
    await add(db, "digest_written", f.digest_written(one.meanwhile_scene_id, chat_id="one"))
    two_before = await f.snapshot(db)
    # When chat one is rewound to just after its first turn and the edit
    rewind = await add(db, "beats_rewound", f.beats_rewound(mark, chat_id="one"))
    # Then the later rows of chat one are gone and its earlier rows (and the edit) stay
    turn_ids = [
        r["id"] for r in await rows(db, "SELECT id FROM turns WHERE chat_id = 'one' ORDER BY id")
    ]
    assert turn_ids == first_turn[:2]
    memories = await rows(
        db, "SELECT id, pov_summary FROM memories WHERE chat_id = 'one' ORDER BY id"
    )
    assert memories == [
        {"id": first_turn[2], "pov_summary": "kept summary"},
        {"id": first_turn[3], "pov_summary": ""},
    ]
    assert not set(second_turn) & set(await matching(db, "second"))
    assert await rows(db, "SELECT affinity FROM edges WHERE chat_id = 'one'") == [
        {"affinity": 50},
        {"affinity": 50},
    ]
    assert await rows(db, "SELECT * FROM edge_changes") == []
    assert await rows(db, "SELECT * FROM digests") == []
    assert await rows(db, "SELECT event_id, after_event_id FROM rewound_ranges") == [
        {"event_id": rewind, "after_event_id": mark}
    ]
    # and chat two's rows are untouched
    after = await f.snapshot(db)
    for table, before_rows in two_before.items():
        if table in {"rewound_ranges"}:
            continue
        assert [r for r in after[table] if "two" in r] == [r for r in before_rows if "two" in r]
    assert two.chat_id == "two"
    # and later events of chat one apply on top of the rewound state
    third = await _meanwhile_turn(db, one, "third")
    assert [
        r["id"] for r in await rows(db, "SELECT id FROM turns WHERE chat_id = 'one' ORDER BY id")
    ] == [
        *first_turn[:2],
        *third[:2],
    ]
    await assert_rebuild_agrees(db)


async def test_a_rewind_to_before_the_chat_empties_that_chat(
    db: Database, seeded: f.SeedIds
) -> None:
    await _meanwhile_turn(db, seeded, "gone")
    await add(db, "beats_rewound", f.beats_rewound(0))
    tables = ("chats", "scenes", "containers", "turns", "memories", "edges", "activity_views")
    for table in tables:
        assert await rows(db, f"SELECT * FROM {table}") == [], table
    assert len(await rows(db, "SELECT * FROM characters")) == 2
    await assert_rebuild_agrees(db)


async def test_after_a_rebuild_new_and_edited_memories_are_still_indexed(
    db: Database, seeded: f.SeedIds
) -> None:
    # Given a memory, and a rebuild of every projection
    _, _, old, _ = await _meanwhile_turn(db, seeded, "the lighthouse")
    await project(db)
    # When a memory is written and the old one's summary edited after the rebuild
    *_, new = await _meanwhile_turn(db, seeded, "the harbour")
    await add(db, "manual_edit", f.manual_edit(old, "a storm was coming"))

    # Then the full-text index follows both
    assert new in await matching(db, "harbour")
    assert await matching(db, "storm") == [old]
    await f.snapshot(db)  # runs the index's integrity-check


async def test_a_fact_matching_the_line_is_found_however_old_and_only_on_its_edge(
    db: Database, seeded: f.SeedIds
) -> None:
    """A prompt carries an edge's newest facts and those holding a word of the line, found in
    the edge's own full-text scope: a fact learned 600 facts ago still comes back (whatever the
    case of the word), another edge's never does; a rewind takes it away, a rebuild keeps the
    index right."""
    views = Views(db)

    async def learn(source: str, target: str, facts: list[str]) -> int:
        payload = f.edge_update(source, target, seeded.chat_id, knowledge_facts=facts)
        return await append_and_apply(db, kind="edge_update", payload=payload)

    await learn(f.GUEST, f.HOST, ["keeps the lighthouse key"])  # the other direction's fact
    old = await learn(f.HOST, f.GUEST, ["keeps the lighthouse of the north coast"])
    for n in range(0, 600, 50):
        await learn(f.HOST, f.GUEST, [f"filler fact {m}" for m in range(n, n + 50)])

    async def known(about: str) -> tuple[str, ...]:
        return await views.known_facts(seeded.chat_id, f.HOST, f.GUEST, about=about)

    facts = await known("Where is the LIGHTHOUSE?")
    assert "keeps the lighthouse of the north coast" in facts
    assert "keeps the lighthouse key" not in facts
    assert len(facts) <= 10  # the 6 newest and up to 4 that match, never the whole list
    assert "keeps the lighthouse of the north coast" not in await known("the harbour")
    # When the fact's beat is rewound, the fact is gone from the search too
    await append_and_apply(
        db, kind="beats_rewound", payload=f.beats_rewound(old - 1, seeded.chat_id)
    )
    assert "keeps the lighthouse of the north coast" not in await known("the lighthouse")
    await learn(f.HOST, f.GUEST, ["keeps the lighthouse of the north coast"])
    await project(db)
    assert "keeps the lighthouse of the north coast" in await known("the lighthouse")
