"""Payload builders for store events, shaped like the payloads the log has always taken.

One function per event kind returns a valid payload dict; keyword ``overrides`` replace or add
fields, so a test states only what it cares about. ``PAYLOAD_FACTORIES`` maps every kind to a
zero-argument builder, and ``seed_meanwhile_chat`` appends the usual meanwhile world (two
characters, you, a chat, an office, an open you-scene with a meanwhile child, two edges, two
activities).

Ids: rows take the id of the event that created them, so a builder that points at a scene, a
memory or a turn takes that event's id.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.store import Database, append_and_apply, append_event, recall
from bot.store.db import _split_statements
from bot.store.schema import PROJECTION_TABLES, RECALL_TIERS, tier_triggers
from bot.store.sql import Connection, is_postgres

Payload = dict[str, Any]

CHAT = "chat_bot_a"
HOST = "bot_a"
GUEST = "bot_b"
T0 = "2026-04-26T20:00:00+00:00"


def _merge(base: Payload, overrides: dict[str, Any]) -> Payload:
    return {**base, **overrides}


def bot_authored(bot_id: str = HOST, name: str = "BotA", **overrides: Any) -> Payload:
    return _merge(
        {
            "id": bot_id,
            "name": name,
            "persona": f"persona for {name}",
            "voice_samples": [],
            "traits": [],
            "backstory": "",
            "initial_relationship_to_you": "",
            "kickoff_prose": "...",
        },
        overrides,
    )


def character_deleted(bot_id: str = HOST, **overrides: Any) -> Payload:
    return _merge({"id": bot_id}, overrides)


def you_authored(**overrides: Any) -> Payload:
    return _merge({"name": "Me", "pronouns": "they/them", "persona": ""}, overrides)


def asset_stored(data: bytes = b"\x89PNG not really", **overrides: Any) -> Payload:
    return _merge(
        {
            "sha256": hashlib.sha256(data).hexdigest(),
            "content_type": "image/png",
            "data_b64": base64.b64encode(data).decode("ascii"),
        },
        overrides,
    )


def chat_created(
    chat_id: str = CHAT, host: str = HOST, guest: str | None = GUEST, **overrides: Any
) -> Payload:
    return _merge(
        {
            "id": chat_id,
            "host_bot_id": host,
            "guest_bot_id": guest,
            "initial_time": T0,
            "narrative_anchor": "Day 1",
            "weather": "",
        },
        overrides,
    )


def chat_ended(chat_id: str = CHAT, **overrides: Any) -> Payload:
    return _merge({"chat_id": chat_id}, overrides)


def cast_changed(chat_id: str = CHAT, guest: str | None = GUEST, **overrides: Any) -> Payload:
    return _merge({"chat_id": chat_id, "guest_bot_id": guest}, overrides)


def world_changed(chat_id: str = CHAT, **overrides: Any) -> Payload:
    return _merge({"chat_id": chat_id, "time": "2026-04-26T21:00:00+00:00"}, overrides)


def container_created(chat_id: str = CHAT, name: str = "office", **overrides: Any) -> Payload:
    return _merge(
        {"chat_id": chat_id, "name": name, "type": "workplace", "properties": {}}, overrides
    )


def scene_opened(
    chat_id: str = CHAT,
    container_id: int = 1,
    participants: tuple[str, ...] = ("you", HOST, GUEST),
    **overrides: Any,
) -> Payload:
    return _merge(
        {
            "chat_id": chat_id,
            "container_id": container_id,
            "started_at": T0,
            "participants": list(participants),
        },
        overrides,
    )


def scene_closed(scene_id: int = 1, **overrides: Any) -> Payload:
    return _merge({"scene_id": scene_id, "closed_at": "2026-04-26T20:45:00+00:00"}, overrides)


def meanwhile_scene_started(
    chat_id: str = CHAT, parent_scene_id: int = 1, **overrides: Any
) -> Payload:
    """The first payload shape; pass ``scene_id=...`` to carry an older store's scene id too."""
    return _merge(
        {
            "chat_id": chat_id,
            "parent_scene_id": parent_scene_id,
            "host_bot_id": HOST,
            "guest_bot_id": GUEST,
            "started_at": "2026-04-26T20:05:00+00:00",
        },
        overrides,
    )


