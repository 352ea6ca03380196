"""Engine benchmark: overhead per turn, prompt size and LLM calls at 10, 1,000 and 10,000 turns.

    .venv/bin/python bench/engine.py                       # 10, 1,000 and 10,000 prior turns
    .venv/bin/python bench/engine.py --sizes 10,1000 --turns 100
    .venv/bin/python bench/engine.py --profile             # cProfile the turns at the last size

Each size gets a file database in a temporary directory holding one story (you, a host and a
guest all present) with that many prior turns: played for real through the engine up to
``--direct-above`` turns, above that appended straight to the store in batches shaped like the
events of real turns (turn_started, user_turn, assistant_turn, a memory per witness, an
edge_update per directed pair), with a scene close every 40 turns. Then ``--turns`` more turns
are played through ``engine.turns.take`` against a zero-latency fake LLM, so their wall time is
the engine's own overhead. Last, with every LLM call taking ``--latency`` seconds before its
first token, the time from the player's line to the first streamed text is measured: it should
be one round trip, because classification runs beside the stream.

Every state update learns a new fact about each other character, as a long story does. After
the turns, the last reply is regenerated and the last beat rewound (then played again) a few
times; last, scenes of ``--close-sizes`` beats are closed, recording the largest prompt sent.

Targets: < 3 ms overhead per turn, flat (±10%) across history sizes; first text after one LLM
round trip; regenerate and rewind < 100 ms, flat (±20%); every prompt within the budget.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import importlib.util
import json
import os
import pstats
import re
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config import Settings
from bot.engine import BeatEnd, Engine, Speaker
from bot.engine.beat_events import add_memories, turn_events
from bot.engine.prompts import prompt_tokens
from bot.llm import Message, Priority, Purpose, Task
from bot.store import YOU, Database, append, append_events, open_db
from bot.store.db import SqliteDatabase
from bot.store.events import EdgeUpdate, TurnStarted

OVERHEAD_TARGET_MS = 3.0
FLATNESS = 0.10
REWIND_TARGET_MS = 100.0
REWIND_FLATNESS = 0.20
REBUILD_TARGET = 50_000
TURNS_PER_SCENE = 40
HOST, GUEST = "mira", "tomas"
CHAT = "bench"
REPLY_CHUNKS = (
    "*Mira sets the lantern on the table and leans in.* ",
    '"The harbour master was not at his post tonight, ',
    "and the ledger was open to a page I have never seen before. ",
    'Someone tore out the entry for the ninth."',
)
REPLY = "".join(REPLY_CHUNKS)
PROSES = (
    'I glance at the door. "Who else knew about the ledger?" I keep my hand on the key.',
    "Tomás, you were on the water that night. What did you see from the pilot boat?",
    "*I turn the cup slowly.* The ninth. That was the night of the fog, wasn't it?",
)
TARGET_ID = re.compile(r"\(id ([\w-]+), affinity")


class FakeLLM:
    """Answers every call at once (or after ``latency``) and counts calls by kind."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.counts: Counter[str] = Counter()
        self.prompt_sizes: list[int] = []
        self.json_prompt_sizes: list[int] = []
        self.facts = 0

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        priority: Priority = Priority.BACKGROUND,
        purpose: Purpose | None = None,
        **params: Any,
    ) -> str:
        task = purpose.task if purpose is not None else None
        self.json_prompt_sizes.append(prompt_tokens(list(messages)))
        if task is Task.CLASSIFY:
            kind = "classify"
            answer: object = {"segments": [{"kind": "action", "text": messages[-1].content}]}
        elif task is Task.STATE:
            kind = "state update"
            self.facts += 1  # a new fact learned on every state update, as a long story does
            answer = {
                "relationships": [
                    {
                        "target_id": t,
                        "affinity_delta": 1,
                        "trust_delta": 1,
                        "knowledge_facts": [f"learned thing number {self.facts} about {t}"],
                    }
                    for t in TARGET_ID.findall(messages[-1].content)
                ]
            }
        elif task is Task.DIGEST:
            kind, answer = "digest", {"summary": "While you were away, not much happened."}
        elif task is Task.THREADS:
            kind, answer = "threads", {"threads": []}
        else:  # a summary, or a chunk of a long scene condensed
            kind, answer = "summary", {"summary": "A long night at the Lantern."}
        self.counts[kind] += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        return json.dumps(answer)

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        priority: Priority = Priority.NARRATIVE,
        purpose: Purpose | None = None,
        **params: Any,
    ) -> AsyncIterator[str]:
        self.counts["narrative"] += 1
        self.prompt_sizes.append(prompt_tokens(list(messages)))
        if self.latency:
            await asyncio.sleep(self.latency)
        for chunk in REPLY_CHUNKS:
            yield chunk


