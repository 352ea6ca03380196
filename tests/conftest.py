"""Shared pytest wiring: the loopback OpenAI-compatible server fixtures and an empty store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.store import Database, open_db

pytest_plugins = ["tests.llm_server"]


@pytest.fixture
async def db() -> AsyncIterator[Database]:
    """A fresh in-memory store, closed after the test (an open aiosqlite thread hangs exit)."""
    async with open_db(":memory:") as database:
        yield database
