"""The PostgreSQL store outlives its connection: a server restart, a failover or an
administrator's kill costs the store nothing, and a change whose COMMIT went unanswered is
never written twice. (The process still stops at a restart: the chat locks' session ends too.)

The server side of a lost connection is real here (``pg_terminate_backend``); only what the
server cannot be made to give on demand (an answer lost after COMMIT, a server that stays down
or turns new connections away) is faked at the adapter.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
import pytest

import tests.helpers.store_factories as f
from bot.config import Settings
from bot.engine import Engine
from bot.llm import ScriptedLLM
from bot.store import StoreError, append_and_apply, pg_session, project
from bot.store.events import AssistantTurn, UserTurn
from bot.store.pg import adapter
from bot.store.pg import rebuild as pg_rebuild
from bot.store.pg.connect import connect
from bot.store.pg.db import READ_ONLY_SESSION, PgDatabase, open_pg
from bot.store.pg.schema import MIGRATIONS
from bot.store.pg_locks import ChatLockLostError, PgChatLocks
from bot.store.sql import Connection
from tests.helpers.engine_helpers import (
    RecordingSink,
    make_engine,
    parse_answer,
    seed_story,
    zero_state,
)
from tests.helpers.events import then_events
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


async def test_a_read_only_store_whose_connection_drops_as_it_opens_still_opens_read_only(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lost just as the read-only session is set: the store opens again, read-only, instead of
    failing its start with the driver's own error."""
    script = adapter.PgConnection.script
    cut = {"once": True}

    def lost_at_the_session(self: adapter.PgConnection, sql: str) -> None:
        if sql == READ_ONLY_SESSION and cut.pop("once", False):
            self.conn.terminate()
            raise asyncpg.ConnectionDoesNotExistError("connection was closed")
        script(self, sql)

    async with fresh_schema(postgres_url) as schema:
        async with open_pg(postgres_url, schema=schema) as db:
            await f.seed_meanwhile_chat(db)
        monkeypatch.setattr(adapter.PgConnection, "script", lost_at_the_session)
        async with open_pg(postgres_url, schema=schema, read_only=True) as reader:
            assert cut == {}  # the first try was cut off
            with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                await reader.run(lambda raw: raw.execute("DELETE FROM event_log"))
            assert len(await reader.fetchall("SELECT id FROM event_log")) > 0


