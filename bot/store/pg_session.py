"""One PostgreSQL session for coordinating processes, opened with a clear word on failure.

The locks that keep processes apart (a chat played by one process at a time, the shared LLM
cap) are session-level advisory locks: they live exactly as long as the connection, so a
crashed process leaves none behind.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import asyncpg

from bot.store.errors import StoreError

CONNECT_SECONDS = 10.0


class PostgresUnreachableError(StoreError):
    """``[storage] url`` names a PostgreSQL we cannot reach or may not use."""


def safe_url(url: str) -> str:
    """The URL without its password: fit for a message or a log line."""
    parts = urlsplit(url.strip())
    user = f"{parts.username}@" if parts.username else ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{user}{parts.hostname or ''}{port}{parts.path}"


async def connect(url: str, *, application_name: str = "storybot") -> asyncpg.Connection:
    """A connection of its own (locks are per session), or ``PostgresUnreachableError``."""
    try:
        return await asyncpg.connect(
            url,
            timeout=CONNECT_SECONDS,
            server_settings={"application_name": application_name},
        )
    except (OSError, TimeoutError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise PostgresUnreachableError(
            f"cannot reach PostgreSQL at {safe_url(url)} ({reason}): check [storage] url and "
            "that the server is running"
        ) from None
    except (asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
        raise PostgresUnreachableError(
            f"PostgreSQL at {safe_url(url)} refused us: {_redacted(str(exc), url)}; "
            "check [storage] url"
        ) from None


def _redacted(text: str, url: str) -> str:
    password = urlsplit(url.strip()).password
    return text.replace(password, "***") if password else text
