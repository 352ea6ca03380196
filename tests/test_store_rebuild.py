"""A full rebuild: on SQLite its writes are queued per table, yet every read sees every write
before it and each table's statements keep their order; a rebuild cut short changes nothing;
and the log's rewinds and edits are left out as it goes, not replayed chat by chat."""

from __future__ import annotations

import gc
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

import tests.helpers.store_factories as f
from bot.store import Database, append_and_apply, bulk, open_db, page_cache, project, projector
from bot.store.events import AssistantTurn, EdgeUpdate, MemoryWritten, UserTurn
from bot.store.fold import FAST_KINDS, Fold
from bot.store.projector import _HANDLERS
from bot.store.provenance import source_of
from bot.store.record import StoredEvent
from bot.store.sql import Connection
from tests.helpers.stores import BACKENDS, fresh_store


@pytest.fixture
def raw() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE facts (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    conn.execute("CREATE TABLE copies (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    yield conn
    conn.close()


def rows(conn: Connection, table: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(f"SELECT k, v FROM {table} ORDER BY k")]


def test_writes_wait_in_the_queue_until_something_reads(raw: sqlite3.Connection) -> None:
    writer = bulk.Bulk(raw)
    writer.execute("INSERT INTO facts (k, v) VALUES (?, ?)", (1, "lantern"))
    writer.executemany("INSERT INTO facts (k, v) VALUES (?, ?)", [(2, "ledger"), (3, "key")])
    assert rows(raw, "facts") == []  # queued, not sent
    # a read through the writer sends the queue first
    assert rows(writer, "facts") == [(1, "lantern"), (2, "ledger"), (3, "key")]


def test_a_tables_statements_keep_their_order_across_different_sql(
    raw: sqlite3.Connection,
) -> None:
    """The first of two clashing inserts wins, as one by one; an update after an insert of the
    same table applies to it, and a delete after both removes it."""
    writer = bulk.Bulk(raw)
    writer.execute("INSERT INTO facts (k, v) VALUES (?, ?) ON CONFLICT DO NOTHING", (1, "first"))
    writer.execute("INSERT INTO facts (v, k) VALUES (?, ?) ON CONFLICT DO NOTHING", ("late", 1))
    writer.execute("INSERT INTO facts (k, v) VALUES (?, ?) ON CONFLICT DO NOTHING", (2, "two"))
    writer.execute("UPDATE facts SET v = ? WHERE k = ?", ("second", 2))
    writer.execute("INSERT INTO facts (k, v) VALUES (?, ?) ON CONFLICT DO NOTHING", (3, "three"))
    writer.execute("DELETE FROM facts WHERE k = ?", (3,))
    writer.flush()
    assert rows(raw, "facts") == [(1, "first"), (2, "second")]


def test_a_write_that_reads_another_table_runs_after_the_queue(raw: sqlite3.Connection) -> None:
    writer = bulk.Bulk(raw)
    writer.execute("INSERT INTO facts (k, v) VALUES (?, ?)", (1, "lantern"))
    writer.execute("INSERT INTO copies SELECT k, v FROM facts")
    assert rows(raw, "copies") == [(1, "lantern")]


def test_a_table_something_fires_on_is_written_at_once(raw: sqlite3.Connection) -> None:
    raw.execute(
        "CREATE TRIGGER copy AFTER INSERT ON facts BEGIN "
        "INSERT INTO copies (k, v) VALUES (new.k, new.v); END"
    )
    writer = bulk.Bulk(raw)
    writer.execute("INSERT INTO copies (k, v) VALUES (?, ?)", (9, "queued"))
    writer.execute("INSERT INTO facts (k, v) VALUES (?, ?)", (1, "lantern"))
    # the trigger's table and the one it writes: neither waits behind the other
    assert rows(raw, "facts") == [(1, "lantern")]
    assert rows(raw, "copies") == [(1, "lantern"), (9, "queued")]


def test_the_queue_is_bounded(raw: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "FLUSH_AT", 3)
    writer = bulk.Bulk(raw)
    writer.executemany("INSERT INTO facts (k, v) VALUES (?, ?)", [(1, "a"), (2, "b")])
    assert rows(raw, "facts") == []
    writer.execute("INSERT INTO copies (k, v) VALUES (?, ?)", (1, "c"))
    assert rows(raw, "facts") == [(1, "a"), (2, "b")]
    assert rows(raw, "copies") == [(1, "c")]


def schema(conn: sqlite3.Connection) -> set[tuple[str, str, str, str]]:
    return {
        (r[0], r[1], r[2], r[3])
        for r in conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master")
    }


async def seeded_store(db: Database) -> None:
    ids = await f.seed_meanwhile_chat(db)
    beat = await append_and_apply(db, kind="assistant_turn", payload=f.assistant_turn(ids.scene_id))
    await append_and_apply(db, kind="memory_written", payload=f.memory_written(beat_id=beat))


async def test_a_rebuild_gives_back_every_index_and_trigger() -> None:
    async with open_db(":memory:") as db:
        await seeded_store(db)
        before = await db.run(schema)
        assert {name for kind, name, _, _ in before if kind == "index"} >= set(
            bulk.DEFERRED_INDEXES
        )
        incremental = await f.snapshot(db)
        await project(db)
        assert await db.run(schema) == before
        assert await f.snapshot(db) == incremental
        assert gc.isenabled()


async def test_a_rebuild_runs_with_a_large_page_cache_and_gives_it_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # turns play with a small cache (a full one made every turn of a long story dearer)
    sizes: list[int] = []
    fold = projector._fold

    def noting_the_cache(raw: Connection, *args: Any, **kwargs: Any) -> int:
        sizes.append(raw.execute("PRAGMA cache_size").fetchone()[0])
        return fold(raw, *args, **kwargs)

    monkeypatch.setattr(projector, "_fold", noting_the_cache)
    async with open_db(":memory:") as db:
        await seeded_store(db)
        cache_size = "PRAGMA cache_size"
        assert tuple(await db.fetchone(cache_size)) == (-page_cache.TURN_KIB,)
        await project(db)
        assert sizes == [-page_cache.REBUILD_KIB]
        assert tuple(await db.fetchone(cache_size)) == (-page_cache.TURN_KIB,)


async def test_a_rebuild_cut_short_leaves_the_old_projections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One transaction: the queued writes, the dropped indexes and triggers all go back."""

    def broken(raw: Connection, event: StoredEvent[MemoryWritten]) -> None:
        raise RuntimeError("the disk went away")

    def broken_folder(fold: Fold, event_id: int, payload: dict[str, Any]) -> None:
        raise RuntimeError("the disk went away")

    async with open_db(":memory:") as db:
        await seeded_store(db)
        before, incremental = await db.run(schema), await f.snapshot(db)
        monkeypatch.setitem(_HANDLERS, MemoryWritten, [broken])
        folding = replace(FAST_KINDS["memory_written"], folder=broken_folder)
        monkeypatch.setitem(FAST_KINDS, "memory_written", folding)
        with pytest.raises(RuntimeError, match="the disk went away"):
            await project(db)
        assert await db.run(schema) == before
        assert await f.snapshot(db) == incremental
        assert gc.isenabled()


async def regenerated_story(db: Database, *, turns: int) -> None:
    """A chat where every third reply is regenerated (rewound, written again), every fifth
    beat's derivations replaced by an edit, and facts learned on the edges throughout."""
    ids = await f.seed_meanwhile_chat(db)
    for n in range(turns):
        line = await append_and_apply(db, kind="user_turn", payload=f.user_turn(ids.scene_id))
        for attempt in range(2 if n % 3 == 0 else 1):
            beat = await append_and_apply(
                db, kind="assistant_turn", payload=f.assistant_turn(ids.scene_id, text=f"{n}")
            )
            memory = f.memory_written(beat_id=beat)
            await append_and_apply(db, kind="memory_written", payload=memory)
            fact = f.edge_update(beat_id=beat, knowledge_facts=[f"fact {n}.{attempt}"])
            await append_and_apply(db, kind="edge_update", payload=fact)
            if n % 3 == 0 and attempt == 0:  # regenerate: the reply and what it derived go
                await append_and_apply(db, kind="beats_rewound", payload=f.beats_rewound(line))
        if n % 5 == 4:
            edit = f.derivations_replaced(beat_id=beat)
            await append_and_apply(db, kind="derivations_replaced", payload=edit)
            again = f.memory_written(beat_id=beat, text=f"remembered again {n}")
            await append_and_apply(db, kind="memory_written", payload=again)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_rebuild_leaves_rewound_and_replaced_events_out_without_replaying(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each rewind used to replay its chat whole inside a rebuild (quadratic in the story);
    now none does, and the tables are still the incremental ones. A rewind after the rebuild
    (the journal is empty then) replays the chat once and still equals a rebuild."""
    async with fresh_store(backend) as db:
        await regenerated_story(db, turns=12)
        incremental = await f.snapshot(db)
        assert incremental["rewound_ranges"] and incremental["derived_replaced"]
        restarts: list[str] = []
        restart = projector.restart_chat

        def counted(raw: Connection, chat_id: str) -> None:
            restarts.append(chat_id)
            restart(raw, chat_id)

        monkeypatch.setattr(projector, "restart_chat", counted)
        await project(db)
        assert restarts == []
        assert await f.snapshot(db) == incremental

        last_line = await db.fetchone("SELECT MAX(id) FROM turns WHERE role = 'user'")
        assert last_line is not None
        await append_and_apply(db, kind="beats_rewound", payload=f.beats_rewound(last_line[0]))
        assert restarts == [f.CHAT]  # behind the rebuild: the chat is replayed whole, once
        after_rewind = await f.snapshot(db)
        assert after_rewind["turns"][-1][0] == last_line[0]  # the last reply is gone
        await project(db)
        assert await f.snapshot(db) == after_rewind


def test_rewound_is_a_bisection_of_merged_ranges() -> None:
    ranges = ((10, 15), (12, 20), (30, 31), (40, 45), (0, 3))
    exclusions = projector.Exclusions.of(ranges, [])
    for event_id in range(50):
        assert exclusions.rewound(event_id) == any(a < event_id < u for a, u in ranges)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_an_activity_of_no_chat_from_a_beat_later_rewound_is_kept_as_it_was(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A first-shape activity names no chat, so no rewind of the chat removes it; it was
    recorded because its beat was there then. Leaving the rewound beat out would lose it: the
    rebuild folds the log again the old way, and still equals incremental."""
    async with fresh_store(backend) as db:
        ids = await f.seed_meanwhile_chat(db)
        line = await append_and_apply(db, kind="user_turn", payload=f.user_turn(ids.scene_id))
        beat = await append_and_apply(
            db, kind="assistant_turn", payload=f.assistant_turn(ids.scene_id)
        )
        activity = f.activity_change(verb="pacing", beat_id=beat)  # no chat_id
        await append_and_apply(db, kind="activity_change", payload=activity)
        await append_and_apply(db, kind="beats_rewound", payload=f.beats_rewound(line))
        incremental = await f.snapshot(db)
        assert [r for r in incremental["activity_views"] if "pacing" in r[4]]
        with caplog.at_level("INFO", logger="bot.store.projector"):
            await project(db)
        assert "folded again" in caplog.text
        assert await f.snapshot(db) == incremental


async def test_a_rebuilds_folders_give_the_rows_its_handlers_give(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fast path of a SQLite rebuild (``fold.FAST_KINDS``) against the handlers alone, on
    one log: beats with and without witnesses written on them, a reply naming its line and
    one found by its turn, facts new, repeated and empty, edges moved, clamped and summarised,
    memories kept and refused, regenerates and edits left out; and every payload of a fast
    kind stored as written before its defaulted fields (the rebuild fills them in)."""
    async with open_db(":memory:") as db:
        await regenerated_story(db, turns=12)
        ids = await f.seed_meanwhile_chat(db, chat_id="second", with_characters=False)
        chat, scene = {"chat_id": "second"}, ids.scene_id
        started = await append_and_apply(
            db, kind="turn_started", payload=f.turn_started(scene, **chat)
        )
        line = f.user_turn(scene, turn_started_id=started, message_id=7, **chat)
        await append_and_apply(db, kind="user_turn", payload=line)
        reply = f.assistant_turn(scene, turn_started_id=started, message_ids=[8, 9], **chat)
        beat = await append_and_apply(db, kind="assistant_turn", payload=reply)
        unseen = f.user_turn(scene, witnesses=["you"], **chat)
        alone = await append_and_apply(db, kind="user_turn", payload=unseen)
        for owner in ("you", "bot_a"):  # bot_a did not see the line it would remember
            memory = f.memory_written(owner_id=owner, beat_id=alone, scene_id=scene, **chat)
            await append_and_apply(db, kind="memory_written", payload=memory)
        for delta, summary in ((80, None), (80, "a friend"), (-30, None)):
            update = f.edge_update(
                beat_id=beat,
                affinity_delta=delta,
                knowledge_facts=["Likes  TEA", "likes tea", "  "],
                relationship_summary=summary,
                **chat,
            )
            await append_and_apply(db, kind="edge_update", payload=update)
        summary = f.edge_update(scene_id=scene, relationship_summary="an old hand", **chat)
        await append_and_apply(db, kind="edge_update", payload=summary)
        await db.write(_as_first_written)
        await project(db)
        folded = await f.snapshot(db, ("tea",))
        monkeypatch.setattr(projector, "FAST_KINDS", {})
        await project(db)
        assert await f.snapshot(db, ("tea",)) == folded
        assert folded["edges"] and folded["edge_facts"] and folded["witness_counts"]


def _as_first_written(raw: Connection) -> None:
    """Every fast kind's payload in the log as if written before its defaulted fields (those
    holding their default left out)."""
    for kind, folding in FAST_KINDS.items():
        for event_id, payload_json in raw.execute(
            "SELECT id, payload_json FROM event_log WHERE kind = ?", (kind,)
        ).fetchall():
            written = json.loads(payload_json).items()
            payload = {k: v for k, v in written if folding.defaults.get(k, k) != v}
            raw.execute(
                "UPDATE event_log SET payload_json = ? WHERE id = ?",
                (json.dumps(payload), event_id),
            )


def test_a_fast_kinds_source_is_the_one_provenance_names() -> None:
    drawn = [(MemoryWritten, f.memory_written(beat_id=3)), (MemoryWritten, f.memory_written())]
    drawn += [(EdgeUpdate, f.edge_update(beat_id=4, scene_id=6)), (EdgeUpdate, f.edge_update())]
    drawn += [(EdgeUpdate, f.edge_update(scene_id=5)), (UserTurn, f.user_turn(1))]
    drawn += [(AssistantTurn, f.assistant_turn(1))]
    for model, fields in drawn:
        payload = model.model_validate(fields)
        folding = FAST_KINDS[model.kind]
        assert folding.source(payload.model_dump()) == source_of(payload)
    assert set(FAST_KINDS) == {model.kind for model, _ in drawn}
