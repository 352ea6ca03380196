"""The undo journal: what each event changed in its chat's projection rows.

A rewind or an edit changes what a chat's story holds from some point on. Rather than replay
the chat's whole log, the store undoes the journalled changes of the events after that point
(newest first) and replays only the events after it, so the cost follows the range it undoes,
not the story before it. The journal is a projection-side cache: triggers on every chat-scoped
table write one row per insert, update or delete (the key, and the old row), naming the event
being applied. A full rebuild does not journal (it would halve its speed); it records instead
that the journal covers only events after it (``undo_state.since``), and the first rewind
reaching further back in a chat replays that chat whole, journalling as it goes.

The journal is bounded: every ``PRUNE_EVERY`` events, the chats just written forget what their
events before their last ``JOURNAL_BEATS`` beats changed (``prune``), and say so in
``undo_since``; a rewind or an edit reaching further back replays its chat whole, as after a
rebuild. So the journal holds about ``JOURNAL_BEATS`` beats' worth of rows a chat, however long
the story.

Handlers of chat-scoped tables must not use ``INSERT OR REPLACE``: the rows it deletes fire no
trigger (SQLite's recursive triggers are off), so they could not be given back. Use an upsert.

PostgreSQL keeps the same journal, in the same tables, by one PL/pgSQL trigger function
(``storybot_undo_record``, pg/schema.py) given each table's chat and key columns; it stores
the old row as a JSON object rather than SQLite's array in column order. Undoing is the same
code on both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from bot.store import memo
from bot.store.schema import CHAT_SCOPED_TABLES
from bot.store.sql import Connection, is_postgres

TRIGGER_PREFIX = "undo_"

JOURNAL_BEATS = 500
"""Rewinds and edits within a chat's last this many beats undo through the journal; deeper
ones (rare: each is a long way back) replay the chat whole."""
PRUNE_EVERY = 256
"""A chat written in a batch whose event ids pass a multiple of this is pruned (one indexed
delete), so pruning costs nothing most turns and the journal overshoots by little."""


def _chat_column(table: str) -> str:
    return "id" if table == "chats" else "chat_id"


def _columns(raw: Connection, table: str) -> tuple[list[str], list[str]]:
    """A table's columns and its primary key's (rowid when it has none)."""
    if is_postgres(raw):
        return _pg_columns(raw, table)
    info = raw.execute(f"PRAGMA table_info({table})").fetchall()
    columns = [row[1] for row in info]
    key = [row[1] for row in sorted(info, key=lambda r: r[5]) if row[5] > 0] or ["rowid"]
    return columns, key


def _pg_columns(raw: Connection, table: str) -> tuple[list[str], list[str]]:
    columns = raw.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    key = raw.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass(?) AND i.indisprimary "
        "ORDER BY array_position(i.indkey, a.attnum)",
        (table,),
    ).fetchall()
    return [row[0] for row in columns], [row[0] for row in key]


def install_triggers(raw: Connection) -> None:
    """(Re)create the journal's triggers from the tables as they are now (idempotent)."""
    drop_triggers(raw)
    if is_postgres(raw):
        for table in CHAT_SCOPED_TABLES:
            arguments = ", ".join(f"'{c}'" for c in [_chat_column(table), *_columns(raw, table)[1]])
            raw.execute(
                f"CREATE TRIGGER {TRIGGER_PREFIX}{table} AFTER INSERT OR UPDATE OR DELETE "
                f"ON {table} FOR EACH ROW EXECUTE FUNCTION storybot_undo_record({arguments})"
            )
        return
    for table in CHAT_SCOPED_TABLES:
        columns, key = _columns(raw, table)
        chat = _chat_column(table)

        def values(alias: str, names: list[str]) -> str:
            return "json_array(" + ", ".join(f"{alias}.{n}" for n in names) + ")"

        for op, when, row_of, key_of, old in (
            ("i", "INSERT", "new", "new", "NULL"),
            ("u", "UPDATE", "old", "new", values("old", columns)),
            ("d", "DELETE", "old", "old", values("old", columns)),
        ):
            raw.execute(
                f"CREATE TRIGGER {TRIGGER_PREFIX}{table}_{op} AFTER {when} ON {table} "
                "WHEN (SELECT recording FROM undo_state) BEGIN "
                "INSERT INTO undo_journal (chat_id, event_id, tbl, op, key_json, old_json) "
                f"SELECT {row_of}.{chat}, event_id, '{table}', '{op}', "
                f"{values(key_of, key)}, {old} FROM undo_state; END"
            )


def drop_triggers(raw: Connection) -> None:
    if is_postgres(raw):
        for table in CHAT_SCOPED_TABLES:
            raw.execute(f"DROP TRIGGER IF EXISTS {TRIGGER_PREFIX}{table} ON {table}")
        return
    names = raw.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE ?",
        (TRIGGER_PREFIX + "%",),
    ).fetchall()
    for (name,) in names:
        raw.execute(f'DROP TRIGGER "{name}"')


def journal_as(raw: Connection, event_id: int) -> None:
    """Changes from here on are the work of ``event_id``."""
    raw.execute("UPDATE undo_state SET recording = 1, event_id = ?", (event_id,))


