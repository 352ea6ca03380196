"""Full-text search of memories and facts, on each store's engine: SQLite FTS5, PostgreSQL GIN.

A memory search looks inside one (chat, owner) by a scope token written on every memory
(``projections.story.memory_scope``), newest first, stopping at a limit, so a search costs
what it finds rather than the length of the story. Words are matched whole, case ignored;
SQLite's tokenizer also ignores accents, PostgreSQL's ``simple`` configuration does not.

On SQLite each index is in two tiers (schema migration 9): a small one of the newest rows and
the archive of the rest, every key of the first above every key of the second. A search asks
the recent tier first and the archive only for what is still missing, so the answer is the
same newest-first list one index would give; most searches never reach the archive, and
those that do find it written once a span rather than every turn (fewer segments to seek).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence

from bot.store.schema import RECALL_TIERS
from bot.store.sql import Connection, Row, is_postgres

_TOKEN = re.compile(r"[^\W_]+")


def plain_words(text: str) -> list[str]:
    """``text``'s words, case and accents folded: close to FTS5's default tokenizer, not the
    same (``ß`` is ``ss`` here, a symbol or an unassigned character splits a word here), which
    does not matter while a fact's terms and a line's query are both made by it."""
    folded = text.casefold()
    if not folded.isascii():
        decomposed = unicodedata.normalize("NFKD", folded)
        folded = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _TOKEN.findall(folded)


def scoped_terms(scope: str, text: str) -> str:
    """Each word of ``text`` joined to ``scope`` into one token (a fact's ``terms`` column).

    A search for a word inside one scope then reads that scope's postings of the word alone;
    a scope token ANDed with the word walked both lists, and a word common on other edges but
    not on this one cost a walk of all of them (2.5 ms at 10,000 facts).
    """
    return " ".join(dict.fromkeys(scope + word for word in plain_words(text)))


def any_scoped(scope: str, words: Sequence[str]) -> str:
    """An FTS5 query for any of ``words`` inside ``scope`` (see ``scoped_terms``)."""
    terms = dict.fromkeys(scope + plain for word in words for plain in plain_words(word))
    return " OR ".join(f'"{term}"' for term in terms)


PG_DOCUMENT = "to_tsvector('simple', scope || ' ' || text || ' ' || pov_summary)"
"""What PostgreSQL matches: exactly the indexed expression (pg/schema.py), or no index use."""

PG_INDEX = f"CREATE INDEX memories_recall ON memories USING gin ({PG_DOCUMENT})"

PG_FACTS_DOCUMENT = "to_tsvector('simple', scope || ' ' || fact_key)"
"""A fact as PostgreSQL matches it: the indexed expression of pg/schema.py's migration 2."""

PG_FACTS_INDEX = f"CREATE INDEX edge_facts_match ON edge_facts USING gin ({PG_FACTS_DOCUMENT})"


def _pg_any_scoped(scope: str, words: Sequence[str]) -> str:
    """A ``to_tsquery`` for any of ``words`` inside ``scope`` (PostgreSQL's documents hold the
    scope as a word of their own)."""
    return f"{scope} & ({' | '.join(words)})"


def search(raw: Connection, scope: str, words: Sequence[str], limit: int) -> list[Row]:
    """The newest memories in ``scope`` holding any of ``words``, newest first."""
    if not words or limit <= 0:
        return []
    if is_postgres(raw):
        return raw.execute(
            f"SELECT * FROM memories WHERE {PG_DOCUMENT} @@ to_tsquery('simple', ?) "
            "ORDER BY id DESC LIMIT ?",
            (_pg_any_scoped(scope, words), limit),
        ).fetchall()
    any_word = " OR ".join(f'"{w}"' for w in words)
    return newest_matching(
        raw,
        "SELECT m.* FROM memories m WHERE m.id IN ("
        " SELECT rowid FROM {fts} WHERE {fts} MATCH ? ORDER BY rowid DESC LIMIT ?)"
        " ORDER BY m.id DESC",
        "memories_fts",
        f'scope : "{scope}" AND ({any_word})',
        limit,
    )


def search_facts(raw: Connection, scope: str, words: Sequence[str], limit: int) -> list[Row]:
    """An edge's (``scope``'s) newest facts holding any of ``words`` (whole words), newest
    first, as (event id, fact) rows."""
    if is_postgres(raw):
        return raw.execute(
            f"SELECT event_id, fact FROM edge_facts WHERE {PG_FACTS_DOCUMENT} "
            "@@ to_tsquery('simple', ?) ORDER BY event_id DESC LIMIT ?",
            (_pg_any_scoped(scope, words), limit),
        ).fetchall()
    match = any_scoped(scope, words)
    if not match:  # every word folded to nothing (FTS5 refuses an empty query)
        return []
    return newest_matching(
        raw,
        "SELECT event_id, fact FROM edge_facts WHERE rowid IN (SELECT rowid FROM "
        "{fts} WHERE {fts} MATCH ? ORDER BY rowid DESC LIMIT ?)",
        "edge_facts_fts",
        match,
        limit,
    )


def newest_matching(raw: Connection, sql: str, fts: str, match: str, limit: int) -> list[Row]:
    """``sql`` (a MATCH and a LIMIT in the index ``{fts}``, newest first) over both tiers of
    ``fts``: the recent one, then the archive for what is missing (SQLite only)."""
    found = list(raw.execute(sql.format(fts=f"{fts}_recent"), (match, limit)).fetchall())
    if len(found) < limit:
        found += raw.execute(sql.format(fts=fts), (match, limit - len(found))).fetchall()
    return found


def ids_matching(raw: Connection, word: str) -> list[int]:
    """Every memory holding ``word``, in id order (for tests comparing the index to the rows)."""
    if is_postgres(raw):
        sql = f"SELECT id FROM memories WHERE {PG_DOCUMENT} @@ to_tsquery('simple', ?) ORDER BY id"
        return [int(row[0]) for row in raw.execute(sql, (word,))]
    ids = [
        int(row[0])
        for fts in ("memories_fts", "memories_fts_recent")
        for row in raw.execute(f"SELECT rowid FROM {fts} WHERE {fts} MATCH ?", (word,))
    ]
    return sorted(ids)


def drop_recall_index(raw: Connection) -> Callable[[], None]:
    """Take the full-text indexes off ``memories`` and ``edge_facts`` for a rebuild; returns
    what puts them back, filled in one go (FTS5's triggers cost two thirds of a rebuild)."""
    if is_postgres(raw):
        raw.execute("DROP INDEX IF EXISTS memories_recall")
        raw.execute("DROP INDEX IF EXISTS edge_facts_match")

        def rebuild_indexes() -> None:
            _run(raw, PG_INDEX)
            _run(raw, PG_FACTS_INDEX)

        return rebuild_indexes
    triggers = raw.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
        "AND tbl_name IN ('memories', 'edge_facts') AND name NOT LIKE 'undo_%'"
    ).fetchall()
    for name, _ in triggers:
        raw.execute(f'DROP TRIGGER "{name}"')

    def restore() -> None:
        for _, sql in triggers:
            raw.execute(sql)
        for table, (key, _, _) in RECALL_TIERS.items():
            # every row in the archive, built in one go; the recent tier starts empty
            raw.execute(
                f"UPDATE recall_tiers SET boundary = (SELECT COALESCE(MAX({key}), 0) "
                f"FROM {table}) WHERE tbl = ?",
                (table,),
            )
            raw.execute(f"INSERT INTO {table}_fts ({table}_fts) VALUES ('rebuild')")
            raw.execute(
                f"INSERT INTO {table}_fts_recent ({table}_fts_recent) VALUES ('delete-all')"
            )

    return restore


def _run(raw: Connection, sql: str) -> None:
    raw.execute(sql)
