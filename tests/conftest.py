"""Shared pytest wiring: loopback LLM server and Discord world fixtures, and an empty store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.store import Database, open_db

pytest_plugins = [
    # postgres and stores first: discord_fakes imports them (a plugin must not be imported first)
    "tests.helpers.postgres",
    "tests.helpers.stores",
    "tests.helpers.llm_server",
    "tests.helpers.discord_fakes",
]


@pytest.fixture
async def db() -> AsyncIterator[Database]:
    """A fresh in-memory store, closed after the test (an open aiosqlite thread hangs exit)."""
    async with open_db(":memory:") as database:
        yield database
