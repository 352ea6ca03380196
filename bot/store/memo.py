"""Rows a batch of handlers wrote and reads back at once, kept in memory for that batch.

A replay (a full rebuild, a rewind's tail) and a turn's batch ask the same few rows again
and again: a beat's witnesses for each memory and fact derived from it, a scene's
participants, an edge's numbers at every update. Asking SQLite each time was a third of a
rebuild. Inside ``memo(raw)`` the handlers that write those rows note them here and the
readers look here first; a miss still asks the database. Only handlers write these tables
inside a batch; anything that changes rows behind them (undoing the journal, clearing a
chat) calls ``forget``. The memo lives for one batch on the writer's thread, never longer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bot.store.sql import Connection

_ACTIVE: dict[int, dict[str, dict[Any, Any]]] = {}
"""id(connection) -> table name -> key -> row, while a batch runs on that connection."""


@contextmanager
def memo(raw: Connection) -> Iterator[None]:
    """Keep rows in memory while the batch inside runs (nested batches share it)."""
    if id(raw) in _ACTIVE:
        yield
        return
    _ACTIVE[id(raw)] = {}
    try:
        yield
    finally:
        del _ACTIVE[id(raw)]


def table(raw: Connection, name: str) -> dict[Any, Any] | None:
    """The memo of ``name``'s rows in this batch, or None outside one."""
    active = _ACTIVE.get(id(raw))
    if active is None:
        return None
    rows = active.get(name)
    if rows is None:
        rows = active[name] = {}
    return rows


def forget(raw: Connection) -> None:
    """Rows changed behind the handlers: the memo may be stale, so drop all of it."""
    active = _ACTIVE.get(id(raw))
    if active is not None:
        for rows in active.values():
            rows.clear()  # in place: a rebuild's fold holds some of these dicts
