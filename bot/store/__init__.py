"""The event store: an append-only log and the projections folded from it (SQLite or
PostgreSQL, chosen by ``[storage]``: ``open_store``)."""

from bot.store import projections as _projections  # registers every projection handler
from bot.store.batch import Batch, Later, Ref
from bot.store.database import Database
from bot.store.db import open_db
from bot.store.errors import (
    DatabaseDamagedError,
    DatabaseGoneError,
    DatabaseLockedError,
    StoreError,
    WriteFailedError,
)
from bot.store.events import PAYLOAD_MODELS, YOU, Payload
from bot.store.log import (
    Appendable,
    EventError,
    RawEvent,
    append,
    append_and_apply,
    append_event,
    append_events,
    append_then_read,
    checked,
    dump_jsonl,
    events_after,
    events_by_kind,
    events_of_chat,
    events_of_types,
    validate,
)
from bot.store.projector import project
from bot.store.record import StoredEvent
from bot.store.stores import open_store

__all__ = [
    "PAYLOAD_MODELS",
    "YOU",
    "Appendable",
    "Batch",
    "Database",
    "DatabaseDamagedError",
    "DatabaseGoneError",
    "DatabaseLockedError",
    "EventError",
    "Later",
    "Payload",
    "RawEvent",
    "Ref",
    "StoreError",
    "StoredEvent",
    "WriteFailedError",
    "append",
    "append_and_apply",
    "append_event",
    "append_events",
    "append_then_read",
    "checked",
    "dump_jsonl",
    "events_after",
    "events_by_kind",
    "events_of_chat",
    "events_of_types",
    "open_db",
    "open_store",
    "project",
    "validate",
]

del _projections
