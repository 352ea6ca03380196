"""LLM faults through the engine, on the real client: what a storm costs and what it changes."""

from __future__ import annotations

from bot.config import Settings
from bot.engine import Engine
from bot.store import Database
from tests.helpers.engine_helpers import RecordingSink, seed_story
from tests.helpers.llm_server import LoopbackLLMServer, RecordedRequest, Reply, loopback_client

RETRIES = 2


async def test_a_500_storm_on_a_scene_close_costs_only_the_retries_and_keeps_json_mode(
    db: Database, llm_server: LoopbackLLMServer
) -> None:
    storm = False

    def answer(request: RecordedRequest) -> Reply:
        if storm:
            return Reply.status(500)
        return Reply.text("BotA nods." if request.stream else "{}")

    llm_server.default = answer
    async with loopback_client(llm_server, max_retries=RETRIES) as client:
        engine = Engine(db, client, Settings())
        chat_id = await seed_story(engine)
        await engine.turns.take(chat_id, "Hello, both of you.", RecordingSink())
        llm_server.reset_stats()
        storm = True

        closed = await engine.scenes.close(chat_id)

        assert closed.new_scene_id != closed.scene_id  # the close itself went through
        calls = [r for r in llm_server.requests if r.method == "POST"]
        with_json = [r for r in calls if "response_format" in r.json]
        # every call costs 1 + retries; its last try goes without response_format
        assert len(calls) % (1 + RETRIES) == 0 and calls
        assert len(with_json) == len(calls) // (1 + RETRIES) * RETRIES
        assert client.json_mode  # a failing server did not switch JSON mode off

        storm = False
        llm_server.reset_stats()
        await engine.turns.take(chat_id, "Still there?", RecordingSink())
        structured = [r for r in llm_server.requests if not r.stream]
        assert structured and all("response_format" in r.json for r in structured)
