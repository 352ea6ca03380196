"""The projector: each event kind maps to handlers that fold it into projection tables.

Handlers are plain functions of (connection, event) run inside the writer's transaction, so
incremental application and a rebuild from the log run exactly the same code.
"""

from __future__ import annotations

import bisect
import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic_core import from_json

from bot.store.bulk import Bulk, bulk_writes
from bot.store.database import Database
from bot.store.events import BeatsRewound, DerivationsReplaced, Payload
from bot.store.fold import FAST_KINDS, Fold
from bot.store.journal import (
    covered_after,
    drop_triggers,
    forget_all,
    install_triggers,
    journal_as,
    restart_chat,
    undo_after,
)
from bot.store.memo import memo
from bot.store.page_cache import rebuild_cache
from bot.store.provenance import Source, source_of
from bot.store.recall import drop_recall_index
from bot.store.record import PARSERS, StoredEvent, parse_row
from bot.store.schema import PROJECTION_TABLES
from bot.store.sql import Connection, Row

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Payload)
Handler = Callable[[Connection, StoredEvent[E]], None]

_HANDLERS: dict[type[Payload], list[Handler[Any]]] = {}


def handles(event_type: type[E]) -> Callable[[Handler[E]], Handler[E]]:
    """Register a projection handler for one type of event; it receives that type, typed."""

    def register(handler: Handler[E]) -> Handler[E]:
        _HANDLERS.setdefault(event_type, []).append(handler)
        return handler

    return register


def apply_event(raw: Connection, event: StoredEvent[Payload]) -> None:
    for handler in _HANDLERS.get(type(event.payload), ()):
        handler(raw, event)


def apply_journalled(raw: Connection, event: StoredEvent[Payload]) -> None:
    """Apply one event, journalling what it changes (so a rewind can undo just that)."""
    journal_as(raw, event.id)
    apply_event(raw, event)


_WHOLE_LOG: set[int] = set()
"""``id`` of each connection a full rebuild is writing through, while it runs."""

REPLAYED_NEVER = frozenset({"beats_rewound", "derivations_replaced"})
"""Kinds a chat's replay leaves out: their handlers replay the chat, and their rows stay."""

_LAST = 2**63
"""Above every event id (``Exclusions.rewound`` bisects on it)."""


def rebuild_all(raw: Connection) -> int:
    """Clear every projection and fold the whole log into it again; returns the events read.

    The full-text indexes (of memories, of facts) are rebuilt once at the end instead of row by
    row (on SQLite their triggers cost two thirds of a rebuild; on PostgreSQL the GIN indexes
    are dropped and made again), inside the caller's transaction, so no one ever sees the store
    without them. The undo journal's triggers are dropped too: after a rebuild the journal
    covers only later events. On SQLite the handlers write through ``bulk.Bulk`` (their writes
    sent table by table in runs, indexes no handler reads made once at the end). What the
    log's rewinds and edits leave out is never applied (see ``rebuild_chat``).
    """
    with rebuild_cache(raw):
        return _rebuild_all(raw)


def _rebuild_all(raw: Connection) -> int:
    with replacing_projections(raw):
        left_out = Exclusions.of_log(raw)
        with bulk_writes(raw) as writer:
            try:
                count = _fold(raw, writer, left_out, fast=isinstance(writer, Bulk))
            except _Entangled as entangled:
                log.info("%s: the log is folded again, each rewind replaying its chat", entangled)
                count = _fold(raw, writer, {}, fast=False)
    return count


@contextmanager
def replacing_projections(raw: Connection) -> Iterator[None]:
    """What every full rebuild does around filling the projections again (``rebuild_all``
    here, a copy from a scratch file on PostgreSQL): the journal's triggers and the full-text
    indexes off while it runs; after, the indexes made in one go, the journal covering only
    later events, its triggers back. A rebuild that fails leaves all that to the rollback."""
    drop_triggers(raw)
    forget_all(raw)
    restore_recall = drop_recall_index(raw)
    yield
    restore_recall()
    last = raw.execute("SELECT COALESCE(MAX(id), 0) FROM event_log").fetchone()[0]
    forget_all(raw, since=int(last))
    install_triggers(raw)