@contextmanager
def unjournalled(raw: Connection) -> Iterator[None]:
    """Changes made inside are not journalled (undoing, clearing a chat)."""
    raw.execute("UPDATE undo_state SET recording = 0")
    try:
        yield
    finally:
        raw.execute("UPDATE undo_state SET recording = 1")


def covered_after(raw: Connection, chat_id: str) -> int:
    """The journal holds every change this chat's events after this id made."""
    row = raw.execute("SELECT since FROM undo_since WHERE chat_id = ?", (chat_id,)).fetchone()
    if row is not None:
        return int(row[0])
    return int(raw.execute("SELECT since FROM undo_state").fetchone()[0])


NOTHING_COVERED = 2**62


def forget_all(raw: Connection, *, since: int = NOTHING_COVERED) -> None:
    """Empty the journal: it covers only events after ``since`` (a rebuild starts with none
    covered, so a rewind inside it replays its chat whole, and ends at the log's last event)."""
    raw.execute("DELETE FROM undo_journal")
    raw.execute("DELETE FROM undo_since")
    raw.execute("UPDATE undo_state SET recording = 0, since = ?", (since,))


def restart_chat(raw: Connection, chat_id: str) -> None:
    """Empty the chat's rows and journal: a whole replay follows and journals everything."""
    memo.forget(raw)
    with unjournalled(raw):
        for table in CHAT_SCOPED_TABLES:
            raw.execute(f"DELETE FROM {table} WHERE {_chat_column(table)} = ?", (chat_id,))
    raw.execute("DELETE FROM undo_journal WHERE chat_id = ?", (chat_id,))
    # covered from the start from now on, unless journalling is off (inside a full rebuild)
    raw.execute(
        "INSERT INTO undo_since (chat_id, since) SELECT ?, 0 FROM undo_state WHERE since < ? "
        "ON CONFLICT (chat_id) DO UPDATE SET since = excluded.since",
        (chat_id, NOTHING_COVERED),
    )


def undo_after(raw: Connection, chat_id: str, point: int) -> int:
    """Undo, newest first, what the chat's events after ``point`` changed; returns how many
    changes were undone. The caller made sure the journal covers them (``covered_after``)."""
    memo.forget(raw)
    shapes: dict[str, tuple[list[str], list[str]]] = {}
    rows = raw.execute(
        "SELECT tbl, op, key_json, old_json FROM undo_journal "
        "WHERE chat_id = ? AND event_id > ? ORDER BY seq DESC",
        (chat_id, point),
    ).fetchall()
    with unjournalled(raw):
        for table, op, key_json, old_json in rows:
            if table not in shapes:
                shapes[table] = _columns(raw, table)
            columns, key = shapes[table]
            where = " AND ".join(f"{k} = ?" for k in key)
            key_values = json.loads(key_json)
            if op == "i":
                raw.execute(f"DELETE FROM {table} WHERE {where}", key_values)
            elif op == "u":
                sets = ", ".join(f"{c} = ?" for c in columns)
                raw.execute(
                    f"UPDATE {table} SET {sets} WHERE {where}",
                    [*_old_values(old_json, columns), *key_values],
                )
            else:
                marks = ", ".join("?" * len(columns))
                raw.execute(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                    _old_values(old_json, columns),
                )
    raw.execute("DELETE FROM undo_journal WHERE chat_id = ? AND event_id > ?", (chat_id, point))
    return len(rows)


def prune_due(first_id: int, last_id: int) -> bool:
    """True when the events ``first_id``..``last_id`` just written pass a pruning mark."""
    return last_id // PRUNE_EVERY > (first_id - 1) // PRUNE_EVERY


def prune(raw: Connection, chat_id: str, *, keep_beats: int | None = None) -> int:
    """Forget what the chat's events before its last ``keep_beats`` beats changed; returns
    how many journal rows went. Rewinds behind that point replay the chat whole."""
    keep = JOURNAL_BEATS if keep_beats is None else keep_beats
    row = raw.execute(
        "SELECT id FROM turns WHERE chat_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?",
        (chat_id, keep),
    ).fetchone()
    if row is None:
        return 0  # a chat shorter than that keeps all of its journal
    cut = int(row[0])
    if cut <= covered_after(raw, chat_id):
        return 0  # covered from later already (after a rebuild, or pruned past it)
    deleted = len(
        raw.execute(
            "DELETE FROM undo_journal WHERE chat_id = ? AND event_id <= ? RETURNING 1",
            (chat_id, cut),
        ).fetchall()
    )
    raw.execute(
        "INSERT INTO undo_since (chat_id, since) VALUES (?, ?) "
        "ON CONFLICT (chat_id) DO UPDATE SET since = excluded.since",
        (chat_id, cut),
    )
    return int(deleted)


def _old_values(old_json: str, columns: list[str]) -> list[object]:
    """The old row's values in column order (SQLite keeps an array; PostgreSQL an object)."""
    old = json.loads(old_json)
    return [old[c] for c in columns] if isinstance(old, dict) else list(old)
