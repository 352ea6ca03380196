"""Bench the LLM client against the loopback server: per-chunk overhead and hang-up latency.

Run: .venv/bin/python bench/llm.py [--chunks 5000] [--trials 50]

Client and server share one event loop, so "wall per chunk" includes the server's work too;
the raw-httpx baseline streams the same body without SSE/JSON parsing, timeouts or the gate,
and the difference is the client's own overhead per chunk.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bot.llm import Message
from bot.llm.sse import ChatStreamDecoder
from tests.helpers.llm_server import LoopbackLLMServer, Reply, loopback_client, sse_events

MSGS = [Message(role="user", content="bench")]


async def client_pass(server: LoopbackLLMServer, chunks: int) -> tuple[float, int]:
    server.script(Reply.text(chunks=["tok "] * chunks))
    async with loopback_client(server) as client:
        start = time.perf_counter()
        n = 0
        async for _ in client.stream(MSGS, model="bench"):
            n += 1
        return time.perf_counter() - start, n


async def raw_pass(server: LoopbackLLMServer, chunks: int) -> float:
    server.script(Reply.text(chunks=["tok "] * chunks))
    body = {"model": "bench", "messages": [{"role": "user", "content": "x"}], "stream": True}
    async with httpx.AsyncClient(timeout=None) as http:
        start = time.perf_counter()
        async with http.stream("POST", server.base_url + "/chat/completions", json=body) as resp:
            async for _ in resp.aiter_text():
                pass
        return time.perf_counter() - start


def decoder_pass(chunks: int) -> float:
    body = b"".join(sse_events(Reply.text(chunks=["tok "] * chunks), "bench")).decode()
    start = time.perf_counter()
    decoder = ChatStreamDecoder()
    decoder.feed(body)
    decoder.close()
    return time.perf_counter() - start


async def hangup_latency(server: LoopbackLLMServer, trials: int) -> list[float]:
    loop = asyncio.get_running_loop()
    latencies = []
    async with loopback_client(server, max_concurrency=1) as client:
        for _ in range(trials):
            server.script(Reply.text("word " * 2000, chunk_delay=0.005))
            server.disconnected.clear()
            first = asyncio.Event()

            async def consume(first: asyncio.Event) -> None:
                async for _ in client.stream(MSGS, model="bench"):
                    first.set()

            task = asyncio.create_task(consume(first))
            await first.wait()
            cancelled_at = loop.time()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            async with asyncio.timeout(2):
                await server.disconnected.wait()
            latencies.append(server.disconnect_times[-1] - cancelled_at)
    return latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main(chunks: int, trials: int) -> None:
    async with LoopbackLLMServer() as server:
        await client_pass(server, 200)  # warm up
        client_runs = [await client_pass(server, chunks) for _ in range(3)]
        raw_runs = [await raw_pass(server, chunks) for _ in range(3)]
        client_s = min(t for t, _ in client_runs)
        got = client_runs[0][1]
        raw_s = min(raw_runs)
        parse_s = min(decoder_pass(chunks) for _ in range(3))
        print(f"streamed {chunks} chunks ({got} text deltas reached the caller), best of 3:")
        print(f"  client end to end : {client_s * 1e6 / chunks:7.1f} us/chunk (server included)")
        print(f"  raw httpx baseline: {raw_s * 1e6 / chunks:7.1f} us/chunk (same server)")
        print(f"  client overhead   : {(client_s - raw_s) * 1e6 / chunks:7.1f} us/chunk")
        print(f"  of which SSE+JSON : {parse_s * 1e6 / chunks:7.1f} us/chunk (pure decoder)")
        lat = await hangup_latency(server, trials)
        print(f"cancel -> server sees disconnect, {trials} trials:")
        print(
            f"  median {statistics.median(lat) * 1e3:.2f} ms, p95 {pct(lat, 0.95) * 1e3:.2f} ms,"
            f" max {max(lat) * 1e3:.2f} ms (target < 50 ms)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--chunks", type=int, default=5000)
    parser.add_argument("--trials", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.chunks, args.trials))
