"""The projector: each event kind maps to handlers that fold it into projection tables.

Handlers are plain functions of (connection, event) run inside the writer's transaction, so
incremental application and a rebuild from the log run exactly the same code.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.store.record import StoredEvent, parse_row
from bot.store.schema import CHAT_SCOPED_TABLES, PROJECTION_TABLES

if TYPE_CHECKING:
    from bot.store.db import Database

Handler = Callable[[sqlite3.Connection, StoredEvent], None]

_HANDLERS: dict[str, list[Handler]] = {}


def handles(*kinds: str) -> Callable[[Handler], Handler]:
    """Register a projection handler for one or more event kinds."""

    def register(handler: Handler) -> Handler:
        for kind in kinds:
            _HANDLERS.setdefault(kind, []).append(handler)
        return handler

    return register


def apply_event(raw: sqlite3.Connection, event: StoredEvent) -> None:
    for handler in _HANDLERS.get(event.kind, ()):
        handler(raw, event)


def rebuild_all(raw: sqlite3.Connection) -> int:
    """Clear every projection and fold the whole log into it again; returns events applied.

    The full-text index of memories is rebuilt once at the end instead of row by row through its
    triggers (which cost two thirds of a rebuild): the triggers are dropped and recreated inside
    the caller's transaction, so no one ever sees the store without them.
    """
    triggers = raw.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'memories'"
    ).fetchall()
    for name, _ in triggers:
        raw.execute(f'DROP TRIGGER "{name}"')
    for table in PROJECTION_TABLES:
        raw.execute(f"DELETE FROM {table}")
    count = 0
    for row in raw.execute("SELECT * FROM event_log ORDER BY id"):
        apply_event(raw, parse_row(row))
        count += 1
    for _, sql in triggers:
        raw.execute(sql)
    raw.execute("INSERT INTO memories_fts (memories_fts) VALUES ('rebuild')")
    return count


def rebuild_chat(raw: sqlite3.Connection, chat_id: str, *, up_to: int) -> None:
    """Fold one chat's events (ids below ``up_to``) again, leaving out every rewound range.

    Rewinds use it: rows take their ids from events, so replaying a chat gives back exactly the
    rows a rebuild of the whole log would.
    """
    ranges = raw.execute(
        "SELECT after_event_id, event_id FROM rewound_ranges WHERE chat_id = ? AND event_id <= ?",
        (chat_id, up_to),
    ).fetchall()
    for table in CHAT_SCOPED_TABLES:
        column = "id" if table == "chats" else "chat_id"
        raw.execute(f"DELETE FROM {table} WHERE {column} = ?", (chat_id,))
    rows = raw.execute(
        "SELECT * FROM event_log WHERE chat_id = ? AND id < ? AND kind != 'beats_rewound' "
        "ORDER BY id",
        (chat_id, up_to),
    ).fetchall()
    for row in rows:
        event_id = row["id"]
        if any(after < event_id < until for after, until in ranges):
            continue
        apply_event(raw, parse_row(row))


async def project(db: Database) -> int:
    """Rebuild every projection table from the log, from scratch, in one transaction."""
    return await db.write(rebuild_all)
