"""A fresh store on either backend, so the store suite runs on SQLite and on PostgreSQL.

``BACKENDS`` parametrizes a test over both; the PostgreSQL parameter is marked ``postgres``
(left out of the default run) and gets a schema of its own inside the test server, dropped
after the test. Without STORYBOT_TEST_POSTGRES_URL it is skipped, saying how to run it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bot.store import Database, open_db
from bot.store.pg.connect import connect
from bot.store.pg.db import open_pg
from tests.helpers.postgres import NO_POSTGRES, POSTGRES_URL_ENV

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def postgres_url() -> str:
    url = os.environ.get(POSTGRES_URL_ENV, "")
    if not url:
        pytest.skip(NO_POSTGRES)
    return url


@asynccontextmanager
async def fresh_schema(url: str) -> AsyncIterator[str]:
    """A new, empty schema in the test server, dropped (with all it holds) afterwards."""
    name = f"storybot_test_{uuid.uuid4().hex[:12]}"
    admin = await connect(url)
    try:
        await admin.execute(f"CREATE SCHEMA {name}")
        yield name
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        await admin.close()


@asynccontextmanager
async def fresh_store(backend: str, **options: Any) -> AsyncIterator[Database]:
    """An empty, migrated store: SQLite in memory, or PostgreSQL in a schema of its own."""
    if backend == "sqlite":
        async with open_db(":memory:", **options) as lite:
            yield lite
        return
    url = postgres_url()
    async with fresh_schema(url) as schema, open_pg(url, schema=schema, **options) as pg:
        yield pg


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
async def store(backend: str) -> AsyncIterator[Database]:
    """A fresh store on each backend (the test runs once per backend)."""
    async with fresh_store(backend) as database:
        yield database
