"""The append-only event log: validate, append, apply, read.

Appending validates the payload against its kind's model in the caller's task, then writes in
one transaction; a bad payload or an unknown kind raises ``EventError`` and writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from bot.store.batch import Batch, Later
from bot.store.database import Database
from bot.store.events import PAYLOAD_MODELS, ManualEdit, Payload
from bot.store.journal import prune, prune_due
from bot.store.memo import memo
from bot.store.projector import apply_journalled
from bot.store.record import StoredEvent, parse_row
from bot.store.sql import INTEGRITY_ERRORS, Connection
from bot.validation import all_problems

RawEvent = tuple[str, Mapping[str, Any]]
"""An event as read from a file or written by hand (a kind and its fields): checked on append."""
Appendable = Payload | Later[Any] | RawEvent
E = TypeVar("E", bound=Payload)
T = TypeVar("T")


class EventError(ValueError):
    """An event the log refuses: its kind is unknown or its payload does not fit its model."""


def validate(kind: str, payload: Payload | Mapping[str, Any]) -> Payload:
    """The event of this kind these fields make; EventError says what does not fit."""
    model = PAYLOAD_MODELS.get(kind)
    if model is None:
        known = ", ".join(sorted(PAYLOAD_MODELS))
        raise EventError(f"unknown event kind {kind!r}; known kinds: {known}")
    if isinstance(payload, model):
        return payload
    return checked(model, payload.model_dump() if isinstance(payload, Payload) else payload)


def checked(model: type[E], fields: Mapping[str, Any]) -> E:
    """The event these fields make, for fields from outside (a player, a file); EventError
    says, in the log's words, what does not fit."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        problems = all_problems(exc, root="(payload)")
        raise EventError(f"invalid {model.kind} payload: {problems}") from None


def payload_json(kind: str, payload: Payload) -> str:
    """The payload as stored; text that is not valid Unicode (a lone surrogate) is refused."""
    try:
        return payload.model_dump_json()
    except PydanticSerializationError:
        raise EventError(
            f"invalid {kind} payload: some text holds a broken character (a lone surrogate) "
            "that cannot be saved"
        ) from None


def _chat_id_of(raw: Connection, kind: str, payload: Payload) -> str | None:
    if kind == "chat_created":
        return str(payload.id)  # type: ignore[attr-defined]
    chat_id = getattr(payload, "chat_id", None)
    if chat_id:
        return str(chat_id)
    # Rows take their event's id, so the event that created the scene (or the edited memory or
    # turn) names the chat. Asking the log rather than the projections also works for events
    # appended without applying, and for rows a rewind removed. Without a chat_id a rewind of
    # the chat (which replays only that chat's events) would silently drop the event.
    ref = (
        payload.target_id if isinstance(payload, ManualEdit) else getattr(payload, "scene_id", None)
    )
    if ref is None:
        return None
    row = raw.execute("SELECT chat_id FROM event_log WHERE id = ?", (ref,)).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def _insert(
    raw: Connection, kind: str, payload: Payload, *, apply: bool, after: int | None = None
) -> int:
    """Append one event (and apply it); returns its id.

    Its id is the next after the log's last, given inside the writer's transaction (which
    holds the store's one write lock), so ids follow commit order on either database with no
    gaps. ``after`` is the id of the event this transaction appended just before: a batch asks
    the log for its last id once, at its first event, and numbers the rest from it (an
    ``INSERT … SELECT MAX(id)`` costs SQLite two or three times a plain insert).
    """
    created_at = datetime.now(UTC).isoformat(timespec="microseconds")
    chat_id = _chat_id_of(raw, kind, payload)
    values = (kind, payload_json(kind, payload), chat_id, created_at)
    if after is None:
        event_id = int(
            raw.execute(
                "INSERT INTO event_log (id, kind, payload_json, chat_id, created_at) "
                "SELECT COALESCE(MAX(id), 0) + 1, ?, ?, ?, ? FROM event_log RETURNING id",
                values,
            ).fetchone()[0]
        )
    else:
        event_id = after + 1
        raw.execute(
            "INSERT INTO event_log (kind, payload_json, chat_id, created_at, id) "
            "VALUES (?, ?, ?, ?, ?)",
            (*values, event_id),
        )
    if apply:
        try:
            apply_journalled(raw, StoredEvent(event_id, kind, payload, chat_id, created_at))
        except INTEGRITY_ERRORS as exc:
            # e.g. a second chat_created with the same id: refused like any bad event
            raise EventError(f"{kind} conflicts with the story as it stands ({exc})") from None
    return event_id


async def append(db: Database, event: Payload) -> int:
    """Append one event and update every projection, in one transaction; returns its id."""
    return await db.write(_appending(event))