def meanwhile_scene_closed(scene_id: int = 2, **overrides: Any) -> Payload:
    return _merge({"scene_id": scene_id, "closed_at": "2026-04-26T20:30:00+00:00"}, overrides)


def edge_update(
    source_id: str = HOST, target_id: str = GUEST, chat_id: str = CHAT, **overrides: Any
) -> Payload:
    return _merge(
        {"source_id": source_id, "target_id": target_id, "chat_id": chat_id, "knowledge_facts": []},
        overrides,
    )


def activity_change(entity_id: str = HOST, verb: str = "listening", **overrides: Any) -> Payload:
    return _merge(
        {
            "entity_id": entity_id,
            "posture": "sitting",
            "action": {
                "verb": verb,
                "interruptible": True,
                "required_attention": "low",
                "expected_duration": "ongoing",
            },
            "attention": "",
            "holding": [],
            "status": {},
        },
        overrides,
    )


def memory_written(
    owner_id: str = HOST,
    scene_id: int = 2,
    chat_id: str = CHAT,
    witness: tuple[int, int, int] = (0, 1, 1),
    **overrides: Any,
) -> Payload:
    """``witness`` is (you, host, guest); the default is a meanwhile beat's [0, 1, 1]."""
    return _merge(
        {
            "owner_id": owner_id,
            "chat_id": chat_id,
            "scene_id": scene_id,
            "witness_you": witness[0],
            "witness_host": witness[1],
            "witness_guest": witness[2],
            "text": f"{owner_id} remembers the quiet glance",
            "pov_summary": "",
        },
        overrides,
    )


def _segments(prose: str) -> list[Payload]:
    return [{"kind": "narration", "text": prose}]


def turn_started(
    scene_id: int = 2, chat_id: str = CHAT, speaker_id: str = HOST, **overrides: Any
) -> Payload:
    return _merge(
        {
            "chat_id": chat_id,
            "scene_id": scene_id,
            "speaker_id": speaker_id,
            "prose": "they exchange a glance",
            "present_set_kind": "host_guest",
            "meanwhile_scene_id": scene_id,
        },
        overrides,
    )


def user_turn(
    scene_id: int = 2, chat_id: str = CHAT, prose: str = "they exchange a glance", **overrides: Any
) -> Payload:
    return _merge(
        {
            "chat_id": chat_id,
            "scene_id": scene_id,
            "prose": prose,
            "segments": _segments(prose),
            "present_set_kind": "host_guest",
            "meanwhile_scene_id": scene_id,
        },
        overrides,
    )


def assistant_turn(
    scene_id: int = 2, chat_id: str = CHAT, speaker_id: str = HOST, **overrides: Any
) -> Payload:
    return _merge(
        {
            "chat_id": chat_id,
            "scene_id": scene_id,
            "speaker_id": speaker_id,
            "text": "BotA leans in. *quietly* Tell me what you saw.",
            "present_set_kind": "host_guest",
            "meanwhile_scene_id": scene_id,
        },
        overrides,
    )


def turn_messages_linked(turn_id: int = 1, chat_id: str = CHAT, **overrides: Any) -> Payload:
    return _merge({"chat_id": chat_id, "turn_id": turn_id, "message_ids": [111, 112]}, overrides)


def manual_edit(
    target_id: int = 1,
    new_value: str = "BotA reflects on the quiet moment with BotB.",
    target_kind: str = "memory_pov_summary",
    **overrides: Any,
) -> Payload:
    """A per-POV summary rewrite (no chat_id: the store finds it from the target)."""
    return _merge(
        {"target_kind": target_kind, "target_id": target_id, "new_value": new_value}, overrides
    )


