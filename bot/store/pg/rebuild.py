"""A full rebuild on PostgreSQL: the log folded in a scratch SQLite file, the projections
copied back by COPY.

Folding the log on PostgreSQL itself costs a round trip to the server for every statement of
every handler (about 1,100 events a second on a local server: a quarter of an hour for a
million events). The handlers and the tables are the same on both stores (a test holds the
columns equal), so the fold runs where a statement is a function call (``rebuild_all`` on a
scratch file) and only its result travels, table by table, in one COPY stream each. It all
happens inside the caller's transaction: no one sees the store half rebuilt, and a failure
leaves it as it was.
"""

from __future__ import annotations

import logging
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bot.store.db import scratch_store
from bot.store.errors import StoreError
from bot.store.pg.adapter import PgConnection
from bot.store.projector import log_rows, rebuild_all, replacing_projections
from bot.store.schema import PROJECTION_TABLES

log = logging.getLogger(__name__)

COPY_CHUNK = 20_000
"""Rows of a table read from the scratch file and sent in one COPY call (bounded memory)."""


def rebuild_by_copy(raw: PgConnection) -> int:
    """Clear every projection of ``raw``'s store and fill it again from its log, as
    ``rebuild_all`` would on it; returns the events read.

    The scratch file lives in the system's temporary directory (``TMPDIR``) and is removed
    after; if it cannot be made or written there (a full disk), the store is left as it was.
    (Only the scratch directory's making and SQLite's own errors are the scratch file's: an
    ``OSError`` of the server's socket is a lost connection, which the store retries.)"""
    try:
        scratch = tempfile.TemporaryDirectory(
            prefix="storybot-rebuild-", ignore_cleanup_errors=True
        )
    except OSError as exc:
        raise _scratch_failed(exc) from exc
    with scratch as scratch_dir:
        try:
            return _rebuild_in(raw, Path(scratch_dir))
        except sqlite3.Error as exc:
            raise _scratch_failed(exc) from exc


def _scratch_failed(exc: BaseException) -> StoreError:
    return StoreError(
        f"the rebuild could not use its scratch file in {tempfile.gettempdir()} ({exc}); "
        "nothing was changed. Free space there, or point TMPDIR at a disk with room "
        "(about as much as the story takes in a SQLite file), and try again"
    )


def _rebuild_in(raw: PgConnection, scratch_dir: Path) -> int:
    lite = scratch_store(scratch_dir / "fold.db")
    try:
        started = time.perf_counter()
        count = _fold_in(lite, raw)
        folded = time.perf_counter()
        with replacing_projections(raw):
            for table in PROJECTION_TABLES:
                raw.execute(f"DELETE FROM {table}")
            plain_indexes = _drop_plain_indexes(raw)
            for table in PROJECTION_TABLES:
                _copy_table(lite, raw, table)
            copied = time.perf_counter()
            for definition in plain_indexes:
                raw.execute(definition)
    finally:
        lite.close()
    log.info(
        "rebuild of %d events: folded in %.1f s, copied in %.1f s, indexed in %.1f s",
        count,
        folded - started,
        copied - folded,
        time.perf_counter() - copied,
    )
    return count


def _fold_in(lite: sqlite3.Connection, raw: PgConnection) -> int:
    """Copy ``raw``'s log into the scratch store and rebuild its projections there."""
    lite.execute("BEGIN")
    lite.executemany(
        "INSERT INTO event_log (id, kind, payload_json, chat_id, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (
            (row["id"], row["kind"], row["payload_json"], row["chat_id"], row["created_at"])
            for row in log_rows(raw)
        ),
    )
    count = rebuild_all(lite)
    lite.execute("COMMIT")
    return count


def _drop_plain_indexes(raw: PgConnection) -> list[str]:
    """Drop the projections' indexes that back no constraint; returns their definitions, to
    make each again after the copy in one sort instead of row by row."""
    found = raw.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i "
        "WHERE i.schemaname = current_schema() AND i.tablename = ANY(?::text[]) "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = "
        "(quote_ident(i.schemaname) || '.' || quote_ident(i.indexname))::regclass)",
        (list(PROJECTION_TABLES),),
    ).fetchall()
    for row in found:
        raw.execute(f'DROP INDEX "{row[0]}"')
    return [str(row[1]) for row in found]


def _copy_table(lite: sqlite3.Connection, raw: PgConnection, table: str) -> None:
    columns = [str(row[1]) for row in lite.execute(f"PRAGMA table_info({table})")]
    rows = lite.cursor()
    rows.row_factory = None  # plain tuples, as COPY takes them
    rows.execute(f"SELECT {', '.join(columns)} FROM {table}")
    for chunk in _chunks(rows):
        raw.copy_rows(table, columns, chunk)


def _chunks(rows: sqlite3.Cursor) -> Iterator[list[tuple[object, ...]]]:
    while chunk := rows.fetchmany(COPY_CHUNK):
        yield chunk
