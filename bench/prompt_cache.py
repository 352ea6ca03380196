"""Prompt-cache benchmark: how much of each prompt a server's prefix cache can reuse.

    .venv/bin/python bench/prompt_cache.py
    STORYBOT_BENCH_LLM_URL=http://127.0.0.1:8089/v1 .venv/bin/python bench/prompt_cache.py

A scripted 40-beat story (the example characters Mira and Tomás, you present, the guest
addressed now and then, the world moved on, a scene closed, a short meanwhile) is played
through the engine against a fake LLM whose replies, feelings and activities vary. For every
reply prompt, the share of it (role + content of each message, concatenated in order) that is
a byte-identical prefix of the same character's previous reply prompt is what llama.cpp, vLLM,
Ollama and hosted APIs can reuse instead of computing again. The same is reported for the
state-update prompts (per character).

Target: median reply-prompt prefix share >= 0.85.

With ``STORYBOT_BENCH_LLM_URL`` set to a real OpenAI-compatible server (llama.cpp's, say), Mira's
reply prompts are also sent to it in order (each after the previous, as a server that keeps the
last prompt's cache sees them) and the time to first token at beat 2 and beat 30 is printed;
without it that part is skipped.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import statistics
import sys
import time
import tomllib
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config import Settings
from bot.engine import Engine, NullSink
from bot.llm import Message, OpenAICompatibleClient, Priority
from bot.store import open_db

TARGET = 0.85
URL_ENV = "STORYBOT_BENCH_LLM_URL"
MODEL_ENV = "STORYBOT_BENCH_LLM_MODEL"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "characters"
NARRATOR = re.compile(r"^You are (.+?), a character")
STATE = re.compile(r"^You track the inner life of (.+?)\.")
TARGET_ID = re.compile(r"\(id ([\w-]+), affinity")

REPLIES = (
    '*Mira slides a cup across the counter and watches the door over its rim.* "The harbour '
    "master was not at his post tonight. That has not happened in eleven years, not in storms, "
    'not on feast days."\n\nShe sets the pot down a little too hard. "Drink. Then tell me why '
    'you came the long way round, and why your boots smell of the customs house."',
    '"Fog like this, you steer by smell," Tomás says, shaking rain from his coat onto the floor '
    'Mira just mopped. "Tar to port, bread to starboard. And tonight there was something else '
    'on the wind. Lamp oil, and a lot of it."\n\nHe drops into the chair opposite and grins at '
    "nobody in particular, the grin of a man who has decided to say less than he knows.",
    "*She wipes the same spot on the counter for the third time.* \"Go on. I'm listening. "
    "Start with the ledger, and leave out the parts you think I will not like. I will find "
    'them anyway."\n\nThe kettle ticks as it cools. Somewhere out on the water a bell rings '
    "twice and stops, and Mira's hand goes still on the cloth until it does.",
    'Tomás laughs, too loud for the hour. "Mira, you know I cannot lie to you. I can only '
    'forget, very carefully." He drums his fingers on the table and does not meet her eyes.'
    '\n\n"The pilot boat was out past the breakwater until two. I saw lights where there '
    'should be none, and I saw them go out when I came close. That is all. Mostly all."',
    '*Mira sets the lantern between you and lowers her voice.* "Someone tore out the entry '
    "for the ninth. Whoever did it knew which page to look for, and knew the ledger would be "
    'open."\n\nShe turns the lantern so its light falls on the torn edge. "Clean cut. A knife, '
    'not a hand. Nobody in a hurry does that."',
    '"The ninth," Tomás repeats. "The night of the fog. I brought the Serein in myself, and '
    'her hold was lighter than her papers said." He finally looks up.\n\n"I told myself it '
    "was none of my business. A pilot brings ships in; he does not count their crates. But "
    'I counted anyway. Old habit."',
)
PROSES = (
    'I shake the rain off and sit at the counter. "Long night. Is the kitchen still open?"',
    '*I glance at the door.* "Who else knew about the ledger?" I keep my hand on the key.',
    "Tomás, you were on the water that night. What did you see from the pilot boat?",
    "*I turn the cup slowly.* The ninth. That was the night of the fog, wasn't it?",
    '"I found this in the alley behind the customs house." I put the torn page on the table.',
    "Mira, you knew the harbour master better than anyone. Where would he go?",
    "*I lean back and listen to the rain for a while before I answer.*",
    "Tomás, who paid you to forget the Serein's cargo?",
)
ACTIVITIES = ("wiping the counter", "pouring coffee", "leaning on the bar", "watching the door")


class VaryingLLM:
    """Replies, feelings and activities that change every beat, as a real model's would."""

    def __init__(self) -> None:
        self.replies = 0
        self.states = 0
        self.reply_prompts: dict[str, list[list[Message]]] = defaultdict(list)
        self.state_prompts: dict[str, list[list[Message]]] = defaultdict(list)

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        priority: Priority = Priority.BACKGROUND,
        **params: Any,
    ) -> str:
        system = messages[0].content
        answer: object
        if system.startswith("You split a role-play player's message"):
            answer = {"segments": [{"kind": "narration", "text": messages[-1].content}]}
        elif match := STATE.match(system):
            self.state_prompts[match[1]].append(list(messages))
            self.states += 1
            n = self.states
            answer = {
                "relationships": [
                    {
                        "target_id": target,
                        "affinity_delta": n % 5 - 2,
                        "trust_delta": (n * 3) % 5 - 2,
                        "knowledge_facts": [f"fact {n} about the harbour"] if n % 7 == 0 else [],
                    }
                    for target in TARGET_ID.findall(messages[-1].content)
                ],
                "activity": {"posture": "standing", "verb": ACTIVITIES[n % len(ACTIVITIES)]}
                if n % 3 == 0
                else None,
            }
        elif system.startswith("Summarize, in two to four sentences"):
            answer = {"summary": "While you were away, Mira and Tomás argued about the ledger."}
        elif system.startswith("List the open plot threads"):
            answer = {"threads": [{"title": "the torn ledger page", "summary": ""}]}
        else:
            answer = {
                "summary": "A long night at the Lantern: the ledger, the fog, the Serein.",
                "knowledge_facts": [],
                "relationship_summary": "",
            }
        return json.dumps(answer)

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        priority: Priority = Priority.NARRATIVE,
        **params: Any,
    ) -> AsyncIterator[str]:
        match = NARRATOR.match(messages[0].content)
        assert match, "a reply prompt that names no speaker"
        self.reply_prompts[match[1]].append(list(messages))
        self.replies += 1
        yield REPLIES[self.replies % len(REPLIES)]


