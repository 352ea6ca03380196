"""What processes sharing one PostgreSQL share besides the story: the LLM cap and chat locks.

With SQLite (one writer process) both are this process's own: ``PriorityGate`` and no chat
lock at all. With ``[storage] url`` naming PostgreSQL, every process takes its LLM slots from
one ``SharedGate`` and plays a chat only while it holds that chat's advisory lock.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bot.config import Settings
from bot.engine.inflight import ChatLock
from bot.llm.gate import LLMGate
from bot.llm.shared_gate import SharedGate, scope_of
from bot.store.pg_locks import PgChatLocks
from bot.store.pg_session import connect, safe_url

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Sharing:
    gate: LLMGate | None
    """The LLM gate to build the client with; None: the client's own ``PriorityGate``."""
    chat_lock: ChatLock | None
    """The engine's cross-process chat lock; None: one process, nothing to take."""


@asynccontextmanager
async def sharing(settings: Settings) -> AsyncIterator[Sharing]:
    """Open what this process shares with the others (nothing with SQLite); closed after.

    An unreachable PostgreSQL is a ``PostgresUnreachableError`` here, at start-up.
    """
    url = settings.storage.url
    if not settings.storage.postgres:
        yield Sharing(None, None)
        return
    llm = settings.llm
    scope = scope_of(llm.base_url, llm.api_key.get_secret_value())
    gate_session = functools.partial(connect, url, application_name="storybot llm cap")
    async with SharedGate.open(gate_session, llm.max_concurrency, scope) as gate:
        locks = await PgChatLocks.open(
            functools.partial(connect, url, application_name="storybot chat locks")
        )
        log.info(
            "sharing the LLM cap (%d) and chat locks with every process on %s",
            llm.max_concurrency,
            safe_url(url),
        )
        try:
            yield Sharing(gate, locks)
        finally:
            await locks.aclose()
