"""The engine under the LLM's concurrency limit and with several chats at once."""

from __future__ import annotations

import asyncio
import json
import time

from bot.config import Settings
from bot.engine import Engine
from bot.llm import MockLLMClient, RecordedCall
from bot.store import Database
from tests.helpers.engine_helpers import RecordingSink, seed_story
from tests.helpers.llm_server import LoopbackLLMServer, RecordedRequest, Reply, loopback_client

SLOW_JSON = 0.5


def _answers(request: RecordedRequest) -> Reply:
    """Prose streams at once; every JSON answer (classification, state) takes SLOW_JSON s."""
    if request.stream:
        return Reply.text("Mira looks up from the counter.")
    system = request.messages[0]["content"]
    body = {"segments": [{"kind": "narration", "text": "x"}]} if "segments" in system else {}
    return Reply.text(chunks=[json.dumps(body)], chunk_delay=SLOW_JSON)


async def test_classification_never_delays_the_first_token_even_with_one_slot(
    db: Database,
) -> None:
    async with LoopbackLLMServer(default=_answers) as server:
        client = loopback_client(server, max_concurrency=1)
        async with client:
            engine = Engine(db, client, Settings())
            chat_id = await seed_story(engine, guest=False)
            sink = RecordingSink()
            started = time.monotonic()
            turn = asyncio.create_task(engine.turns.take(chat_id, "Evening, Mira.", sink))
            await sink.first_text.wait()
            first_text = time.monotonic() - started
            result = await turn

    # had a classification taken the one slot first, no text could come before SLOW_JSON
    assert first_text < SLOW_JSON, f"first text after {first_text:.3f} s"
    assert result.status == "done"
    assert server.max_in_flight == 1
    kinds = ["stream" if r.stream else "json" for r in server.requests]
    assert kinds[0] == "stream"


class _ByKind(MockLLMClient):
    """Prose for every stream, an empty JSON object for every other call: order-free."""

    def __init__(self, reply: str) -> None:
        super().__init__(chunk_delay=0.02)
        self.reply = reply

    def answer(self, call: RecordedCall) -> str:
        return self.reply if call.kind == "stream" else "{}"


async def test_two_chats_play_at_the_same_time(db: Database) -> None:
    reply = " ".join(f"w{i}" for i in range(10))
    engine = Engine(db, _ByKind(reply), Settings())
    first = await seed_story(engine, guest=False, chat_id="first")
    second = await engine.chats.start(host_id="bot_a", place="elsewhere", chat_id="second")

    started = time.monotonic()
    results = await asyncio.gather(
        engine.turns.take(first, "one", RecordingSink()),
        engine.turns.take(second.chat.id, "two", RecordingSink()),
    )
    elapsed = time.monotonic() - started

    assert [r.status for r in results] == ["done", "done"]
    one_reply = 0.02 * len(reply.split(" ")) * 2  # words and spaces are chunks
    assert elapsed < one_reply * 1.6, f"{elapsed:.2f} s for two replies of {one_reply:.2f} s"
