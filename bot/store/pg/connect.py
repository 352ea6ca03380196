"""Reaching PostgreSQL from ``[storage] url``: one place for every part of the bot that needs it.

The store opens its own connection through ``connect``; whatever else needs the same server
(the per-chat lock across processes, the cross-process LLM cap) calls ``connect`` or
``create_pool`` with the same settings, so they all meet in the same database and schema.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import asyncpg

SCHEMES = ("postgresql", "postgres")

STATEMENT_CACHE = 1024
"""Prepared statements kept per connection: every handler's SQL, the reads, and some IN-lists."""


def is_postgres_url(url: str) -> bool:
    """``[storage] url`` names a PostgreSQL server (else it is empty or a SQLite path)."""
    return urlsplit(url.strip()).scheme in SCHEMES


def display_url(url: str) -> str:
    """The URL without its password, fit for a log line or an error message."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def _server_settings(schema: str | None) -> dict[str, str]:
    # Plan every statement for the tables as they are now: asyncpg prepares each statement
    # once, and a generic plan made while a table was small (a rebuild starts from empty ones,
    # with no statistics yet) kept scanning it whole as it grew: 1,000 events/s at 20k, 240 at
    # 100k. Planning again costs tens of microseconds a statement.
    settings = {"application_name": "storybot", "plan_cache_mode": "force_custom_plan"}
    if schema:
        settings["search_path"] = schema
    return settings


CONNECT_SECONDS = 10.0


async def connect(url: str, *, schema: str | None = None) -> Any:
    """One ``asyncpg.Connection`` to the server of ``url`` (``schema``: its search path)."""
    return await asyncpg.connect(
        url,
        timeout=CONNECT_SECONDS,
        statement_cache_size=STATEMENT_CACHE,
        server_settings=_server_settings(schema),
    )


async def create_pool(
    url: str, *, schema: str | None = None, min_size: int = 1, max_size: int = 4
) -> Any:
    """An ``asyncpg.Pool`` on the server of ``url``, with the same settings as the store's."""
    return await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        statement_cache_size=STATEMENT_CACHE,
        server_settings=_server_settings(schema),
    )