def _next_commit_unanswered(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """The next COMMIT goes through but its answer is lost; the dict empties when it was."""
    committed = adapter.PgConnection.script
    lost = {"once": True}

    def answer_lost(self: adapter.PgConnection, sql: str) -> None:
        committed(self, sql)
        if sql == "COMMIT" and lost.pop("once", False):
            raise asyncpg.ConnectionDoesNotExistError("connection was closed")

    monkeypatch.setattr(adapter.PgConnection, "script", answer_lost)
    return lost


async def test_a_commit_whose_answer_is_lost_is_reported_and_not_written_twice(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with fresh_schema(postgres_url) as schema, open_pg(postgres_url, schema=schema) as db:
        await f.seed_meanwhile_chat(db)
        before = await _kinds(db)
        _next_commit_unanswered(monkeypatch)
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


def _commit_of_the_beat_unanswered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The COMMIT of the first batch holding a reply goes through, but its answer is lost."""
    execute, script = adapter.PgConnection.execute, adapter.PgConnection.script
    state = {"reply_written": False, "once": True}

    def spy(self: adapter.PgConnection, sql: str, parameters: Sequence[Any] = (), /) -> Any:
        if "INSERT INTO event_log" in sql and parameters[:1] == ("assistant_turn",):
            state["reply_written"] = state.pop("once", False)
        return execute(self, sql, parameters)

    def answer_lost(self: adapter.PgConnection, sql: str) -> None:
        script(self, sql)
        if sql == "COMMIT" and state["reply_written"]:
            state["reply_written"] = False
            raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle")

    monkeypatch.setattr(adapter.PgConnection, "execute", spy)
    monkeypatch.setattr(adapter.PgConnection, "script", answer_lost)


def _refuse_connections(monkeypatch: pytest.MonkeyPatch, error: Exception, times: int) -> None:
    """The server turns the next ``times`` connections away with ``error``."""
    opened = adapter.connect
    left = {"refusals": times}

    async def turned_away(url: str, *, schema: str | None = None) -> Any:
        if left["refusals"]:
            left["refusals"] -= 1
            raise error
        return await opened(url, schema=schema)

    monkeypatch.setattr(adapter, "connect", turned_away)


async def test_a_beat_whose_commit_went_unanswered_is_never_played_twice(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Right after a restart every client connects at once and the server may turn some away
    ("too many clients"): the beat that was saved is not closed a second time as unsaved."""
    async with fresh_schema(postgres_url) as schema, open_pg(postgres_url, schema=schema) as db:
        engine, llm = make_engine(db)
        chat_id = await seed_story(engine, guest=False)
        llm.script(narrate="BotA smiles.", classify=parse_answer('"Hello."'), state=zero_state())
        _commit_of_the_beat_unanswered(monkeypatch)
        _refuse_connections(monkeypatch, asyncpg.TooManyConnectionsError("too many clients"), 1)

        with pytest.raises(StoreError, match="whole or not at all"):
            await engine.turns.take(chat_id, '"Hello."', RecordingSink())

        assert [turn.prose for turn in await then_events(db, UserTurn)] == ['"Hello."']
        replies = await then_events(db, AssistantTurn)
        assert [(r.text, r.interrupted) for r in replies[1:]] == [("BotA smiles.", False)]


async def test_a_server_that_turns_the_new_connection_away_fails_the_change_in_words(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with fresh_schema(postgres_url) as schema, open_pg(postgres_url, schema=schema) as db:
        await f.seed_meanwhile_chat(db)
        before = await _kinds(db)
        _refuse_connections(monkeypatch, asyncpg.TooManyConnectionsError("too many clients"), 2)
        await _kill_connection(db, postgres_url)
        with pytest.raises(StoreError, match=r"could not open it again \(too many clients\)"):
            await append_and_apply(db, kind="you_authored", payload=f.you_authored())
        await append_and_apply(db, kind="you_authored", payload=f.you_authored())
        assert await _kinds(db) == [*before, "you_authored"]


async def test_a_statement_of_ours_the_driver_refuses_is_not_a_lost_connection(
    postgres_url: str,
) -> None:
    """A bug of ours (here: a parameter missing) says what it is, once, on the same
    connection: not "lost the connection … check that the server is up"."""
    async with fresh_schema(postgres_url) as schema, open_pg(postgres_url, schema=schema) as db:
        pid = (await db.fetchone("SELECT pg_backend_pid()"))[0]
        runs: list[int] = []

        def faulty(raw: Connection) -> None:
            runs.append(1)
            raw.execute("INSERT INTO event_log (id) VALUES (?)", ())

        with pytest.raises(asyncpg.InterfaceError, match="expects 1 argument"):
            await db.write(faulty)
        assert len(runs) == 1
        assert (await db.fetchone("SELECT pg_backend_pid()"))[0] == pid


async def test_a_connection_lost_again_on_its_second_try_says_so(postgres_url: str) -> None:
    async with fresh_schema(postgres_url) as schema, open_pg(postgres_url, schema=schema) as db:
        runs: list[int] = []

        def dies(raw: Connection) -> None:
            runs.append(1)
            raw.execute("SELECT pg_terminate_backend(pg_backend_pid())")

        with pytest.raises(StoreError) as failed:
            await db.write(dies)
        assert len(runs) == 2
        assert "could not open it again" not in str(failed.value)
        assert "lost it again" in str(failed.value)
        assert "nothing is half-written" in str(failed.value)
        assert await db.fetchone("SELECT 1") == (1,)  # and the next call connects once more


async def test_a_server_restart_stops_the_process_at_its_next_turn_though_the_store_is_back(
    postgres_url: str,
) -> None:
    """What README says of a restart: it ends every session, the chat locks' too, and a
    process that lost its chat locks plays no more (another could take its chats); the
    store alone would have connected again."""
    async with fresh_schema(postgres_url) as schema, open_pg(postgres_url, schema=schema) as db:
        name = f"storybot chat locks {schema}"  # the cluster is shared: end only this session
        locks = await PgChatLocks.open(
            functools.partial(pg_session.connect, postgres_url, application_name=name)
        )
        try:
            engine = Engine(db, ScriptedLLM(), Settings(), chat_lock=locks)
            chat_id = await seed_story(engine, guest=False, chat_id=f"chat_{schema}")
            before = await _kinds(db)
            await _kill_connection(db, postgres_url)  # the restart, for the store's session
            admin = await connect(postgres_url)
            try:  # and for the chat locks' one
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = $1",
                    name,
                )
            finally:
                await admin.close()

            with pytest.raises(ChatLockLostError, match="storybot stops"):
                await engine.turns.take(chat_id, '"Hello."', RecordingSink())
            assert await _kinds(db) == before  # the store is back, and nothing was played
        finally:
            await locks.aclose()


def _killed_by_the_server(raw: adapter.PgConnection) -> None:
    raw.execute("SELECT pg_terminate_backend(pg_backend_pid())")


def _seen_closed_by_the_driver(raw: adapter.PgConnection) -> None:
    """The socket closed between two statements: the next one is refused unsent."""
    raw.conn.terminate()
    raw.execute("SELECT 1")


def _reset_under_the_socket(raw: adapter.PgConnection) -> None:
    """The server's socket reset as the driver sends: an ``OSError``, not a scratch file's."""
    raw.conn.terminate()
    raise ConnectionResetError(104, "Connection reset by peer")


@pytest.mark.parametrize(
    "lose", [_killed_by_the_server, _seen_closed_by_the_driver, _reset_under_the_socket]
)
async def test_a_rebuild_cut_off_by_a_lost_connection_is_done_again_whole(
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    lose: Callable[[adapter.PgConnection], None],
) -> None:
    """Lost while the projections travel back (emptied, one table copied): the server rolls
    it all back, and the rebuild runs again from a new scratch file (not a complaint about
    the scratch file)."""
    copy_table = pg_rebuild._copy_table
    cut = {"once": True}

    def copy_then_lose(lite: Any, raw: adapter.PgConnection, table: str) -> None:
        copy_table(lite, raw, table)
        if cut.pop("once", False):
            lose(raw)

    async with fresh_schema(postgres_url) as schema, open_pg(postgres_url, schema=schema) as db:
        await f.seed_meanwhile_chat(db)
        before, kinds = await f.snapshot(db), await _kinds(db)
        monkeypatch.setattr(pg_rebuild, "_copy_table", copy_then_lose)
        assert await project(db) == len(kinds)
        assert cut == {}  # the first try was cut off
        assert await f.snapshot(db) == before and await _kinds(db) == kinds


async def test_a_migration_whose_commit_went_unanswered_is_not_applied_twice(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``_migrate`` commits by itself and is run again after any loss: it applies only what
    the database lacks, so the store opens as it was."""
    async with fresh_schema(postgres_url) as schema:
        lost = _next_commit_unanswered(monkeypatch)
        async with open_pg(postgres_url, schema=schema) as db:
            assert lost == {}
            versions = await db.fetchall("SELECT version FROM schema_version ORDER BY version")
            assert [v[0] for v in versions] == list(range(1, len(MIGRATIONS) + 1))
            await f.seed_meanwhile_chat(db)  # the journal's triggers are there to write through
