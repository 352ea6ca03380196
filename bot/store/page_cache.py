"""SQLite's page cache: SQLite's own small default while turns are played, a large one for a
full rebuild, given back when the rebuild commits.

A turn touches a few hundred pages, the same ones turn after turn. A cache of 64 MiB that a
long story had filled (16k pages, in the process that built it) made a turn at 10,000 prior
beats cost 18-23% more CPU than one at 10 beats played in the same rounds; 3-5% once that
cache was shrunk, 0-3% with 2 MiB from the start (one experiment each; bench/engine.py runs
since vary more). Why a full cache costs more is not pinned down (spread memory, it seems: a
turn's instruction count does not grow). A full rebuild writes every projection row once and
keeps 64 MiB, which held large rebuilds at about 50k events/s instead of 30k when chosen.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from bot.store.sql import Connection, is_postgres

TURN_KIB = 2_000
"""The cache a connection plays turns with (SQLite's default)."""
REBUILD_KIB = 65_536
"""The cache a full rebuild runs with."""


def set_turn_cache(raw: Connection) -> None:
    raw.execute(f"PRAGMA cache_size = -{TURN_KIB}")


@contextmanager
def rebuild_cache(raw: Connection) -> Iterator[None]:
    """A large page cache while the block runs (SQLite; nothing on PostgreSQL). The size it
    had comes back at the end, and the pages beyond it are freed as the transaction commits
    (a dirty page cannot be dropped before)."""
    if is_postgres(raw):
        yield
        return
    had = int(raw.execute("PRAGMA cache_size").fetchone()[0])
    raw.execute(f"PRAGMA cache_size = -{REBUILD_KIB}")
    try:
        yield
    finally:
        raw.execute(f"PRAGMA cache_size = {had}")
