"""A database made by an older release opens, migrates, and keeps every event and projection."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from bot.store import open_db
from bot.store.db import _split_statements
from bot.store.projector import rebuild_all
from bot.store.schema import MIGRATIONS
from bot.store.views import Views


def _file_at_version(path: Path, version: int) -> sqlite3.Connection:
    """A database file as a release at schema ``version`` left it (no rows yet)."""
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for script in MIGRATIONS[:version]:
        for statement in _split_statements(script):
            raw.execute(statement)
    raw.execute("INSERT INTO schema_version VALUES (?)", (version,))
    return raw


def _miras_memory(text: str) -> dict[str, object]:
    """A memory_written payload as early releases wrote it: Mira's, seen by you and her."""
    return {
        "owner_id": "mira",
        "chat_id": "c1",
        "scene_id": 3,
        "witness_you": 1,
        "witness_host": 1,
        "witness_guest": 0,
        "text": text,
    }


def _log_memories_and_a_fact(raw: sqlite3.Connection, texts: tuple[str, ...]) -> None:
    """Mira's memories of ``texts`` in the log, then one fact she learned about you."""
    events: list[tuple[str, dict[str, object]]] = [
        ("memory_written", _miras_memory(text)) for text in texts
    ]
    fact = {"chat_id": "c1", "source_id": "mira", "target_id": "you"}
    events.append(("edge_update", {**fact, "knowledge_facts": ["Keeps the lighthouse key"]}))
    for event_id, (kind, payload) in enumerate(events, start=1):
        raw.execute(
            "INSERT INTO event_log (id, kind, payload_json, chat_id, created_at) "
            "VALUES (?, ?, ?, 'c1', '2026-01-01T00:00:00+00:00')",
            (event_id, kind, json.dumps(payload)),
        )


def _version_1_database(path: Path) -> None:
    """What release 1 wrote: schema 1, a chat with one memory, projections filled."""
    raw = _file_at_version(path, 1)
    memory = _miras_memory("Alex spoke of the lighthouse keeper")
    raw.execute(
        "INSERT INTO event_log (id, kind, payload_json, chat_id, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (1, "memory_written", json.dumps(memory), "c1", "2026-01-01T00:00:00+00:00"),
    )
    raw.execute(
        "INSERT INTO memories (id, owner_id, chat_id, scene_id, beat_id, witness_you, "
        "witness_host, witness_guest, text, pov_summary) "
        "VALUES (1, 'mira', 'c1', 3, NULL, 1, 1, 0, ?, '')",
        (memory["text"],),
    )
    raw.close()


async def test_a_version_1_database_migrates_and_recall_finds_its_memories(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _version_1_database(path)

    async with open_db(path) as db:
        version = await db.fetchone("SELECT MAX(version) FROM schema_version")
        found = await Views(db).search_memories("c1", "mira", ["lighthouse"], 5)
        other_owner = await Views(db).search_memories("c1", "tomas", ["lighthouse"], 5)

    assert version is not None and version[0] == len(MIGRATIONS)
    assert [m.text for m in found] == ["Alex spoke of the lighthouse keeper"]
    assert other_owner == []


async def test_a_version_8_database_migrates_into_two_tier_indexes(tmp_path: Path) -> None:
    """Migration 9 splits the full-text indexes in two tiers and gives facts their scoped terms
    (rebuilt from the log): what the file held goes to the archive, and recall and fact
    matching still find it, newest first."""
    path = tmp_path / "v8.db"
    raw = _file_at_version(path, 8)
    _log_memories_and_a_fact(raw, ("the lighthouse keeper", "the harbour", "a Lighthouse"))
    raw.close()

    async with open_db(path) as db:
        views = Views(db)
        found = await views.search_memories("c1", "mira", ["lighthouse"], 5)
        facts = await views.known_facts("c1", "mira", "you", about="the LIGHTHOUSE", newest=0)
        missed = await views.known_facts("c1", "mira", "you", about="the harbour", newest=0)
        boundary = await db.fetchone("SELECT boundary FROM recall_tiers WHERE tbl = 'memories'")

    assert [m.id for m in found] == [3, 1]
    assert facts == ("Keeps the lighthouse key",) and missed == ()
    assert boundary is not None and boundary[0] == 3  # all of it in the archive


async def test_a_version_10_database_keeps_both_tiers_searchable_without_column_sizes(
    tmp_path: Path,
) -> None:
    """Migration 11 makes each full-text index again with ``columnsize=0`` from the rows it
    indexed: the archive's and the recent tier's memories and facts are all found after it,
    and each index still merges its segments four at a time."""
    path = tmp_path / "v10.db"
    raw = _file_at_version(path, 10)
    _log_memories_and_a_fact(raw, ("the lighthouse keeper",))
    raw.execute("BEGIN")
    rebuild_all(raw)  # the archive tier holds what the log gave
    raw.execute(
        "INSERT INTO memories (id, owner_id, chat_id, scene_id, beat_id, witness_you, "
        "witness_host, witness_guest, text, pov_summary, scope) "
        "SELECT 9, owner_id, chat_id, scene_id, NULL, 1, 1, 0, 'a lighthouse at dusk', '', "
        "scope FROM memories WHERE id = 1"
    )  # above the boundary: the recent tier's
    raw.execute("COMMIT")
    raw.close()

    async with open_db(path) as db:
        views = Views(db)
        found = await views.search_memories("c1", "mira", ["lighthouse"], 5)
        facts = await views.known_facts("c1", "mira", "you", about="the LIGHTHOUSE", newest=0)
        indexes = await db.fetchall(
            "SELECT name, sql FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL TABLE%'"
        )
        merges = [
            (await db.fetchone(f"SELECT v FROM {name}_config WHERE k = 'crisismerge'"))[0]
            for name, _ in indexes
        ]

    assert [m.id for m in found] == [9, 1]
    assert facts == ("Keeps the lighthouse key",)
    assert len(indexes) == 4 and all("columnsize=0" in sql for _, sql in indexes)
    assert merges == [4, 4, 4, 4]