@dataclass
class TimingSink:
    """Notes when the first text of a beat arrives."""

    first_text: float | None = None
    chunks: list[str] = field(default_factory=list)

    async def begin(self, speaker: Speaker) -> None:
        return None

    async def append(self, text: str) -> None:
        if self.first_text is None:
            self.first_text = time.perf_counter()
        self.chunks.append(text)

    async def end(self, outcome: BeatEnd) -> Sequence[int]:
        return ()


class QueryTimer:
    """Times every store call (a query by its SQL text, a read or write by its function)
    while active."""

    def __init__(self) -> None:
        self.stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
        self._saved: dict[str, Any] = {}

    def __enter__(self) -> QueryTimer:
        for name in ("fetchall", "fetchone", "read", "write"):
            original = getattr(SqliteDatabase, name)
            self._saved[name] = original
            setattr(SqliteDatabase, name, self._wrap(name, original))
        return self

    def __exit__(self, *exc: object) -> None:
        for name, original in self._saved.items():
            setattr(SqliteDatabase, name, original)

    def _wrap(self, name: str, original: Any) -> Any:
        stats = self.stats

        async def timed(db: Database, first: Any, *args: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(db, first, *args)
            finally:
                key = (
                    f"{name} {getattr(first, '__qualname__', first)}"
                    if name in ("read", "write")
                    else " ".join(str(first).split())[:100]
                )
                stats[key][0] += 1
                stats[key][1] += time.perf_counter() - started

        return timed

    def report(self, turns: int) -> None:
        print(f"{'ms/turn':>8} {'calls':>6}  query")
        for key, (count, seconds) in sorted(self.stats.items(), key=lambda kv: -kv[1][1])[:12]:
            print(f"{seconds / turns * 1000:>8.2f} {count / turns:>6.1f}  {key}")


async def _seed(engine: Engine) -> tuple[str, int]:
    for bot_id, name in ((HOST, "Mira Vale"), (GUEST, "Tomás Reyes")):
        await engine.characters.author(
            {
                "id": bot_id,
                "name": name,
                "persona": f"{name} keeps the harbour's secrets. " * 8,
                "traits": ["observant", "wry"],
                "voice_samples": ['"Coffee\'s on the house if you tell me something new."'],
                "kickoff_prose": "*Rain ticks against the Lantern's windows.*",
            }
        )
    await engine.characters.set_you(
        name="Ash", pronouns="they/them", persona="A courier who arrives late."
    )
    started = await engine.chats.start(
        host_id=HOST, guest_id=GUEST, place="the Lantern", weather="rain", chat_id=CHAT
    )
    return started.chat.id, started.scene_id


async def _direct_turn(db: Database, scene_id: int, n: int) -> None:
    """The events one real you_host_guest turn writes, built by the pipeline's own functions:
    its turn_started, then the beat (line, reply, a memory per witness) and its state updates."""
    prose = PROSES[n % len(PROSES)] + f" ({n})"
    speaker = GUEST if n % len(PROSES) == 1 else HOST
    present = [YOU, HOST, GUEST]
    started = TurnStarted(
        chat_id=CHAT,
        scene_id=scene_id,
        speaker_id=speaker,
        prose=prose,
        present_set_kind="you_host_guest",
        witnesses=present,
    )
    started_id = await append(db, started)
    text = f"Ash: {prose}\n{'Tomás Reyes' if speaker == GUEST else 'Mira Vale'}: {REPLY}"
    beat = turn_events(started, started_id, text=REPLY, status="done")
    add_memories(
        beat.batch,
        chat_id=CHAT,
        scene_id=scene_id,
        witnesses=present,
        cast=(HOST, GUEST),
        text=text,
        beat=beat.reply,
    )
    ids = await append_events(db, beat.batch)
    reply_id = ids[beat.reply.index]
    updates = [
        EdgeUpdate(
            source_id=source,
            target_id=target,
            chat_id=CHAT,
            affinity_delta=(n % 3) - 1,
            trust_delta=(n % 5) - 2,
            knowledge_facts=[f"{source} learned fact {n} about {target}"],
            beat_id=reply_id,
        )
        for source in (HOST, GUEST)
        for target in present
        if target != source
    ]
    await append_events(db, updates)


async def _close_and_open(db: Database, scene_id: int) -> int:
    row = await db.fetchone("SELECT container_id FROM scenes WHERE id = ?", (scene_id,))
    ids = await append_events(
        db,
        [
            ("scene_closed", {"scene_id": scene_id, "closed_at": "t", "chat_id": CHAT}),
            (
                "scene_opened",
                {
                    "chat_id": CHAT,
                    "container_id": row[0] if row else 0,
                    "started_at": "t",
                    "participants": [YOU, HOST, GUEST],
                },
            ),
        ],
    )
    return ids[1]


async def _build_history(engine: Engine, db: Database, turns: int, *, direct: bool) -> None:
    chat_id, scene_id = await _seed(engine)
    sink = TimingSink()
    for n in range(turns):
        if n and n % TURNS_PER_SCENE == 0:
            if direct:
                scene_id = await _close_and_open(db, scene_id)
            else:
                await engine.scenes.close(chat_id)
        if direct:
            await _direct_turn(db, scene_id, n)
        else:
            await engine.turns.take(chat_id, PROSES[n % len(PROSES)] + f" ({n})", sink)


@dataclass
class SizeResult:
    history: int
    build_seconds: float
    turn_ms: list[float]
    prompt_tokens: list[int]
    calls_per_turn: dict[str, float]
    first_text_ms: list[float]
    turn_with_latency_ms: list[float]
    regenerate_ms: list[float] = field(default_factory=list)
    rewind_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    """Process CPU time per turn (both threads): what the turn costs whatever the load."""
    trips: int = 0
    """Trips to the store's thread in the measured turns."""


@dataclass
class Prepared:
    """One size's story, open, with its engine, ready for turns."""

    history: int
    db: Database
    engine: Engine
    llm: FakeLLM
    result: SizeResult
    calls: Counter[str] = field(default_factory=Counter)
    """LLM calls of the measured turns, by kind."""


async def prepare(
    history: int, directory: Path, stack: contextlib.AsyncExitStack, *, direct_above: int
) -> Prepared:
    """Open a database of ``history`` prior turns (kept open in ``stack``) and warm it up."""
    db = await stack.enter_async_context(open_db(directory / f"engine-{history}.db"))
    llm = FakeLLM()
    engine = Engine(db, llm, Settings())
    started = time.perf_counter()
    await _build_history(engine, db, history, direct=history > direct_above)
    build_seconds = time.perf_counter() - started
    # warm up (first-use caches, statement preparation), then measure
    for n in range(3):
        await engine.turns.take(CHAT, PROSES[n % len(PROSES)], TimingSink())
    llm.counts.clear()
    llm.prompt_sizes.clear()
    result = SizeResult(history, build_seconds, [], [], {}, [], [])
    return Prepared(history, db, engine, llm, result)


async def measure_turns(ready: Prepared, turns: int, *, profile: bool = False) -> None:
    """Play ``turns`` turns against the zero-latency LLM, timing each (wall and CPU)."""
    profiler = cProfile.Profile() if profile else None
    timer = QueryTimer() if profile else None
    result = ready.result
    calls_before, sizes_before = Counter(ready.llm.counts), len(ready.llm.prompt_sizes)
    with timer or contextlib.nullcontext(), TripCounter() as trips:
        for n in range(turns):
            prose = PROSES[n % len(PROSES)] + f" (bench {len(result.turn_ms)})"
            if profiler:
                profiler.enable()
            started, cpu = time.perf_counter(), time.process_time()
            await ready.engine.turns.take(CHAT, prose, TimingSink())
            result.turn_ms.append((time.perf_counter() - started) * 1000)
            result.cpu_ms.append((time.process_time() - cpu) * 1000)
            if profiler:
                profiler.disable()
    result.trips += trips.count
    ready.calls += ready.llm.counts - calls_before
    result.prompt_tokens += ready.llm.prompt_sizes[sizes_before:]
    result.calls_per_turn = {k: n / len(result.turn_ms) for k, n in sorted(ready.calls.items())}
    if profiler and timer:
        print(f"\n--- {turns} turns after {ready.history:,} turns: store calls, as awaited ---")
        timer.report(turns)
        print("--- cProfile of the same turns (event-loop thread; SQL runs on aiosqlite's) ---")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


async def measure_rewinds(ready: Prepared, repeats: int) -> None:
    regenerate_ms, rewind_ms = await _rewinds(ready.engine, ready.db, repeats=repeats)
    ready.result.regenerate_ms += regenerate_ms
    ready.result.rewind_ms += rewind_ms


async def measure_latency(ready: Prepared, turns: int, latency: float) -> None:
    """With every LLM call taking ``latency`` s, the time to the first streamed text."""
    result = ready.result
    ready.llm.latency = latency
    for n in range(turns):
        sink = TimingSink()
        started = time.perf_counter()
        await ready.engine.turns.take(CHAT, PROSES[n % len(PROSES)] + f" (latency {n})", sink)
        ended = time.perf_counter()
        assert sink.first_text is not None
        result.first_text_ms.append((sink.first_text - started) * 1000)
        result.turn_with_latency_ms.append((ended - started) * 1000)
    ready.llm.latency = 0.0


async def _rewinds(
    engine: Engine, db: Database, *, repeats: int
) -> tuple[list[float], list[float]]:
    """Regenerate the last reply, and rewind the last beat (then play it again), ``repeats``
    times each: both should cost what they undo, not the story before it."""
    regenerate_ms, rewind_ms = [], []
    for n in range(repeats):
        started = time.perf_counter()
        await engine.history.regenerate(CHAT, TimingSink())
        regenerate_ms.append((time.perf_counter() - started) * 1000)
        rows = await db.fetchall(
            "SELECT id FROM turns WHERE chat_id = ? AND role = 'assistant' ORDER BY id DESC "
            "LIMIT 2",
            (CHAT,),
        )
        started = time.perf_counter()
        await engine.history.rewind_to_turn(CHAT, rows[1][0])
        rewind_ms.append((time.perf_counter() - started) * 1000)
        await engine.turns.take(CHAT, PROSES[n % len(PROSES)] + f" (again {n})", TimingSink())
    return regenerate_ms, rewind_ms


@dataclass
class CloseResult:
    beats: int
    seconds: float
    largest_prompt: int
    calls: int


async def bench_close(beats: int, directory: Path) -> CloseResult:
    """Close a scene of ``beats`` beats: the largest prompt sent and the time it takes."""
    async with open_db(directory / f"close-{beats}.db") as db:
        llm = FakeLLM()
        engine = Engine(db, llm, Settings())
        _, scene_id = await _seed(engine)
        for n in range(beats):
            await _direct_turn(db, scene_id, n)
        llm.json_prompt_sizes.clear()
        llm.counts.clear()
        started = time.perf_counter()
        await engine.scenes.close(CHAT)
        seconds = time.perf_counter() - started
        return CloseResult(
            beats, seconds, max(llm.json_prompt_sizes, default=0), sum(llm.counts.values())
        )


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def report(results: list[SizeResult], *, latency: float, budget: int) -> bool:
    print(
        f"\n{'prior turns':>11} | {'build':>7} | {'overhead/turn ms':^24} | "
        f"{'prompt tokens':^15} | {'first text ms':^15} | {'turn ms':>7}"
    )
    print(
        f"{'':>11} | {'s':>7} | {'mean':>7} {'median':>7} {'p95':>7} | "
        f"{'mean':>7} {'max':>7} | {'median':>7} {'max':>7} | {'median':>7}"
    )
    for r in results:
        print(
            f"{r.history:>11,} | {r.build_seconds:>7.1f} | {statistics.fmean(r.turn_ms):>7.2f} "
            f"{statistics.median(r.turn_ms):>7.2f} {_p95(r.turn_ms):>7.2f} | "
            f"{statistics.fmean(r.prompt_tokens):>7.0f} {max(r.prompt_tokens):>7} | "
            f"{statistics.median(r.first_text_ms):>7.1f} {max(r.first_text_ms):>7.1f} | "
            f"{statistics.median(r.turn_with_latency_ms):>7.1f}"
        )
    print(f"\nLLM calls per turn (you, host and guest present): {results[0].calls_per_turn}")
    print(
        "store trips per turn: "
        + ", ".join(f"{r.trips / len(r.turn_ms):.1f} at {r.history:,}" for r in results)
    )
    print(f"\n{'prior turns':>11} | {'regenerate ms':^15} | {'rewind last beat ms':^19}")
    for r in results:
        print(
            f"{r.history:>11,} | {statistics.median(r.regenerate_ms):>7.1f} "
            f"{max(r.regenerate_ms):>7.1f} | {statistics.median(r.rewind_ms):>9.1f} "
            f"{max(r.rewind_ms):>9.1f}   (median, max)"
        )
    rewind_medians = [
        m
        for r in results
        for m in (statistics.median(r.regenerate_ms), statistics.median(r.rewind_ms))
    ]
    rewinds_fast = all(m < REWIND_TARGET_MS for m in rewind_medians)
    rewinds_flat = all(
        abs(statistics.median(getattr(r, k)) - statistics.median(getattr(results[0], k)))
        <= REWIND_FLATNESS * statistics.median(getattr(results[0], k))
        for r in results
        for k in ("regenerate_ms", "rewind_ms")
    )
    print(
        f"regenerate and rewind < {REWIND_TARGET_MS:g} ms: {'ok' if rewinds_fast else 'MISSED'}; "
        f"flat ±{REWIND_FLATNESS:.0%}: {'ok' if rewinds_flat else 'MISSED'}"
    )
    medians = [statistics.median(r.turn_ms) for r in results]
    base = medians[0]
    worst = max(medians)
    flat = all(abs(m - base) <= FLATNESS * base for m in medians)
    fast = worst < OVERHEAD_TARGET_MS
    round_trip = latency * 1000
    first_ok = all(statistics.median(r.first_text_ms) < round_trip * 1.5 for r in results)
    prompt_ok = all(max(r.prompt_tokens) <= budget + 100 for r in results)
    print(
        f"overhead < {OVERHEAD_TARGET_MS:g} ms: {'ok' if fast else 'MISSED'} "
        f"(worst median {worst:.2f} ms); flat ±{FLATNESS:.0%}: "
        f"{'ok' if flat else 'MISSED'} ({', '.join(f'{m:.2f}' for m in medians)} ms); "
        f"first text in one {round_trip:.0f} ms round trip: {'ok' if first_ok else 'MISSED'}; "
        f"prompt within the {budget:,}-token budget: {'ok' if prompt_ok else 'MISSED'}"
    )
    return fast and flat and first_ok and prompt_ok and rewinds_fast and rewinds_flat


def report_close(results: list[CloseResult], *, budget: int) -> bool:
    print(
        f"\n{'scene beats':>11} | {'close s':>8} | {'largest prompt (tokens)':>23} | {'calls':>5}"
    )
    for r in results:
        print(f"{r.beats:>11,} | {r.seconds:>8.2f} | {r.largest_prompt:>23,} | {r.calls:>5}")
    ok = all(r.largest_prompt <= budget + 100 for r in results)
    print(f"scene-close prompts within the {budget:,}-token budget: {'ok' if ok else 'MISSED'}")
    return ok


QUICK = {"sizes": "10,100,1000", "close_sizes": "10,100,1000", "rebuild_sizes": "13000,100000"}
"""``--quick``: smaller stories, the same figures (for a check while working)."""


class TripCounter:
    """Counts trips to the store's thread (every read and write goes through ``run``)."""

    def __init__(self) -> None:
        self.count = 0
        self._original: Any = None

    def __enter__(self) -> TripCounter:
        self._original = original = SqliteDatabase.run

        async def counted(db: SqliteDatabase, work: Any) -> Any:
            self.count += 1
            return await original(db, work)

        SqliteDatabase.run = counted  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        SqliteDatabase.run = self._original  # type: ignore[method-assign]


def _load_store_bench() -> Any:
    """bench/store.py, for the rebuild figure (bench/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(
        "store_bench", Path(__file__).with_name("store.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sizes(text: str) -> list[int]:
    return [int(s.replace("_", "")) for s in text.split(",") if s.strip()]


def report_issue(
    results: list[SizeResult],
    closes: list[CloseResult],
    rebuilds: list[dict[str, float]],
    *,
    load: tuple[float, float],
) -> None:
    """The issue's four figures together, each with its goal, from this one run."""
    print(
        "\n=== flat cost at any story length, this run "
        f"(load average {load[0]:.1f} -> {load[1]:.1f} on {os.cpu_count()} cores) ==="
    )
    turn = [statistics.median(r.turn_ms) for r in results]
    cpu = [statistics.median(r.cpu_ms) for r in results]
    prompts = [max(r.prompt_tokens) for r in results]
    sizes = " / ".join(f"{r.history:,}" for r in results)
    print(
        f"per-turn engine time at {sizes} prior beats (median ms, wall): "
        + " / ".join(f"{m:.2f}" for m in turn)
        + f"  [goal < {OVERHEAD_TARGET_MS:g}, last within {FLATNESS:.0%} of first: "
        + (
            "ok"
            if max(turn) < OVERHEAD_TARGET_MS and abs(turn[-1] - turn[0]) <= FLATNESS * turn[0]
            else "MISSED"
        )
        + "]"
    )
    print(
        "  CPU per turn (median ms, both threads): "
        + " / ".join(f"{m:.2f}" for m in cpu)
        + "; largest prompt (tokens): "
        + " / ".join(f"{m:,}" for m in prompts)
    )
    for label, key in (("regenerate", "regenerate_ms"), ("rewind", "rewind_ms")):
        medians = [statistics.median(getattr(r, key)) for r in results]
        ok = max(medians) < REWIND_TARGET_MS and all(
            abs(m - medians[0]) <= REWIND_FLATNESS * medians[0] for m in medians
        )
        print(
            f"{label} of the last beat at {sizes} (median ms): "
            + " / ".join(f"{m:.1f}" for m in medians)
            + f"  [goal < {REWIND_TARGET_MS:g}, flat within {REWIND_FLATNESS:.0%}: "
            + ("ok]" if ok else "MISSED]")
        )
    if closes:
        print(
            f"scene close after {_joined(c.beats for c in closes)} beats: largest prompt "
            f"{_joined(c.largest_prompt for c in closes)} tokens, "
            f"{_joined((c.seconds for c in closes), '.2f')} s, "
            f"{_joined(c.calls for c in closes)} calls"
        )
    if rebuilds:
        ok = rebuilds[-1]["rebuild"] >= REBUILD_TARGET
        print(
            f"rebuild at {_joined(int(r['events']) for r in rebuilds)} events (facts on the "
            f"edges): {_joined((r['rebuild'] for r in rebuilds), ',.0f')} events/s  [goal >= "
            f"{REBUILD_TARGET:,} at the largest: {'ok' if ok else 'MISSED'}]"
        )


def _joined(values: Iterable[float], spec: str = ",") -> str:
    return " / ".join(format(v, spec) for v in values)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="10,1000,10000", help="prior turns, comma-separated")
    parser.add_argument("--turns", type=int, default=60, help="measured turns per size")
    parser.add_argument(
        "--rounds",
        type=int,
        default=6,
        help="the turns are played in this many rounds, each visiting every size in turn, so a "
        "change of load on a shared machine falls on every size alike",
    )
    parser.add_argument("--latency", type=float, default=0.1, help="fake LLM latency (s)")
    parser.add_argument(
        "--direct-above",
        type=int,
        default=1000,
        help="build histories longer than this by appending events (default 1000)",
    )
    parser.add_argument(
        "--close-sizes", default="10,1000,10000", help="beats in the closed scene ('' to skip)"
    )
    parser.add_argument(
        "--rebuild-sizes",
        default="13000,100000,1000000",
        help="events in the log rebuilt by bench/store.py ('' to skip)",
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes: " + str(QUICK))
    parser.add_argument("--profile", action="store_true", help="cProfile the last size's turns")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the databases")
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    sizes = _sizes(args.sizes)
    rounds = max(1, min(args.rounds, args.turns))
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="storybot-engine-bench-") as tmp:
        async with contextlib.AsyncExitStack() as stack:
            ready = []
            for size in sizes:
                ready.append(await prepare(size, Path(tmp), stack, direct_above=args.direct_above))
                print(
                    f"{size:>7,} prior turns: built in {ready[-1].result.build_seconds:.1f} s",
                    flush=True,
                )
            for round_ in range(rounds):
                for i, one in enumerate(ready):
                    last = round_ == rounds - 1 and i == len(ready) - 1
                    await measure_turns(one, args.turns // rounds, profile=args.profile and last)
                    await measure_rewinds(one, max(1, args.turns // 10 // rounds))
            for one in ready:
                await measure_latency(one, max(5, args.turns // 10), args.latency)
                r = one.result
                print(
                    f"{one.history:>7,} prior turns: median overhead "
                    f"{statistics.median(r.turn_ms):.2f} ms/turn "
                    f"(CPU {statistics.median(r.cpu_ms):.2f} ms)",
                    flush=True,
                )
        results = [one.result for one in ready]
        closes = [await bench_close(n, Path(tmp)) for n in _sizes(args.close_sizes)]
    rebuild_sizes = _sizes(args.rebuild_sizes)
    rebuilds: list[dict[str, float]] = []
    if rebuild_sizes:
        store_bench = _load_store_bench()
        print("\nrebuild (bench/store.py):")
        with tempfile.TemporaryDirectory(dir=args.dir, prefix="storybot-store-bench-") as tmp:
            rebuilds = [
                await store_bench.bench_size(n, Path(tmp), profile=False) for n in rebuild_sizes
            ]
    budget = Settings().engine.prompt_token_budget
    ok = report(results, latency=args.latency, budget=budget)
    ok = report_close(closes, budget=budget) and ok
    report_issue(results, closes, rebuilds, load=(load_before, os.getloadavg()[0]))
    if rebuilds:
        ok = ok and rebuilds[-1]["rebuild"] >= REBUILD_TARGET
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