class _Entangled(Exception):
    """An event outside a chat read what that chat's rewinds left out (a first-shape activity
    of no chat, derived from a beat later rewound): when it was applied the beat was there."""


def _fold(
    raw: Connection, writer: Connection, left_out: dict[str, Exclusions], *, fast: bool
) -> int:
    """Empty the projections and apply the whole log through ``writer``; returns events read.

    With ``left_out`` (``Exclusions.of_log``) the events it names are never applied, and the
    log's rewinds and edits replay nothing: for each chat that is what its last replay gives.
    It is not, for an event of another chat (or of none) reading a row of a left-out event,
    which it saw when applied (``_Entangled``); folding with none left out replays as ever.
    With ``fast`` (SQLite, not folding again) the kinds ``fold.FAST_KINDS`` names go to their
    folders instead of their handlers.
    """
    for table in PROJECTION_TABLES:
        writer.execute(f"DELETE FROM {table}")  # after anything queued by a fold cut short
    count = 0
    handlers, parsers = _HANDLERS, PARSERS
    fast_kinds = FAST_KINDS if fast else {}
    whole = bool(left_out)
    if whole:
        _WHOLE_LOG.add(id(writer))
    try:
        with memo(writer):
            fold = Fold(writer)
            for event_id, kind, payload_json, chat_id, created_at in _whole_log(raw):
                count += 1
                folding = fast_kinds.get(kind)
                if folding is not None:
                    payload = from_json(payload_json)
                    if len(payload) != folding.fields:  # written before some of its fields
                        payload = {**folding.defaults, **payload}
                    source = folding.source(payload) if whole else None
                    if not whole or not _left_out(event_id, kind, chat_id, source, left_out):
                        folding.folder(fold, event_id, payload)
                    continue
                event = StoredEvent(
                    event_id, kind, parsers[kind](payload_json), chat_id, created_at
                )
                if whole and _left_out(event_id, kind, chat_id, source_of(event.payload), left_out):
                    continue
                for handler in handlers.get(type(event.payload), ()):  # apply_event, inlined
                    handler(writer, event)
            fold.finish()
    finally:
        _WHOLE_LOG.discard(id(writer))
    return count


def _left_out(
    event_id: int,
    kind: str,
    chat_id: str | None,
    source: Source | None,
    left_out: dict[str, Exclusions],
) -> bool:
    """True if the event is out of the story (``Exclusions.leaves``); raises ``_Entangled``
    if it is in it but derived from what another chat's rewinds left out."""
    gone = left_out.get(chat_id) if chat_id is not None else None
    if gone is not None and kind not in REPLAYED_NEVER and gone.leaves_at(event_id, source):
        return True
    if gone is None or len(left_out) > 1:  # another chat's may be read
        _check_not_entangled(event_id, chat_id, source, left_out)
    return False


def _check_not_entangled(
    event_id: int, chat_id: str | None, source: Source | None, left_out: dict[str, Exclusions]
) -> None:
    """Raise ``_Entangled`` if an event (of ``chat_id``, derived from ``source``) is derived
    from a beat or scene another chat rewound."""
    if source is None:
        return
    for other, exclusions in left_out.items():
        if other == chat_id:
            continue  # its own chat's: its last replay saw the source gone too
        for at in (source.beat_id, source.scene_id):
            if at is not None and exclusions.rewound(at):
                raise _Entangled(f"event {event_id} is derived from {at}, rewound in {other}")


LOG_PAGE = 2000
"""Events read at a time by a rebuild: PostgreSQL fetches a statement's rows whole."""


def _whole_log(raw: Connection) -> Iterator[tuple[int, str, str | bytes, str | None, str]]:
    """Every event in id order as (id, kind, payload JSON, chat, created at): on SQLite as
    plain tuples (a million ``sqlite3.Row`` lookups are not free), the JSON as its UTF-8 bytes
    (both parsers read them; no string is decoded only to be parsed), on PostgreSQL a page at
    a time (it fetches a statement's rows whole)."""
    if not isinstance(raw, sqlite3.Connection):
        for row in log_rows(raw):
            yield row["id"], row["kind"], row["payload_json"], row["chat_id"], row["created_at"]
        return
    log = raw.cursor()
    log.row_factory = None
    yield from log.execute(
        "SELECT id, kind, CAST(payload_json AS BLOB), chat_id, created_at FROM event_log "
        "ORDER BY id"
    )


