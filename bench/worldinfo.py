"""World-info benchmark: the cost of deciding which lorebook entries fire, per prompt.

    .venv/bin/python bench/worldinfo.py                  # 20, 200 and 2,000 entries
    .venv/bin/python bench/worldinfo.py --entries 500 --depth 10

Each book has entries with three keys and two secondary keys drawn from a vocabulary; the
scanned text is ``--depth`` witnessed beats of 60 words plus a current line of 30, drawn from the
same vocabulary (``--vocabulary`` sets how often keys hit), and one entry in ten is a regex key.
Activation runs on the event loop before each reply, so it should stay well under the cost of
building the prompt: target < 10 ms for a 200-entry book at the default scan depth.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.cards.lorebook import Lorebook
from bot.engine.worldinfo import Scanned, activate
from bot.store.events import LoreEntry


def build(entries: int, depth: int, vocabulary: int, seed: int) -> tuple[Lorebook, list[Scanned]]:
    rng = random.Random(seed)
    words = [f"word{i}" for i in range(vocabulary)]
    book = Lorebook(
        name="bench",
        scan_depth=depth,
        entries=tuple(
            LoreEntry(
                keys=([rf"/\b{rng.choice(words)}s?\b/i"] if i % 10 == 0 else rng.sample(words, 3)),
                secondary_keys=rng.sample(words, 2),
                selective=i % 2 == 0,
                content="lore " * 40,
            )
            for i in range(entries)
        ),
    )
    recent = [Scanned(f"beat {i}", " ".join(rng.sample(words, 60))) for i in range(depth)]
    return book, recent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", default="20,200,2000")
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--vocabulary", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    for size in (int(n) for n in args.entries.split(",")):
        book, recent = build(size, args.depth, args.vocabulary, seed=size)
        current = Scanned("the line", " ".join(f"word{i}" for i in range(0, 3000, 100)))
        activate([book], recent, current, max_tokens=2000)  # warm the pattern cache
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            result = activate([book], recent, current, max_tokens=2000)
            times.append((time.perf_counter() - started) * 1000)
        print(
            f"{size:>5} entries, depth {args.depth}: median {statistics.median(times):.2f} ms, "
            f"max {max(times):.2f} ms ({len(result.fired)} fired, "
            f"{len(result.over_budget)} over budget)"
        )


if __name__ == "__main__":
    main()
