"""The reply owns the critical path on a server that serves one request at a time (issue 13).

A local llama.cpp with one slot runs whatever reaches it first. storybot sends no JSON call of
a beat before its reply has streamed, and no JSON call at all while any reply waits for its
first token, whatever ``max_concurrency`` says: so no reply ever queues behind a JSON call.
"""

from __future__ import annotations

import asyncio
import json

from bot.config import Settings
from bot.engine import Engine
from bot.llm import OpenAICompatibleClient
from bot.store import Database
from tests.helpers.engine_helpers import RecordingSink, seed_story
from tests.helpers.llm_server import LoopbackLLMServer, RecordedRequest, Reply


def _slow_json(request: RecordedRequest) -> Reply:
    """Replies come at once; every JSON answer takes a while, as on a small CPU model."""
    if request.stream:
        return Reply.text("BotA answers.", chunk_delay=0.01)
    system = request.messages[0]["content"]
    if system.startswith("You split"):
        answer: object = {"segments": [{"kind": "narration", "text": "x"}]}
    else:
        answer = {"relationships": []}
    return Reply.text(json.dumps(answer), chunk_delay=0.05)


async def test_no_reply_queues_behind_a_json_call_on_a_one_slot_server(db: Database) -> None:
    async with LoopbackLLMServer(_slow_json, one_at_a_time=True) as server:
        settings = Settings.model_validate(
            {"llm": {"base_url": server.base_url, "api_key": "k", "max_concurrency": 2}}
        )
        client = OpenAICompatibleClient.from_settings(settings.llm)
        try:
            engine = Engine(db, client, settings)
            chat = await seed_story(engine, guest=False)
            # lines typed while the one before is answered and the world updates after it
            await asyncio.gather(
                *(engine.turns.take(chat, line, RecordingSink()) for line in ("hi", "so?", "and?"))
            )
        finally:
            await client.aclose()

    streams = [r for r in server.requests if r.stream]
    assert len(streams) == 3 and len(server.requests) == 9  # each turn: reply, labels, state
    behind_json = [(r, s) for r, s in server.queued_behind if r.stream and not s.stream]
    assert behind_json == []  # no reply ever waited for a JSON call
    assert server.json_while_a_reply_waited == []  # nor was one sent while a reply waited


async def test_no_json_call_is_sent_while_another_chats_reply_waits(db: Database) -> None:
    """Chat A's world update waits while chat B's reply, queued at the server, has no token."""

    def answers(request: RecordedRequest) -> Reply:
        if request.stream:  # a reply of several chunks: B's waits behind all of A's
            return Reply.text("BotA answers slowly.", chunk_delay=0.02, prompt_delay=0.3)
        return _slow_json(request)

    async with LoopbackLLMServer(answers, one_at_a_time=True) as server:
        settings = Settings.model_validate(
            {"llm": {"base_url": server.base_url, "api_key": "k", "max_concurrency": 2}}
        )
        client = OpenAICompatibleClient.from_settings(settings.llm)
        try:
            engine = Engine(db, client, settings)
            chats = [await seed_story(engine, guest=False, chat_id=f"c{i}") for i in range(2)]
            await asyncio.gather(*(engine.turns.take(c, "hello", RecordingSink()) for c in chats))
        finally:
            await client.aclose()

    assert len([r for r in server.requests if r.stream]) == 2
    assert any(r.stream and s.stream for r, s in server.queued_behind)  # B did wait behind A
    assert server.json_while_a_reply_waited == []