def digest_written(meanwhile_scene_id: int = 2, chat_id: str = CHAT, **overrides: Any) -> Payload:
    return _merge(
        {
            "chat_id": chat_id,
            "meanwhile_scene_id": meanwhile_scene_id,
            "text": "While you were away, BotA and BotB talked quietly.",
        },
        overrides,
    )


def story_thread_detected(scene_id: int = 1, chat_id: str = CHAT, **overrides: Any) -> Payload:
    return _merge(
        {
            "chat_id": chat_id,
            "scene_id": scene_id,
            "title": "What BotA saw",
            "summary": "BotA hints at something seen today.",
        },
        overrides,
    )


def beats_rewound(after_event_id: int = 0, chat_id: str = CHAT, **overrides: Any) -> Payload:
    return _merge({"chat_id": chat_id, "after_event_id": after_event_id}, overrides)


def turn_classified(turn_id: int = 1, chat_id: str = CHAT, **overrides: Any) -> Payload:
    return _merge(
        {"chat_id": chat_id, "turn_id": turn_id, "segments": _segments("a glance")}, overrides
    )


def derivations_replaced(beat_id: int = 1, chat_id: str = CHAT, **overrides: Any) -> Payload:
    return _merge({"chat_id": chat_id, "beat_id": beat_id}, overrides)


def lore_entry(key: str = "lighthouse", **overrides: Any) -> dict[str, Any]:
    return {"keys": [key], "content": f"About the {key}.", **overrides}


def world_book_imported(chat_id: str = CHAT, **overrides: Any) -> Payload:
    base = {"chat_id": chat_id, "name": "Vale", "entries": [lore_entry(), lore_entry("storm")]}
    return _merge(base, overrides)


def lore_entry_added(chat_id: str = CHAT, key: str = "letter", **overrides: Any) -> Payload:
    return _merge({"chat_id": chat_id, "entry": lore_entry(key)}, overrides)


def lore_entry_removed(chat_id: str = CHAT, number: int = 1, **overrides: Any) -> Payload:
    return _merge({"chat_id": chat_id, "number": number}, overrides)


PAYLOAD_FACTORIES: dict[str, Callable[[], Payload]] = {
    "bot_authored": bot_authored,
    "character_deleted": character_deleted,
    "you_authored": you_authored,
    "asset_stored": asset_stored,
    "chat_created": chat_created,
    "chat_ended": chat_ended,
    "cast_changed": cast_changed,
    "world_changed": world_changed,
    "container_created": container_created,
    "scene_opened": scene_opened,
    "scene_closed": scene_closed,
    "meanwhile_scene_started": meanwhile_scene_started,
    "meanwhile_scene_closed": meanwhile_scene_closed,
    "edge_update": edge_update,
    "activity_change": activity_change,
    "memory_written": memory_written,
    "turn_started": turn_started,
    "user_turn": user_turn,
    "assistant_turn": assistant_turn,
    "turn_messages_linked": turn_messages_linked,
    "manual_edit": manual_edit,
    "digest_written": digest_written,
    "story_thread_detected": story_thread_detected,
    "beats_rewound": beats_rewound,
    "turn_classified": turn_classified,
    "derivations_replaced": derivations_replaced,
    "world_book_imported": world_book_imported,
    "lore_entry_added": lore_entry_added,
    "lore_entry_removed": lore_entry_removed,
}
"""Every event kind to a builder of a valid payload with everyday defaults."""


@dataclass(frozen=True)
class SeedIds:
    """Event ids (= row ids) of the seeded world."""

    chat_id: str
    container_id: int
    scene_id: int
    meanwhile_scene_id: int


