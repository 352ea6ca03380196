"""Bench: two characters stream long replies into one channel of a rate-limited fake Discord.

Run from the repository's root: ``.venv/bin/python bench/discord.py [--scale 0.1]``

The fake answers 429 to a sixth edit within 5 s in one channel, and every request takes a network
latency. Figures: 429s (target 0), edits and sends, how long after the model's first token the
first message is visible (target: one request's latency), how far the shown text lags behind the
model, and how long after the last token the final edit lands. A second run gives each character
its own pacing (no shared per-channel limiter) to show why the limiter is per channel.
``--scale`` shrinks every duration (token gap, latency, edit interval, Discord's window) alike.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named discord.py: keep its folder off sys.path so ``import discord`` is discord.py.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import itertools  # noqa: E402
import logging  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

from bot.engine import BeatEnd, Speaker  # noqa: E402
from cogs._render import Renderer  # noqa: E402
from tests.helpers.render_fakes import PNG, FakeDiscord, settings  # noqa: E402

WORDS = [
    "the",
    "rain",
    "kept",
    "falling",
    "on",
    "the",
    "old",
    "inn",
    "while",
    "she",
    "laughed",
    "and",
    "poured",
    "another",
    "cup",
]


@dataclass
class Run:
    speaker: Speaker
    first_token: float = 0.0
    last_token: float = 0.0
    ended: float = 0.0
    ids: tuple[int, ...] = ()


def reply_text(rng: random.Random, length: int) -> str:
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < length:
        sentence = [rng.choice(WORDS) for _ in range(rng.randint(6, 18))]
        words.extend([*sentence[:-1], sentence[-1] + rng.choice([".", "!", "?", "…"])])
    return " ".join(words)[:length]


def tokens(text: str, rng: random.Random) -> list[str]:
    out, i = [], 0
    while i < len(text):
        step = rng.randint(2, 6)
        out.append(text[i : i + step])
        i += step
    return out


async def stream_one(
    renderer: Renderer, channel: Any, run: Run, text: str, *, gap: float, think: float, seed: int
) -> None:
    sink = renderer.sink(channel, chat_id=f"chat-{run.speaker.id}", owner_id=7)
    await sink.begin(run.speaker)
    await asyncio.sleep(think)  # the model thinks before its first token
    for n, token in enumerate(tokens(text, random.Random(seed))):
        if n == 0:
            run.first_token = time.monotonic()
        await sink.append(token)
        await asyncio.sleep(gap)
    run.last_token = time.monotonic()
    run.ids = tuple(await sink.end(BeatEnd(text, "done")))
    run.ended = time.monotonic()


async def scenario(*, scale: float, shared: bool, length: int, latency: float) -> dict[str, Any]:
    fake = FakeDiscord(edits_per_window=5, window=5.0 * scale, latency=latency * scale)
    config = settings(interval=1.0 * scale)
    avatars = fake.avatar_source({"a1b2c3": PNG})
    renderers = [Renderer(avatars, config)] if shared else [Renderer(avatars, config) for _ in "ab"]
    channel = fake.channel()
    rng = random.Random(1)
    runs = [Run(Speaker("mira", "Mira", "a1b2c3")), Run(Speaker("jun", "Jun"))]
    texts = [reply_text(rng, length) for _ in runs]
    start = time.monotonic()
    await asyncio.gather(
        *(
            stream_one(
                renderers[i % len(renderers)],
                channel,
                run,
                texts[i],
                gap=0.02 * scale,
                think=0.4 * scale,
                seed=i,
            )
            for i, run in enumerate(runs)
        )
    )
    wall = time.monotonic() - start
    first_visible = []
    for run in runs:
        sends = [c for c in fake.calls if c.verb == "send" and c.message_id in run.ids]
        first_visible.append((min(c.at for c in sends) - run.first_token) / scale)
    shown_ok = all(
        " ".join(fake.messages[i].content for i in run.ids).split() == text.split()
        for run, text in zip(runs, texts, strict=True)
    )
    return {
        "429s": fake.rate_limited,
        "edits": fake.verbs(channel.id).count("edit"),
        "sends": fake.verbs(channel.id).count("send"),
        "messages": [len(r.ids) for r in runs],
        "first_visible_ms": [round(v * 1000) for v in first_visible],
        "final_after_last_token_ms": [round((r.ended - r.last_token) / scale * 1000) for r in runs],
        "edit_gap_min_s": _min_gap(fake.edit_times(channel.id), scale),
        "wall_s": round(wall / scale, 2),
        "text_intact": shown_ok,
    }


def _min_gap(times: list[float], scale: float) -> float:
    gaps = [(b - a) / scale for a, b in itertools.pairwise(times)]
    return round(min(gaps), 3) if gaps else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="shrink all durations (0.1 = 10x)")
    parser.add_argument("--length", type=int, default=3000, help="characters per reply")
    parser.add_argument("--latency-ms", type=float, default=80.0, help="fake Discord latency")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    latency = args.latency_ms / 1000
    print(
        f"2 replies x {args.length} chars, a token every 20 ms, Discord latency "
        f"{args.latency_ms:.0f} ms, edit interval 1.0 s, 5 edits / 5 s / channel "
        f"(durations scaled x{args.scale}; figures below are unscaled)"
    )
    for label, shared in (("shared per-channel pacing", True), ("per-reply pacing", False)):
        figures = asyncio.run(
            scenario(scale=args.scale, shared=shared, length=args.length, latency=latency)
        )
        print(f"\n{label}:")
        for key, value in figures.items():
            print(f"  {key:28} {value}")
    print(
        f"\none request takes {args.latency_ms:.0f} ms: first_visible_ms near that means the "
        "first message went out right after the first token"
    )


if __name__ == "__main__":
    main()
