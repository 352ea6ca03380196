"""Scale benchmark: turns per second and engine time per turn, one process or two on PostgreSQL.

    .venv/bin/python bench/scale.py --pg postgresql://postgres@127.0.0.1:54329/postgres
    .venv/bin/python bench/scale.py --pg URL --chats 50 --turns 4 --cap 8

Three runs against one loopback LLM server (this process) with ``--chats`` active chats in
all, every chat playing ``--turns`` turns one after another and all chats at once:

- one process, SQLite, its own LLM cap (``PriorityGate``);
- one process on PostgreSQL (``[storage] url``): the story in a PostgreSQL store, the LLM cap
  (``SharedGate``) and a chat lock per turn;
- two processes on one PostgreSQL, the chats split between them, one store and one cap.

Each process is ``tests/helpers/engine_process.py``; a PostgreSQL run keeps its story in a
fresh schema of the server given by ``--pg``. Reported: turns per second (all turns over the
wall time from the first turn's start to the last one's end), engine time per turn (the CPU
seconds of the engine processes over their turns: engine, store, LLM client and PostgreSQL
work, not the fake LLM's), wall time per turn (p50, p95; it includes waiting for the cap), and
the most LLM requests in flight at once, which must never pass ``--cap``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers.engine_process import scale_answers  # noqa: E402
from tests.helpers.llm_server import LoopbackLLMServer  # noqa: E402
from tests.helpers.stores import fresh_schema  # noqa: E402


async def _process(
    db: Path | str, server: LoopbackLLMServer, pg: str, chats: list[str], args: argparse.Namespace
) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.helpers.engine_process",
        *("--db", str(db), "--llm", server.base_url, "--pg", pg, "--cap", str(args.cap)),
        *("--chats", ",".join(chats), "--turns", str(args.turns)),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    ready = await asyncio.wait_for(process.stdout.readline(), 120)
    if ready != b"ready\n":
        raise SystemExit(f"an engine process did not start: {ready!r}")
    return process


async def _run(
    label: str, processes: int, pg: str, args: argparse.Namespace, server: LoopbackLLMServer
) -> dict[str, Any]:
    chats = [f"bench-{label}-{n}" for n in range(args.chats)]
    shares = [chats[i::processes] for i in range(processes)]
    async with contextlib.AsyncExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        store = ""
        if pg:  # the story itself in PostgreSQL, one store for every process of the run
            schema = await stack.enter_async_context(fresh_schema(pg))
            store = f"{pg}?search_path={schema}"
        started = [
            await _process(store or Path(tmp) / f"p{i}.db", server, pg, share, args)
            for i, share in enumerate(shares)
        ]
        server.reset_stats()
        for process in started:
            assert process.stdin is not None
            process.stdin.write(b"go\n")
            await process.stdin.drain()
        results = []
        for process in started:
            assert process.stdout is not None
            results.append(json.loads(await process.stdout.readline()))
            await process.wait()
    turns = [t for r in results for t in r["turns"]]
    failed = [t for t in turns if t["status"] != "done"]
    wall = max(t["end"] for t in turns) - min(t["start"] for t in turns)
    per_turn = sorted(t["end"] - t["start"] for t in turns)
    return {
        "label": label,
        "turns": len(turns),
        "failed": len(failed),
        "turns_per_s": len(turns) / wall,
        "cpu_ms": 1000 * sum(r["cpu"] for r in results) / len(turns),
        "p50_ms": 1000 * statistics.median(per_turn),
        "p95_ms": 1000 * per_turn[int(0.95 * (len(per_turn) - 1))],
        "max_in_flight": server.max_in_flight,
    }


async def main(args: argparse.Namespace) -> None:
    answers = partial(scale_answers, prompt_delay=args.latency, json_delay=args.latency / 2)
    runs = [("1 process, SQLite", 1, "")]
    if args.pg:
        runs += [("1 process, PostgreSQL", 1, args.pg), ("2 processes, PostgreSQL", 2, args.pg)]
    else:
        print("no --pg: the PostgreSQL runs are skipped", file=sys.stderr)
    reply_ms, json_ms = args.latency * 1000, args.latency * 500
    print(
        f"{args.chats} chats x {args.turns} turns, LLM cap {args.cap}, "
        f"fake LLM latency {reply_ms:.0f} ms (reply) / {json_ms:.0f} ms (JSON)"
    )
    print(
        f"{'run':<26}{'turns/s':>9}{'engine ms/turn':>16}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'in flight':>11}{'failed':>8}"
    )
    async with LoopbackLLMServer(answers) as server:
        for label, processes, pg in runs:
            r = await _run(label.replace(" ", "_").replace(",", ""), processes, pg, args, server)
            print(
                f"{label:<26}{r['turns_per_s']:>9.1f}{r['cpu_ms']:>16.1f}{r['p50_ms']:>9.0f}"
                f"{r['p95_ms']:>9.0f}{r['max_in_flight']:>8} /{args.cap:<2}{r['failed']:>8}"
            )
            if r["max_in_flight"] > args.cap:
                raise SystemExit(f"{label}: {r['max_in_flight']} requests in flight > cap")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg", default="", help="a PostgreSQL URL (e.g. from .ci/postgres)")
    parser.add_argument("--chats", type=int, default=50, help="active chats in all")
    parser.add_argument("--turns", type=int, default=4, help="turns per chat")
    parser.add_argument("--cap", type=int, default=8, help="[llm] max_concurrency")
    parser.add_argument("--latency", type=float, default=0.02, help="fake LLM seconds per reply")
    return parser


if __name__ == "__main__":
    asyncio.run(main(_parser().parse_args()))
