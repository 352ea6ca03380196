"""Bench the reply's critical path on a server that serves one request at a time.

Run: .venv/bin/python bench/first_token.py [--turns 20] [--prompt-delay 0.2] [--json-delay 0.4]

A loopback OpenAI server answers strictly one request at a time (a one-slot llama.cpp): each
reply spends ``--prompt-delay`` on its prompt before the first token, each JSON chunk
``--json-delay``. One chat, then two chats at once, each line typed while the one before is
answered, with ``max_concurrency = 2``. Reported: the time from a reply's turn beginning to its
first token, divided by the time the same reply takes alone on an idle server (1.00 is the
floor; the target for one chat is within 5%). With two chats a reply can still wait for the
one slot: behind the other chat's reply, or behind a JSON call already running when it came.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import Settings
from bot.engine import BeatEnd, Engine, Speaker
from bot.llm import Message, OpenAICompatibleClient
from bot.store import open_db
from tests.helpers.engine_helpers import seed_story
from tests.helpers.llm_server import LoopbackLLMServer, RecordedRequest, Reply


class FirstText:
    """Times a reply from the moment its turn begins (its prompt is ready) to its first text."""

    def __init__(self) -> None:
        self.started = 0.0
        self.first: float | None = None

    async def begin(self, speaker: Speaker) -> None:
        self.started = time.perf_counter()

    async def append(self, text: str) -> None:
        if self.first is None:
            self.first = time.perf_counter() - self.started

    async def end(self, outcome: BeatEnd) -> Sequence[int]:
        return ()


def answers(prompt_delay: float, json_delay: float) -> object:
    def answer(request: RecordedRequest) -> Reply:
        if request.stream:
            return Reply.text("She answers, slowly.", chunk_delay=0.01, prompt_delay=prompt_delay)
        system = request.messages[0]["content"]
        body: object = (
            {"segments": [{"kind": "narration", "text": "x"}]}
            if system.startswith("You split")
            else {"relationships": []}
        )
        return Reply.text(json.dumps(body), chunk_delay=json_delay)

    return answer


async def alone(server: LoopbackLLMServer, client: OpenAICompatibleClient) -> float:
    start = time.perf_counter()
    async for _ in client.stream([Message(role="user", content="hi")], model="m"):
        return time.perf_counter() - start
    raise RuntimeError("no token")


async def scenario(chats: int, turns: int, prompt_delay: float, json_delay: float) -> None:
    server = LoopbackLLMServer(answers(prompt_delay, json_delay), one_at_a_time=True)  # type: ignore[arg-type]
    async with server, open_db(Path(tempfile.mkdtemp()) / "bench.db") as db:
        settings = Settings.model_validate(
            {"llm": {"base_url": server.base_url, "api_key": "k", "max_concurrency": 2}}
        )
        client = OpenAICompatibleClient.from_settings(settings.llm)
        try:
            baseline = statistics.median([await alone(server, client) for _ in range(3)])
            engine = Engine(db, client, settings)
            ids = [await seed_story(engine, guest=False, chat_id=f"c{i}") for i in range(chats)]
            server.queued_behind.clear()
            sinks: list[FirstText] = []

            async def play(chat: str, n: int) -> None:
                sink = FirstText()
                sinks.append(sink)
                await engine.turns.take(chat, f"line {n}", sink)

            await asyncio.gather(*(play(c, n) for n in range(turns) for c in ids))
        finally:
            await client.aclose()
    ratios = sorted(s.first / baseline for s in sinks if s.first is not None)
    behind_json = [r for r, s in server.queued_behind if r.stream and not s.stream]
    behind_reply = [r for r, s in server.queued_behind if r.stream and s.stream]
    print(
        f"{chats} chat(s), {len(ratios)} replies, alone {baseline * 1000:.0f} ms: "
        f"first token / alone min {ratios[0]:.2f} median {statistics.median(ratios):.2f} "
        f"max {ratios[-1]:.2f}; replies behind a JSON call {len(behind_json)}, behind another "
        f"reply {len(behind_reply)}; JSON sent while a reply waited "
        f"{len(server.json_while_a_reply_waited)}"
    )


async def main(turns: int, prompt_delay: float, json_delay: float) -> None:
    await scenario(1, turns, prompt_delay, json_delay)
    await scenario(2, turns, prompt_delay, json_delay)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=10, help="lines per chat")
    parser.add_argument("--prompt-delay", type=float, default=0.2)
    parser.add_argument("--json-delay", type=float, default=0.05, help="per JSON chunk")
    args = parser.parse_args()
    asyncio.run(main(args.turns, args.prompt_delay, args.json_delay))
