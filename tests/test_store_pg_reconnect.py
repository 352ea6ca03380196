"""The PostgreSQL store outlives its connection: a server restart, a failover or an
administrator's kill costs the bot nothing, and a change whose COMMIT went unanswered is never
written twice.

The server side of a lost connection is real here (``pg_terminate_backend``); only the two
cases the server cannot be made to give on demand (an answer lost after COMMIT, a server that
stays down) are faked at the adapter.
"""

from __future__ import annotations

import asyncpg
import pytest

import tests.helpers.store_factories as f
from bot.store import StoreError, append_and_apply
from bot.store.pg import adapter
from bot.store.pg.connect import connect
from bot.store.pg.db import PgDatabase, open_pg
from tests.helpers.stores import fresh_schema

pytestmark = pytest.mark.postgres


async def _kill_connection(db: PgDatabase, url: str) -> None:
    """What a server restart does to the store's connection, from another connection."""
    pid = (await db.fetchone("SELECT pg_backend_pid()"))[0]
    admin = await connect(url)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def _kinds(db: PgDatabase) -> list[str]:
    return [row[0] for row in await db.fetchall("SELECT kind FROM event_log ORDER BY id")]


async def test_a_killed_connection_is_opened_again_and_the_change_is_saved_once(
    postgres_url: str,
) -> None:
    async with fresh_schema(postgres_url) as schema, open_pg(postgres_url, schema=schema) as db:
        await f.seed_meanwhile_chat(db)
        before = await _kinds(db)
        await _kill_connection(db, postgres_url)
        await append_and_apply(db, kind="you_authored", payload=f.you_authored())
        assert await _kinds(db) == [*before, "you_authored"]
        await _kill_connection(db, postgres_url)
        assert len(await db.fetchall("SELECT id FROM event_log")) == len(before) + 1


async def test_a_read_only_store_is_still_read_only_on_its_new_connection(
    postgres_url: str,
) -> None:
    async with fresh_schema(postgres_url) as schema:
        async with open_pg(postgres_url, schema=schema) as db:
            await f.seed_meanwhile_chat(db)
        async with open_pg(postgres_url, schema=schema, read_only=True) as reader:
            await _kill_connection(reader, postgres_url)
            assert len(await reader.fetchall("SELECT id FROM event_log")) > 0
            with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                await reader.run(lambda raw: raw.execute("DELETE FROM event_log"))
            assert len(await reader.fetchall("SELECT id FROM event_log")) > 0


async def test_a_commit_whose_answer_is_lost_is_reported_and_not_written_twice(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    committed = adapter.PgConnection.script
    lost = {"once": True}

    def answer_lost(self: adapter.PgConnection, sql: str) -> None:
        committed(self, sql)
        if sql == "COMMIT" and lost.pop("once", False):
            raise asyncpg.ConnectionDoesNotExistError("connection was closed")

    async with fresh_schema(postgres_url) as schema, open_pg(postgres_url, schema=schema) as db:
        await f.seed_meanwhile_chat(db)
        before = await _kinds(db)
        monkeypatch.setattr(adapter.PgConnection, "script", answer_lost)
        with pytest.raises(StoreError, match=r"while saving the last change.*whole or not at all"):
            await append_and_apply(db, kind="you_authored", payload=f.you_authored())
        assert await _kinds(db) == [*before, "you_authored"]  # in once, not retried
        await append_and_apply(db, kind="you_authored", payload=f.you_authored(name="Robin"))
        assert await _kinds(db) == [*before, "you_authored", "you_authored"]


async def test_a_server_that_stays_down_fails_the_change_in_words_and_the_next_one_retries(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refused(url: str, *, schema: str | None = None) -> None:
        raise ConnectionRefusedError(111, "Connect call failed")

    async with fresh_schema(postgres_url) as schema, open_pg(postgres_url, schema=schema) as db:
        await f.seed_meanwhile_chat(db)
        before = await _kinds(db)
        with monkeypatch.context() as down:
            down.setattr(adapter, "connect", refused)
            await _kill_connection(db, postgres_url)
            with pytest.raises(StoreError, match=r"could not open it again.*nothing is half"):
                await append_and_apply(db, kind="you_authored", payload=f.you_authored())
            with pytest.raises(StoreError, match="the PostgreSQL server is up"):
                await db.fetchall("SELECT id FROM event_log")
        await append_and_apply(db, kind="you_authored", payload=f.you_authored())
        assert await _kinds(db) == [*before, "you_authored"]
