"""A full rebuild's writes on SQLite, queued per table and sent in runs by ``executemany``.

A rebuild runs a few statements per event, and on SQLite each ``execute`` costs more in the
call itself than in the row it writes. Inside a rebuild the handlers write through a
``Bulk`` instead of the connection: a statement that writes one table and reads nothing
(an ``INSERT … VALUES``, an upsert, an ``UPDATE`` or ``DELETE`` by values) is queued on its
table, in order; anything else (a read, a statement with a sub-select, DDL) first sends every
queue, then runs. Tables are independent while nothing fires on them (the rebuild dropped the
journal's and the full-text triggers; a table that still has a trigger is never queued), and
each table's statements run in the order they were made, so the rows are exactly those the
statements one by one would give, and every read sees every write before it.
"""

from __future__ import annotations

import gc
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from bot.store.sql import Connection, Row, SqliteStandIn

FLUSH_AT = 20_000
"""Statements queued before they are sent anyway (bounded memory on any log)."""

_WRITE = re.compile(r"\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(\w+)\s", re.IGNORECASE)
_READS = re.compile(r"\b(?:SELECT|RETURNING|FROM|JOIN)\b", re.IGNORECASE)
"""A write naming any of these may read another table (or give rows back): it runs at once
(a ``DELETE FROM`` names ``FROM`` once in its head, which does not count)."""


class _NoRows:
    """What a queued write gives back: no rows, as the write itself would."""

    def fetchone(self) -> Row:
        return None

    def fetchall(self) -> list[Row]:
        return []

    def __iter__(self) -> Iterator[Row]:
        return iter(())


_NO_ROWS = _NoRows()


class Bulk(SqliteStandIn):
    """The connection a rebuild's handlers write through (``execute``, ``executemany``)."""

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw
        self._tables: dict[str, str | None] = {}
        """sql -> the one table it writes, or None when it must run at once."""
        self._triggered = {
            name
            for (name,) in raw.execute(
                "SELECT DISTINCT tbl_name FROM sqlite_master WHERE type = 'trigger'"
            )
        }
        """Tables something fires on: their writes are never queued."""
        self._runs: dict[str, list[tuple[str, list[Sequence[Any]]]]] = {}
        """table -> its queued statements, in order, as runs of one SQL and their rows."""
        self._open: dict[str, list[Sequence[Any]]] = {}
        """sql -> the rows of its table's last run, while that run is of this sql."""
        self._queued = 0

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any:
        rows = self._open.get(sql)
        if rows is None and (rows := self._queue_of(sql)) is None:
            return self.raw.execute(sql, parameters)
        rows.append(parameters)
        self._queued += 1  # ``_added``, inlined: a rebuild queues millions
        if self._queued >= FLUSH_AT:
            self.flush()
        return _NO_ROWS

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> object:
        rows = self._open.get(sql)
        if rows is None and (rows := self._queue_of(sql)) is None:
            return self.raw.executemany(sql, parameters)
        before = len(rows)
        rows.extend(parameters)
        self._added(len(rows) - before)
        return _NO_ROWS

    def _queue_of(self, sql: str) -> list[Sequence[Any]] | None:
        """A new run for ``sql``; None (the queues sent) when it must run now."""
        rows = self._new_run(sql)
        if rows is None:
            self.flush()
        return rows

    def _added(self, count: int) -> None:
        self._queued += count
        if self._queued >= FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        """Send every queued statement: each table's in the order they came."""
        for runs in self._runs.values():
            for sql, rows in runs:
                self.raw.executemany(sql, rows)
        self._runs.clear()
        self._open.clear()
        self._queued = 0

    def _new_run(self, sql: str) -> list[Sequence[Any]] | None:
        """A new run of ``sql`` after its table's last one, or None if it must run at once."""
        table = self._table(sql)
        if table is None:
            return None
        runs = self._runs.setdefault(table, [])
        if runs:
            del self._open[runs[-1][0]]  # no longer the last of its table
        rows: list[Sequence[Any]] = []
        runs.append((sql, rows))
        self._open[sql] = rows
        return rows

    def _table(self, sql: str) -> str | None:
        try:
            return self._tables[sql]
        except KeyError:
            pass
        match = _WRITE.match(sql)
        table = None
        reads = len(_READS.findall(sql)) - (1 if sql.lstrip()[:6].upper() == "DELETE" else 0)
        if match and not reads and match[1] not in self._triggered:
            table = match[1]
        self._tables[sql] = table
        return table


DEFERRED_INDEXES = (
    "chats_channel",
    "scenes_chat",
    "scenes_thread",
    "edge_changes_pair",
    "edge_facts_recent",
    "memories_owner",
    "memories_scene",
    "turns_scene",
)
"""Indexes no handler reads through: a rebuild makes them once from the finished tables (a
sort each) instead of row by row. The ones handlers do read through stay (a beat's witnesses,
a turn by its start or by the line it answers, a chat's turns, the edits of a chat)."""


@contextmanager
def bulk_writes(raw: Connection) -> Iterator[Connection]:
    """What a rebuild writes through: on SQLite a ``Bulk``, with ``DEFERRED_INDEXES`` dropped
    and the cyclic garbage collector paused (a replay makes millions of objects, none in a
    cycle, and each collection walked the batch memo again); sent, and the indexes made again,
    on leaving. Elsewhere (PostgreSQL) the connection itself."""
    if not isinstance(raw, sqlite3.Connection):
        yield raw
        return
    marks = ", ".join("?" * len(DEFERRED_INDEXES))
    deferred = raw.execute(
        f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name IN ({marks})",
        DEFERRED_INDEXES,
    ).fetchall()
    for name, _ in deferred:
        raw.execute(f'DROP INDEX "{name}"')
    collecting = gc.isenabled()
    gc.disable()
    try:
        writer = Bulk(raw)
        yield writer
        writer.flush()
    finally:
        if collecting:
            gc.enable()
    for _, sql in deferred:
        raw.execute(sql)
