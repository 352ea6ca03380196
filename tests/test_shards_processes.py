"""Two engines in two processes on one PostgreSQL (issue 16, item 4): one LLM cap, one turn
of a chat at a time across both, and a killed process's slots free at once.

Both processes share, through PostgreSQL, what ``python -m bot run`` shares with ``[storage]
url`` set: the LLM cap and the chat locks; the cap tests keep each story in its own SQLite file
(what is measured is the coordination), and one test keeps the story itself in one
PostgreSQL store both write to. All play the same chats against one loopback LLM server,
which counts requests in flight.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from bot.config import StorageSettings
from bot.store import open_store, project
from bot.store.views import Views
from tests.helpers.bot_process import ROOT
from tests.helpers.engine_process import HANG, scale_answers
from tests.helpers.llm_server import LoopbackLLMServer
from tests.helpers.stores import fresh_schema

pytestmark = pytest.mark.postgres

CAP = 2


@asynccontextmanager
async def _engine_process(
    db: Path | str, server: LoopbackLLMServer, pg: str, chats: list[str], **options: object
) -> AsyncIterator[asyncio.subprocess.Process]:
    argv = ["--db", str(db), "--llm", server.base_url, "--pg", pg, "--cap", str(CAP)]
    argv += ["--chats", ",".join(chats)]
    for name, value in options.items():
        argv += [f"--{name}", str(value)]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.helpers.engine_process",
        *argv,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        ready = await asyncio.wait_for(process.stdout.readline(), 60)
        assert ready == b"ready\n", ready
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _go(process: asyncio.subprocess.Process) -> None:
    assert process.stdin is not None
    process.stdin.write(b"go\n")
    await process.stdin.drain()


async def _result(process: asyncio.subprocess.Process) -> dict[str, Any]:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 120)
    assert await process.wait() == 0
    result: dict[str, Any] = json.loads(line)
    return result


async def test_two_processes_keep_one_cap_and_one_turn_per_chat_at_a_time(
    tmp_path: Path, postgres_url: str
) -> None:
    chats = [f"shared-{os.getpid()}-{n}" for n in range(4)]  # both processes play all four
    answers = partial(scale_answers, prompt_delay=0.05, json_delay=0.02)
    async with (
        LoopbackLLMServer(answers) as server,
        _engine_process(tmp_path / "a.db", server, postgres_url, chats, turns=3) as a,
        _engine_process(tmp_path / "b.db", server, postgres_url, chats, turns=3) as b,
    ):
        server.reset_stats()
        await asyncio.gather(_go(a), _go(b))
        results = await asyncio.gather(_result(a), _result(b))

    turns = [[t for t in result["turns"]] for result in results]
    assert all(t["status"] == "done" for mine in turns for t in mine)
    assert sum(len(mine) for mine in turns) == 2 * 4 * 3
    assert len(server.requests) == 2 * 4 * 3 * 3  # each turn: the reply, labels, one state
    assert server.max_in_flight == CAP  # the cap was reached, and never passed, over both
    held = [span for result in results for span in result["held"]]
    assert len(held) == 2 * 4 * 3  # every turn ran holding its chat's lock
    for chat in chats:
        spans = sorted((taken, freed) for name, taken, freed in held if name == chat)
        for (_, freed), (taken, _) in itertools.pairwise(spans):
            assert taken >= freed, f"two turns of {chat} overlapped across the processes"


async def test_two_processes_play_the_same_chats_in_one_postgresql_store_in_order(
    postgres_url: str,
) -> None:
    """The whole of issue 16 at once: the story itself in one PostgreSQL, both processes
    writing to it, each chat's lines and replies kept in order with none lost."""
    chats = [f"one-store-{os.getpid()}-{n}" for n in range(3)]
    async with fresh_schema(postgres_url) as schema:
        store = f"{postgres_url}?search_path={schema}"
        async with (
            LoopbackLLMServer(scale_answers) as server,
            _engine_process(store, server, postgres_url, chats, turns=2) as a,
            _engine_process(store, server, postgres_url, chats, turns=2) as b,
        ):
            await asyncio.gather(_go(a), _go(b))
            results = await asyncio.gather(_result(a), _result(b))
            assert server.max_in_flight <= CAP
        assert all(t["status"] == "done" for r in results for t in r["turns"])
        async with open_store(StorageSettings(url=store)) as db:
            played = {chat: await Views(db).beats(chat) for chat in chats}
            for beats in played.values():
                lines = [b for b in beats if b.role == "user"]
                assert len(lines) == 2 * 2  # both processes' lines, none lost
                # every line is answered by the reply right after it: no turn interleaved
                for line, reply in itertools.pairwise(beats):
                    if line.role == "user":
                        assert reply.role == "assistant" and reply.answers_turn_id == line.id
            await project(db)  # and the shared store rebuilds to what both wrote
            assert {chat: await Views(db).beats(chat) for chat in chats} == played


async def test_a_killed_processs_llm_slots_are_free_for_the_other_at_once(
    tmp_path: Path, postgres_url: str
) -> None:
    async with LoopbackLLMServer(scale_answers) as server:
        stuck = [f"stuck-{os.getpid()}-{n}" for n in range(CAP)]
        async with _engine_process(
            tmp_path / "a.db", server, postgres_url, stuck, turns=1, line=HANG
        ) as a:
            await _go(a)
            async with asyncio.timeout(10):
                while server.in_flight < CAP:  # noqa: ASYNC110 - both slots held, never ending
                    await asyncio.sleep(0.01)
            free = [f"free-{os.getpid()}"]
            async with _engine_process(tmp_path / "b.db", server, postgres_url, free) as b:
                await _go(b)
                await asyncio.sleep(0.5)
                assert not server.disconnects and len(server.requests) == CAP  # b waits
                loop = asyncio.get_running_loop()
                killed = loop.time()
                a.send_signal(signal.SIGKILL)
                result = await _result(b)
                assert loop.time() - killed < 3  # not a timeout: the slots died with a
    assert [t["status"] for t in result["turns"]] == ["done"] * 3