def serialize(messages: Sequence[Message]) -> str:
    return "".join(m.role + m.content for m in messages)


def prefix_shares(prompts: list[list[Message]]) -> list[float]:
    """For each prompt after the first: its share that is a prefix of the one before."""
    shares = []
    for previous, current in itertools.pairwise(prompts):
        a, b = serialize(previous), serialize(current)
        common = len(os.path.commonprefix([a, b]))  # noqa: RUF071 (strings, not paths)
        shares.append(common / len(b) if b else 1.0)
    return shares


def _character(name: str) -> dict[str, object]:
    with (EXAMPLES / f"{name}.toml").open("rb") as fh:
        fields = tomllib.load(fh)
    fields.pop("avatar", None)
    return fields


async def play_story(llm: VaryingLLM, settings: Settings, *, with_guest: bool = True) -> int:
    """The scripted story; returns how many beats it played. Without the guest, the lines
    that address Tomás are played all the same (Mira answers them) and there is no
    meanwhile scene."""
    async with open_db(":memory:") as db:
        engine = Engine(db, llm, settings)
        for name in ("mira", "tomas"):
            await engine.characters.author(_character(name))
        await engine.characters.set_you(
            name="Alex", pronouns="they/them", persona="A courier, often late."
        )
        started = await engine.chats.start(
            host_id="mira",
            guest_id="tomas" if with_guest else None,
            place="the Lantern café",
            time="21:40",
            weather="rain",
        )
        chat_id = started.chat.id
        beats = 0
        for n in range(40):
            if n == 12:
                await engine.chats.set_world(chat_id, time="23:30", weather="fog rolling in")
            if n == 20:
                await engine.scenes.close(chat_id)
            if n == 28 and with_guest:
                await engine.scenes.start_meanwhile(chat_id, premise="Mira and Tomás talk it over")
                await engine.turns.meanwhile_beats(chat_id, 3, NullSink)
                await engine.scenes.end_meanwhile(chat_id)
                beats += 3
            await engine.turns.take(chat_id, PROSES[n % len(PROSES)], NullSink())
            beats += 1
        await engine.close()
    return beats


def _report(kind: str, prompts: dict[str, list[list[Message]]]) -> list[float]:
    every: list[float] = []
    for who, seq in sorted(prompts.items()):
        shares = prefix_shares(seq)
        every += shares
        if shares:
            print(
                f"  {kind} {who:<12} prompts {len(seq):>3}  median {statistics.median(shares):.3f}"
                f"  p25 {statistics.quantiles(shares, n=4)[0]:.3f}  min {min(shares):.3f}"
            )
    return every


async def first_token_times(prompts: list[list[Message]], url: str, model: str) -> None:
    """Send ``prompts`` in order to a real server; print the time to first token of beat 2
    and beat 30, each right after the prompt before it (the server's cache warm)."""
    async with OpenAICompatibleClient(url, os.environ.get("STORYBOT_LLM_API_KEY", "")) as client:
        timings: dict[int, float] = {}
        for beat, messages in enumerate(prompts[:30], start=1):
            started = time.perf_counter()
            async for _ in client.stream(messages, model=model, max_tokens=4, temperature=0):
                timings.setdefault(beat, time.perf_counter() - started)
        for beat in (2, 30):
            if beat in timings:
                print(f"  time to first token at beat {beat:>2}: {timings[beat] * 1000:.0f} ms")


async def main() -> int:
    settings = Settings()
    medians = []
    for with_guest in (False, True):
        llm = VaryingLLM()
        beats = await play_story(llm, settings, with_guest=with_guest)
        cast = "host and guest (a quarter of the lines to the guest)" if with_guest else "host"
        print(f"{beats}-beat story, {cast}; budget {settings.engine.prompt_token_budget} tokens")
        replies = _report("reply", llm.reply_prompts)
        states = _report("state", llm.state_prompts)
        medians.append(statistics.median(replies))
        print(f"  reply prompts: median prefix share {medians[-1]:.3f} (target >= {TARGET})")
        print(f"  state prompts: median prefix share {statistics.median(states):.3f}")
    url = os.environ.get(URL_ENV)
    if url:
        host = llm.reply_prompts["Mira Vale"]
        await first_token_times(host, url, os.environ.get(MODEL_ENV, "local"))
    else:
        print(f"(time to first token skipped: set {URL_ENV} to a llama.cpp server's /v1 URL)")
    return 0 if medians[0] >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
