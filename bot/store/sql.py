"""The connection the projection handlers write through, whichever database holds the story.

Handlers are plain sync functions of ``(connection, event)``. On SQLite the connection is a
``sqlite3.Connection`` itself (no wrapper: a rebuild runs millions of statements); on
PostgreSQL it is ``bot.store.pg.adapter.PgConnection``, which runs each statement on the
store's worker thread. Both take ``?`` placeholders and give rows addressable by name and by
index (``sqlite3.Row``, ``asyncpg.Record``). SQL the two understand alike is written once
(``ON CONFLICT … DO NOTHING / DO UPDATE``, ``RETURNING``, ``COALESCE``); the few places that
differ ask ``is_postgres``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

Row = Any
"""A row: ``row["name"]`` and ``row[0]`` both work (``sqlite3.Row``, ``asyncpg.Record``)."""


class Rows(Protocol):
    """What a statement gives back: its rows, read once."""

    def fetchone(self) -> Row: ...

    def fetchall(self) -> list[Row]: ...

    def __iter__(self) -> Iterator[Row]: ...


class Connection(Protocol):
    """The part of ``sqlite3.Connection`` that handlers and store reads use."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Rows: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> object: ...


class ConstraintViolation(Exception):
    """A statement broke a constraint on PostgreSQL (``sqlite3.IntegrityError`` on SQLite)."""


INTEGRITY_ERRORS: tuple[type[Exception], ...] = (sqlite3.IntegrityError, ConstraintViolation)
"""What a write that clashes with rows already there raises, on either database."""


class SqliteStandIn:
    """Base of what stands in for a ``sqlite3.Connection`` in handlers (``bulk.Bulk``)."""


def is_postgres(raw: Connection) -> bool:
    """True on PostgreSQL: the undo journal, full-text recall and DDL differ there."""
    return not isinstance(raw, (sqlite3.Connection, SqliteStandIn))