async def seed_meanwhile_chat(
    db: Database, *, chat_id: str = CHAT, apply: bool = True, with_characters: bool = True
) -> SeedIds:
    """Append the usual meanwhile world; ``apply=False`` appends only (``project`` applies them
    later). Characters and you are per guild, not per chat, so a
    second seeded chat passes ``with_characters=False``."""

    async def add(kind: str, payload: Payload) -> int:
        if apply:
            return await append_and_apply(db, kind=kind, payload=payload)
        return await append_event(db, kind=kind, payload=payload)

    if with_characters:
        await add("bot_authored", bot_authored(HOST, "BotA"))
        await add("bot_authored", bot_authored(GUEST, "BotB"))
        await add("you_authored", you_authored())
    await add("chat_created", chat_created(chat_id))
    container = await add("container_created", container_created(chat_id))
    scene = await add("scene_opened", scene_opened(chat_id, container))
    meanwhile = await add(
        "meanwhile_scene_started", meanwhile_scene_started(chat_id, scene, scene_id=2)
    )
    for source, target in [(HOST, GUEST), (GUEST, HOST)]:
        await add("edge_update", edge_update(source, target, chat_id))
    for entity_id, verb in [(HOST, "listening"), (GUEST, "talking")]:
        await add("activity_change", activity_change(entity_id, verb, chat_id=chat_id))
    return SeedIds(chat_id, container, scene, meanwhile)


def small_recall_tiers(raw: Connection, span: int) -> None:
    """Make SQLite's recent full-text tiers hold ``span`` keys, so a short story moves rows to
    the archive again and again (the real spans take thousands of events)."""
    for table in RECALL_TIERS:
        for suffix in ("ai", "ad", "au"):
            raw.execute(f"DROP TRIGGER {table}_{suffix}")
        for statement in _split_statements(tier_triggers(table, span)):
            raw.execute(statement)


def recall_boundary(raw: Connection, table: str) -> int:
    """Where ``table``'s full-text tiers split: keys at or below it are in the archive."""
    return int(
        raw.execute("SELECT boundary FROM recall_tiers WHERE tbl = ?", (table,)).fetchone()[0]
    )


Snapshot = dict[str, list[tuple[Any, ...]]]


def table_columns(raw: Connection, table: str) -> list[str]:
    """A table's columns in their declared order, on either store."""
    if is_postgres(raw):
        rows = raw.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
            (table,),
        ).fetchall()
        return [row[0] for row in rows]
    return [row[1] for row in raw.execute(f"PRAGMA table_info({table})").fetchall()]


def _ordered(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows in one order on both stores (SQLite sorts NULL first, PostgreSQL last)."""
    return sorted(rows, key=lambda row: tuple((value is not None, value) for value in row))


def snapshot_tables(raw: Connection, words: tuple[str, ...] = ()) -> Snapshot:
    """Every projection table, rows ordered by all columns, plus the full-text index: the ids
    each of ``words`` finds are kept (and on SQLite the FTS5 index's integrity is checked
    against ``memories``, and its rows kept). Equal snapshots mean equal stories, across
    stores too."""
    snap: Snapshot = {}
    for table in PROJECTION_TABLES:
        columns = ", ".join(table_columns(raw, table))
        snap[table] = _ordered([tuple(r) for r in raw.execute(f"SELECT {columns} FROM {table}")])
    if not is_postgres(raw):
        # both tiers of each index must be whole; where the tiers split depends on the
        # story's history, so only what they hold together is kept
        for fts in (
            "memories_fts",
            "memories_fts_recent",
            "edge_facts_fts",
            "edge_facts_fts_recent",
        ):
            raw.execute(f"INSERT INTO {fts} ({fts}, rank) VALUES ('integrity-check', 1)")
        snap["memories_fts"] = sorted(
            tuple(r)
            for fts in ("memories_fts", "memories_fts_recent")
            for r in raw.execute(f"SELECT rowid, text, pov_summary FROM {fts}")
        )
    for word in words:
        snap[f"memories_fts MATCH {word}"] = [(i,) for i in recall.ids_matching(raw, word)]
    return snap


def portable(snap: Snapshot) -> Snapshot:
    """What two different stores must agree on: the tables and what each word recalls (not
    the rows of SQLite's own full-text table)."""
    return {key: rows for key, rows in snap.items() if key != "memories_fts"}


async def snapshot(db: Database, words: tuple[str, ...] = ()) -> Snapshot:
    return await db.read(lambda raw: snapshot_tables(raw, words))
