"""Restore a chat from an exported JSON-lines log, keeping every event's id.

Rows take their ids from events, so keeping the ids is what makes a restored chat identical to
the exported one. A file that does not validate, or whose ids are already taken, is refused
whole: nothing is written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from bot.store.database import Database
from bot.store.log import EventError, payload_json, validate
from bot.store.sql import INTEGRITY_ERRORS, Connection


@dataclass(frozen=True, slots=True)
class Restored:
    events: int
    chat_ids: tuple[str, ...]


def _parse(lines: Iterable[str]) -> list[tuple[int, str, str, str | None, str]]:
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            event_id, kind, created_at = record["id"], record["kind"], record["created_at"]
            chat_id = record.get("chat_id")
            payload = validate(kind, record["payload"])
            stored = payload_json(kind, payload)
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise EventError(f"line {number}: not an exported event ({exc})") from None
        except EventError as exc:
            raise EventError(f"line {number}: {exc}") from None
        if not isinstance(event_id, int) or event_id < 1 or not isinstance(created_at, str):
            raise EventError(f"line {number}: the event id must be a positive integer")
        rows.append((event_id, kind, stored, chat_id, created_at))
    if not rows:
        raise EventError("the file holds no events")
    ids = [row[0] for row in rows]
    if len(set(ids)) != len(ids) or ids != sorted(ids):
        raise EventError("event ids must be unique and in increasing order")
    return rows


async def import_log(db: Database, lines: Iterable[str]) -> Restored:
    """Insert the exported events with their ids, then rebuild every projection."""
    rows = _parse(lines)

    def work(raw: Connection) -> Restored:
        try:
            raw.executemany(
                "INSERT INTO event_log (id, kind, payload_json, chat_id, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )
        except INTEGRITY_ERRORS:
            raise EventError(
                "some of these event ids are already used in this database; "
                "restore into a new database file (--db PATH)"
            ) from None
        try:
            db.rebuild(raw)
        except INTEGRITY_ERRORS as exc:
            raise EventError(
                f"this log clashes with what the database already holds ({exc}); "
                "restore into a new database file (--db PATH)"
            ) from None
        chats = tuple(sorted({row[3] for row in rows if row[3]}))
        return Restored(len(rows), chats)

    return await db.write(work)