async def append_then_read(
    db: Database, event: Payload, read: Callable[[Connection], T]
) -> tuple[int, T]:
    """``append(event)``, then ``read`` once it committed; one trip to the store's thread
    where a trip costs much (``Database.write_then_read``). Returns the id and what was read."""
    return await db.write_then_read(_appending(event), read)


def _appending(event: Payload) -> Callable[[Connection], int]:
    """The write ``append`` makes."""

    def work(raw: Connection) -> int:
        with memo(raw):
            event_id = _insert(raw, event.kind, event, apply=True)
        _prune_journal(raw, [event_id])
        return event_id

    return work


async def append_events(
    db: Database, events: Batch | Sequence[Appendable], *, apply: bool = True
) -> list[int]:
    """Append several events atomically (one turn = one transaction); returns their ids.

    An event may be a ``Later`` (see ``Batch``), built from the ids given so far in this batch,
    so a memory can point at the beat written just before it. If any is refused, nothing is
    written.
    """
    ready = [_checked(event) for event in events]

    def work(raw: Connection) -> list[int]:
        ids: list[int] = []
        with memo(raw):
            for event in ready:
                built = _later(event, ids) if isinstance(event, Later) else event
                last = ids[-1] if ids else None
                ids.append(_insert(raw, built.kind, built, apply=apply, after=last))
        if apply:
            _prune_journal(raw, ids)
        return ids

    return await db.write(work)


def _checked(event: Appendable) -> Payload | Later[Any]:
    if isinstance(event, tuple):
        kind, fields = event
        return validate(kind, fields)
    return event


def _prune_journal(raw: Connection, ids: list[int]) -> None:
    """Keep the undo journal bounded: now and then, the chats just written forget their
    oldest changes (``journal.prune``)."""
    if not ids or not prune_due(ids[0], ids[-1]):
        return
    chats = raw.execute(  # a batch's ids follow one another
        "SELECT DISTINCT chat_id FROM event_log WHERE id BETWEEN ? AND ? AND chat_id IS NOT NULL",
        (ids[0], ids[-1]),
    ).fetchall()
    for (chat_id,) in chats:
        prune(raw, chat_id)


def _later(event: Later[Any], ids: list[int]) -> Payload:
    """Build an event whose fields point at earlier events of its batch."""
    try:
        fields = event.build(ids)
    except IndexError:
        raise EventError(
            f"{event.model.kind} (event {len(ids) + 1} of the batch) points past the batch"
        ) from None
    model: type[Payload] = event.model
    return checked(model, fields)


async def append_event(db: Database, *, kind: str, payload: Mapping[str, Any] | Payload) -> int:
    """Append one event given by kind and fields, without applying projections (``project``
    picks it up later): for imports and tests of the log itself."""
    checked = validate(kind, payload)
    return await db.write(lambda raw: _insert(raw, kind, checked, apply=False))


async def append_and_apply(db: Database, *, kind: str, payload: Mapping[str, Any] | Payload) -> int:
    """Append one event given by kind and fields, and apply it: for input that is not yet an
    event (a file, a test); the engine appends typed events with ``append``."""
    return await append(db, validate(kind, payload))


async def events_of_chat(
    db: Database, chat_id: str, *, after_id: int = 0
) -> list[StoredEvent[Payload]]:
    rows = await db.fetchall(
        "SELECT * FROM event_log WHERE chat_id = ? AND id > ? ORDER BY id", (chat_id, after_id)
    )
    return [parse_row(row) for row in rows]


async def events_after(
    db: Database, after_id: int, *, limit: int = 1000
) -> list[StoredEvent[Payload]]:
    rows = await db.fetchall(
        "SELECT * FROM event_log WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
    )
    return [parse_row(row) for row in rows]


async def events_by_kind(
    db: Database, kind: str, *, chat_id: str | None = None
) -> list[StoredEvent[Payload]]:
    if chat_id is None:
        rows = await db.fetchall("SELECT * FROM event_log WHERE kind = ? ORDER BY id", (kind,))
    else:
        rows = await db.fetchall(
            "SELECT * FROM event_log WHERE kind = ? AND chat_id = ? ORDER BY id", (kind, chat_id)
        )
    return [parse_row(row) for row in rows]


async def events_of_types(
    db: Database, types: Sequence[type[Payload]]
) -> list[StoredEvent[Payload]]:
    """Every event of these types, of every chat, in log order."""
    kinds = [model.kind for model in types]
    rows = await db.fetchall(
        f"SELECT * FROM event_log WHERE kind IN ({','.join('?' * len(kinds))}) ORDER BY id",
        kinds,
    )
    return [parse_row(row) for row in rows]


def dump_jsonl(events: Sequence[StoredEvent[Payload]]) -> str:
    return "".join(json.dumps(event.as_json(), ensure_ascii=False) + "\n" for event in events)
