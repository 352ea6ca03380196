"""Which store a process opens: ``[storage] url`` names PostgreSQL, else it is SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bot.config import StorageSettings
from bot.store.database import Database
from bot.store.db import open_db
from bot.store.pg.connect import display_url, is_postgres_url
from bot.store.pg.db import open_pg


def sqlite_path(storage: StorageSettings) -> Path:
    """The SQLite file a non-PostgreSQL ``url`` names: itself if set, else ``db_path``."""
    return Path(storage.url.strip()) if storage.url.strip() else storage.db_path


def uses_postgres(storage: StorageSettings) -> bool:
    return is_postgres_url(storage.url)


def store_name(storage: StorageSettings) -> str:
    """Where the story lives, fit to show (no password)."""
    return display_url(storage.url) if uses_postgres(storage) else str(sqlite_path(storage))


@asynccontextmanager
async def open_store(
    storage: StorageSettings, *, read_only: bool = False
) -> AsyncIterator[Database]:
    """Open the store ``[storage]`` names (``url``, else ``db_path``), migrated and ready.

    A ``postgresql://`` URL opens PostgreSQL (several processes may share it); an empty URL
    or a plain path opens that SQLite file (one writing process).
    """
    if uses_postgres(storage):
        async with open_pg(storage.url.strip(), read_only=read_only) as pg:
            yield pg
    else:
        async with open_db(sqlite_path(storage), read_only=read_only) as lite:
            yield lite