def log_rows(raw: Connection) -> Iterator[Row]:
    """Every event of the log in id order, a page at a time (bounded memory on any log)."""
    after = 0
    while True:
        page = raw.execute(
            "SELECT * FROM event_log WHERE id > ? ORDER BY id LIMIT ?", (after, LOG_PAGE)
        ).fetchall()
        yield from page
        if len(page) < LOG_PAGE:
            return
        after = page[-1]["id"]


def rebuild_chat(raw: Connection, chat_id: str, *, up_to: int, since: int) -> int:
    """Bring one chat up to its event ``up_to`` again, the story having changed after ``since``.

    Rewinds and edits use it. What leaves the story: every rewound range, and every derived
    event an edit replaced (``Exclusions``). The journal undoes what the chat's events after
    the settled point changed, then only the events after it are replayed; when the journal
    does not reach back that far (after a full rebuild), the chat is replayed whole. Rows take
    their ids from events, so either way the rows are exactly those a rebuild of the whole log
    gives. Returns the number of events replayed.

    Inside a full rebuild it does nothing: that rebuild leaves out, as it goes, every event
    the whole log's rewinds and edits leave out (``Exclusions.of_log``), which is what the
    last replay of each chat would give; replaying the chat at each rewind made a rebuild cost
    the chat's length times its rewinds (a regenerate every 20 turns: 230 events/s).
    """
    if id(raw) in _WHOLE_LOG:
        return 0
    exclusions = Exclusions.of_chat(raw, chat_id, up_to=up_to)
    point = exclusions.settled(since)
    if point >= covered_after(raw, chat_id):
        undo_after(raw, chat_id, point)
    else:
        point = 0
        restart_chat(raw, chat_id)
    rows = raw.execute(
        "SELECT * FROM event_log WHERE chat_id = ? AND id > ? AND id < ? "
        "AND kind NOT IN ('beats_rewound', 'derivations_replaced') ORDER BY id",  # REPLAYED_NEVER
        (chat_id, point, up_to),
    ).fetchall()
    replayed = 0
    with memo(raw):
        for row in rows:
            if exclusions.rewound(row["id"]):
                continue
            event = parse_row(row)
            if not exclusions.replaced(event):
                apply_journalled(raw, event)
                replayed += 1
    return replayed


