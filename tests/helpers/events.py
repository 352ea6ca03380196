"""Assertions on the story's log through the store's public reads: typed events, not rows.

``await then_events(db, UserTurn)`` is every ``UserTurn`` payload written, in log order;
``chat_id=`` keeps one chat's, ``after=`` only those after an event id.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from bot.store import (
    Database,
    Payload,
    StoredEvent,
    events_after,
    events_by_kind,
    open_db,
)

P = TypeVar("P", bound=Payload)

_PAGE = 1000


async def stored_events(
    db: Database, *models: type[Payload], chat_id: str | None = None, after: int = 0
) -> list[StoredEvent]:
    """The stored events of ``models`` (every kind if none is given), in log order."""
    if not models:
        return [e for e in await whole_log(db, after=after) if chat_id in (None, e.chat_id)]
    found = [
        event
        for model in models
        for event in await events_by_kind(db, model.kind, chat_id=chat_id)
        if event.id > after
    ]
    return sorted(found, key=lambda event: event.id)


async def then_events(
    db: Database, model: type[P], *more: type[P], chat_id: str | None = None, after: int = 0
) -> list[P]:
    """The payloads of the events of ``model`` (and ``more``), in log order."""
    events = await stored_events(db, model, *more, chat_id=chat_id, after=after)
    return [event.payload for event in events]  # type: ignore[misc]


async def whole_log(db: Database, *, after: int = 0) -> list[StoredEvent]:
    """Every event after ``after``, in order, read page by page."""
    events: list[StoredEvent] = []
    while page := await events_after(db, after, limit=_PAGE):
        events += page
        after = page[-1].id
    return events


async def log_in_file(path: Path) -> list[StoredEvent]:
    """The whole log of a store another process wrote (or still writes), read beside it."""
    async with open_db(path, read_only=True) as db:
        return await whole_log(db)


async def count_events(db: Database) -> int:
    """How long the log is: a refused command must leave it as it was."""
    return len(await whole_log(db))


async def last_event_id(db: Database) -> int:
    log = await whole_log(db)
    return log[-1].id if log else 0