@dataclass(frozen=True, slots=True)
class Exclusions:
    """The one place that says which of a chat's events have left the story."""

    ranges: tuple[tuple[int, int], ...]
    """(after_event_id, rewind event id): the events strictly between them were rewound."""
    replaced_at: dict[Source, int] = field(default_factory=dict)
    """A source -> the latest edit that derived it again; what it derived before is gone."""
    edits: list[tuple[int, Source]] = field(default_factory=list)
    """Every edit's (event id, source), rewound ones too (``settled`` needs them)."""
    _spans: tuple[tuple[int, int], ...] = field(init=False, default=(), repr=False)
    """``ranges`` merged and sorted, so ``rewound`` is a bisection, not a walk of them all."""

    @classmethod
    def of_chat(cls, raw: Connection, chat_id: str, *, up_to: int) -> Exclusions:
        ranges = tuple(
            (row[0], row[1])
            for row in raw.execute(
                "SELECT after_event_id, event_id FROM rewound_ranges "
                "WHERE chat_id = ? AND event_id <= ?",
                (chat_id, up_to),
            )
        )
        edits = [
            (event_id, Source(beat_id=beat_id, scene_id=scene_id))
            for event_id, beat_id, scene_id in raw.execute(
                "SELECT event_id, beat_id, scene_id FROM derived_replaced "
                "WHERE chat_id = ? AND event_id <= ? ORDER BY event_id",
                (chat_id, up_to),
            )
        ]
        return cls.of(ranges, edits)

    @classmethod
    def of(cls, ranges: tuple[tuple[int, int], ...], edits: list[tuple[int, Source]]) -> Exclusions:
        """From a chat's rewound ranges and its edits (in id order)."""
        found = cls(ranges)
        for event_id, source in edits:
            found.edits.append((event_id, source))
            if not found.rewound(event_id):  # an edit that was itself rewound replaced nothing
                found.replaced_at[source] = event_id
        return found

    @classmethod
    def of_log(cls, raw: Connection) -> dict[str, Exclusions]:
        """Every chat's exclusions as the whole log leaves them (read from the log itself, so a
        full rebuild knows them before it starts); chats with none are left out."""
        ranges: dict[str, list[tuple[int, int]]] = {}
        edits: dict[str, list[tuple[int, Source]]] = {}
        for row in raw.execute(
            "SELECT * FROM event_log WHERE kind IN ('beats_rewound', 'derivations_replaced') "
            "ORDER BY id"
        ).fetchall():
            event = parse_row(row)
            p = event.payload
            if isinstance(p, BeatsRewound):
                ranges.setdefault(p.chat_id, []).append((p.after_event_id, event.id))
            elif isinstance(p, DerivationsReplaced):
                source = Source(beat_id=p.beat_id, scene_id=p.scene_id)
                edits.setdefault(p.chat_id, []).append((event.id, source))
        return {
            chat: cls.of(tuple(ranges.get(chat, ())), edits.get(chat, []))
            for chat in ranges.keys() | edits.keys()
        }

    def settled(self, since: int) -> int:
        """The latest point at or before ``since`` whose state no later rewind or edit changed.

        The projections as they stood after the chat's events up to a point are right only if
        nothing written after the point reached behind it: a rewind whose range starts before
        it, or an edit (applied or itself rewound since) of a source before it. Such a point is
        where undoing may stop; the events after it are replayed.
        """
        point = since
        moved = True
        while moved:
            moved = False
            reaches = [after for after, until in self.ranges if until > point]
            reaches += [start_of(source) for at, source in self.edits if at > point]
            earliest = min(reaches, default=point)
            if earliest < point:
                point, moved = earliest, True
        return point

    def rewound(self, event_id: int) -> bool:
        spans = self._spans
        at = bisect.bisect_right(spans, (event_id, _LAST)) - 1
        return at >= 0 and event_id <= spans[at][1]

    def leaves_at(self, event_id: int, source: Source | None) -> bool:
        """True if an event (by its id and its source) is out of the story: rewound, or
        derived again by a later edit. A rewind or an edit never is (its rows are the story's
        record of it): the caller asks of neither."""
        return self.rewound(event_id) or self.replaced_from(event_id, source)

    def __post_init__(self) -> None:
        spans: list[tuple[int, int]] = []  # the rewound ids, as disjoint [first, last] spans
        for after, until in sorted(self.ranges):
            first, last = after + 1, until - 1
            if first > last:
                continue
            if spans and first <= spans[-1][1] + 1:
                spans[-1] = (spans[-1][0], max(spans[-1][1], last))
            else:
                spans.append((first, last))
        object.__setattr__(self, "_spans", tuple(spans))

    def replaced(self, event: StoredEvent[Payload]) -> bool:
        return self.replaced_from(event.id, source_of(event.payload))

    def replaced_from(self, event_id: int, source: Source | None) -> bool:
        """True if what ``source`` gave, at ``event_id``, was derived again by a later edit."""
        if source is None or not self.replaced_at:
            return False
        return any(
            event_id < until
            for key in _keys(source)
            if (until := self.replaced_at.get(key)) is not None
        )


def start_of(source: Source) -> int:
    """What an edit of ``source`` replaces was written after the source (a beat, a scene)."""
    return min((i for i in (source.beat_id, source.scene_id) if i is not None), default=0)


def _keys(source: Source) -> tuple[Source, ...]:
    """An item derived from a beat and a scene at once is replaced with either."""
    keys = [source]
    if source.beat_id is not None and source.scene_id is not None:
        keys += [Source(beat_id=source.beat_id), Source(scene_id=source.scene_id)]
    return tuple(keys)


async def project(db: Database) -> int:
    """Rebuild every projection table from the log, from scratch, in one transaction."""
    return await db.write(db.rebuild)
