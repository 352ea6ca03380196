"""OpenAICompatibleClient against the loopback server: the real HTTP path, every fault."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from bot.config import LLMSettings, TimeoutSettings
from bot.llm import (
    LLMConnectionError,
    LLMError,
    LLMHTTPError,
    LLMProtocolError,
    LLMRateLimitedError,
    LLMStreamError,
    LLMTimeoutError,
    Message,
    OpenAICompatibleClient,
    Priority,
    Timeouts,
)
from bot.llm.retry import parse_retry_after
from tests.helpers.llm_server import TEST_API_KEY, LoopbackLLMServer, Reply, loopback_client

MSGS = [Message(role="system", content="be brief"), Message(role="user", content="hi")]
TRICKY = (
    'Hé 🙂 こんにちは\n\n  tabs\tand\r\nCRLF, a\u2028line sep, e\u0301 — "quotes" {braces} data: x'
)


async def collect(client: OpenAICompatibleClient, **params: Any) -> list[str]:
    return [p async for p in client.stream(MSGS, model="m", **params)]


async def test_stream_reassembles_tricky_text_exactly(
    llm_server: LoopbackLLMServer, llm_client: OpenAICompatibleClient
) -> None:
    llm_server.script(
        Reply.text(TRICKY),
        Reply.text(TRICKY, write_size=7, chunk_delay=0.001),  # lines and UTF-8 split across reads
        Reply.text(TRICKY, keepalive=True, chunks=list(TRICKY)),
    )
    for _ in range(3):
        assert "".join(await collect(llm_client)) == TRICKY
    assert llm_server.requests[0].stream


async def test_complete_and_params_pass_through(
    llm_server: LoopbackLLMServer, llm_client: OpenAICompatibleClient
) -> None:
    llm_server.script(Reply.text(TRICKY))
    text = await llm_client.complete(
        MSGS, model="org/model", temperature=0.3, top_p=0.9, max_tokens=50, seed=None
    )
    assert text == TRICKY
    body = llm_server.requests[0].json
    assert body == {
        "model": "org/model",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "stream": False,
        "temperature": 0.3,
        "top_p": 0.9,
        "max_tokens": 50,
    }
    assert llm_server.requests[0].path == "/v1/chat/completions"


async def test_auth_and_attribution_headers(
    llm_server: LoopbackLLMServer, llm_client: OpenAICompatibleClient
) -> None:
    await llm_client.complete(MSGS, model="m")
    headers = llm_server.requests[0].headers
    assert headers["authorization"] == f"Bearer {TEST_API_KEY}"
    assert headers["http-referer"] == "https://example.test/storybot"
    assert headers["x-title"] == "storybot-tests"
    assert headers["content-type"] == "application/json"


async def test_a_client_without_settings_has_the_settings_defaults() -> None:
    """The defaults live in bot/config.py alone; a bare client (tests, bench) uses them."""
    defaults = LLMSettings()
    async with OpenAICompatibleClient() as client:
        assert client.base_url == defaults.base_url
        assert client.timeouts == Timeouts.of(defaults.timeouts) == Timeouts()
        assert client.gate.limit == defaults.max_concurrency
        assert client.retry.max_retries == defaults.max_retries


async def test_from_settings(llm_server: LoopbackLLMServer) -> None:
    settings = LLMSettings(
        base_url=llm_server.base_url + "/",
        api_key="sk-settings",
        max_concurrency=3,
        app_url="https://app.example",
        app_title="My Bot",
        timeouts=TimeoutSettings(connect=1, first_token=2, idle=3, total=4),
    )
    async with OpenAICompatibleClient.from_settings(settings) as client:
        assert client.timeouts == Timeouts(1, 2, 3, 4)
        assert client.gate.limit == 3
        assert "".join(await collect(client)) == "echo: hi"
    headers = llm_server.requests[0].headers
    assert headers["authorization"] == "Bearer sk-settings"
    assert (headers["http-referer"], headers["x-title"]) == ("https://app.example", "My Bot")


async def test_429_retry_after_is_honoured(
    llm_server: LoopbackLLMServer, llm_client: OpenAICompatibleClient
) -> None:
    llm_server.script(Reply.status(429, retry_after=0.2), Reply.text("finally"))
    start = time.perf_counter()
    assert "".join(await collect(llm_client)) == "finally"
    assert time.perf_counter() - start >= 0.2
    assert len(llm_server.requests) == 2


@pytest.mark.parametrize(
    ("retry_after", "cap", "words"), [(3600, 30.0, "1 h"), (300, 30.0, "5 min"), (20, 60.0, "20 s")]
)
async def test_a_wait_longer_than_we_may_wait_is_told_plainly_at_once(
    llm_server: LoopbackLLMServer, retry_after: float, cap: float, words: str
) -> None:
    """Beyond the cap, or beyond the call's total deadline (10 s here): no sleep, no retry."""
    llm_server.script(*[Reply.status(429, retry_after=retry_after)] * 2)
    async with loopback_client(llm_server, retry_after_cap=cap) as client:
        started = time.monotonic()
        with pytest.raises(LLMRateLimitedError) as info:
            await client.complete(MSGS, model="m")
        with pytest.raises(LLMRateLimitedError):  # the stream the same way
            await collect(client)
    assert time.monotonic() - started < 1.0
    asked = f"the LLM provider asks us to wait {words}; try again later"
    assert info.value.public_reason == asked
    assert str(info.value).startswith(asked)
    assert len(llm_server.requests) == 2


async def test_a_retry_after_within_reach_is_waited_out(llm_server: LoopbackLLMServer) -> None:
    llm_server.script(Reply.status(503, retry_after=0.2), Reply.text("ok"))
    async with loopback_client(llm_server) as client:
        assert await client.complete(MSGS, model="m") == "ok"
    assert llm_server.requests[1].at - llm_server.requests[0].at >= 0.2


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("Thu, 01 Jan 2026 13:00:00 GMT", now) == 3600
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("120", now) == 120


@pytest.mark.parametrize("status", [500, 502, 503, 408])
async def test_transient_status_then_success(
    llm_server: LoopbackLLMServer, llm_client: OpenAICompatibleClient, status: int
) -> None:
    llm_server.script(Reply.status(status), Reply.text("streamed"), Reply.status(status))
    assert "".join(await collect(llm_client)) == "streamed"
    assert await llm_client.complete(MSGS, model="m") == "echo: hi"
    assert len(llm_server.requests) == 4


async def test_retries_give_up_after_max_retries(llm_server: LoopbackLLMServer) -> None:
    llm_server.script(*[Reply.status(429, message="slow down")] * 3)
    async with loopback_client(llm_server, max_retries=2) as client:
        with pytest.raises(LLMRateLimitedError, match=r"rate limiting us.*slow down") as info:
            await client.complete(MSGS, model="m")
    assert info.value.status == 429
    assert len(llm_server.requests) == 3


async def test_client_errors_are_not_retried(
    llm_server: LoopbackLLMServer, llm_client: OpenAICompatibleClient
) -> None:
    llm_server.script(Reply.status(401, message="invalid key"))
    with pytest.raises(LLMHTTPError, match="refused the API key") as info:
        await collect(llm_client)
    assert info.value.status == 401
    assert len(llm_server.requests) == 1


async def test_cut_after_text_is_an_error_without_retry_and_text_stays(
    llm_server: LoopbackLLMServer, llm_client: OpenAICompatibleClient
) -> None:
    llm_server.script(Reply.cut("The dragon turns"))
    got: list[str] = []
    with pytest.raises(LLMStreamError, match="dropped the connection"):
        async for piece in llm_client.stream(MSGS, model="m"):
            got.append(piece)
    assert "".join(got) == "The dragon turns"
    assert len(llm_server.requests) == 1


async def test_clean_end_without_markers_is_a_cut(
    llm_server: LoopbackLLMServer, llm_client: OpenAICompatibleClient
) -> None:
    llm_server.script(Reply.text("half an", finish_reason=None, done=False))
    got: list[str] = []
    with pytest.raises(LLMStreamError, match="cut the answer off mid-stream"):
        async for piece in llm_client.stream(MSGS, model="m"):
            got.append(piece)
    assert "".join(got) == "half an"
    assert len(llm_server.requests) == 1


async def test_cut_before_any_text_is_retried(
    llm_server: LoopbackLLMServer, llm_client: OpenAICompatibleClient
) -> None:
    llm_server.script(Reply.cut(""), Reply.text("second try"))
    assert "".join(await collect(llm_client)) == "second try"
    llm_server.script(Reply.cut("whole answers are retried"), Reply.text("ok"))
    assert await llm_client.complete(MSGS, model="m") == "ok"


async def test_malformed_chunk(
    llm_server: LoopbackLLMServer, llm_client: OpenAICompatibleClient
) -> None:
    llm_server.script(Reply.malformed("some"), Reply.malformed())
    with pytest.raises(LLMProtocolError, match="malformed stream chunk"):
        await collect(llm_client)
    with pytest.raises(LLMProtocolError, match="malformed response"):
        await llm_client.complete(MSGS, model="m")


async def test_error_object_in_stream(
    llm_server: LoopbackLLMServer, llm_client: OpenAICompatibleClient
) -> None:
    llm_server.script(Reply.error("model overloaded", "Once"), Reply.error("context too long"))
    with pytest.raises(LLMStreamError, match="error mid-stream: model overloaded"):
        await collect(llm_client)
    with pytest.raises(LLMStreamError, match="context too long"):
        await llm_client.complete(MSGS, model="m")
    assert len(llm_server.requests) == 2


@pytest.mark.parametrize("keepalive", [0.0, 0.02])
async def test_hang_before_first_token(llm_server: LoopbackLLMServer, keepalive: float) -> None:
    llm_server.script(Reply.hang(keepalive=keepalive))
    async with loopback_client(llm_server, timeouts=Timeouts(first_token=0.2)) as client:
        with pytest.raises(LLMTimeoutError, match=r"did not send a first token within 0\.2 s") as e:
            await collect(client)
    assert e.value.phase == "first_token"
    async with asyncio.timeout(1):
        await llm_server.disconnected.wait()
    assert len(llm_server.requests) == 1


async def test_no_response_headers_is_a_first_token_timeout(llm_server: LoopbackLLMServer) -> None:
    llm_server.script(Reply.hang(send_headers=False))
    async with loopback_client(llm_server, timeouts=Timeouts(first_token=0.1)) as client:
        with pytest.raises(LLMTimeoutError) as info:
            await client.complete(MSGS, model="m")
    assert info.value.phase == "first_token"


async def test_stall_mid_stream_is_an_idle_timeout(llm_server: LoopbackLLMServer) -> None:
    llm_server.script(Reply.hang("a few words"))
    got: list[str] = []
    async with loopback_client(llm_server, timeouts=Timeouts(first_token=2, idle=0.15)) as client:
        with pytest.raises(LLMTimeoutError, match=r"went silent for 0\.15 s") as info:
            async for piece in client.stream(MSGS, model="m"):
                got.append(piece)
    assert info.value.phase == "idle"
    assert "".join(got) == "a few words"


async def test_total_timeout(llm_server: LoopbackLLMServer) -> None:
    llm_server.script(Reply.text("word " * 40, chunk_delay=0.02))
    async with loopback_client(
        llm_server, timeouts=Timeouts(first_token=1, idle=1, total=0.25)
    ) as client:
        with pytest.raises(LLMTimeoutError, match=r"did not finish its answer within 0\.25 s") as e:
            await collect(client)
    assert e.value.phase == "total"


async def test_unreachable_server_is_a_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = OpenAICompatibleClient(f"http://127.0.0.1:{port}/v1", max_retries=1, backoff_base=0)
    async with client:
        with pytest.raises(LLMConnectionError, match="could not reach the LLM server"):
            await client.complete(MSGS, model="m")


async def test_never_more_than_max_concurrency_in_flight(
    llm_server: LoopbackLLMServer, llm_client: OpenAICompatibleClient
) -> None:
    llm_server.default = Reply.text("one two three four", chunk_delay=0.005)

    async def call(i: int) -> str:
        if i % 2:
            return await llm_client.complete(MSGS, model="m")
        return "".join(await collect(llm_client))

    results = await asyncio.gather(*(call(i) for i in range(10)))
    assert results == ["one two three four"] * 10
    assert llm_server.max_in_flight == 2
    assert len(llm_server.requests) == 10
    assert llm_client.gate.in_use == 0


async def test_cancel_mid_stream_hangs_up_at_once_and_frees_the_slot(
    llm_server: LoopbackLLMServer,
) -> None:
    llm_server.script(Reply.text("word " * 500, chunk_delay=0.02))
    async with loopback_client(llm_server, max_concurrency=1) as client:
        started = asyncio.Event()

        async def consume() -> None:
            async for _ in client.stream(MSGS, model="m"):
                started.set()

        task = asyncio.create_task(consume())
        await started.wait()
        cancelled_at = asyncio.get_running_loop().time()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with asyncio.timeout(1):
            await llm_server.disconnected.wait()
        assert llm_server.disconnect_times[0] - cancelled_at < 0.05
        assert client.gate.in_use == 0
        start = time.perf_counter()
        assert await client.complete(MSGS, model="m") == "echo: hi"
        assert time.perf_counter() - start < 0.1
    assert llm_server.disconnects == 1


async def test_closing_the_generator_hangs_up(llm_server: LoopbackLLMServer) -> None:
    llm_server.script(Reply.hang("some text then silence"))
    async with loopback_client(llm_server, max_concurrency=1) as client:
        async with aclosing(client.stream(MSGS, model="m")) as stream:
            assert await anext(stream) == "some "
        async with asyncio.timeout(1):
            await llm_server.disconnected.wait()
        assert client.gate.in_use == 0


async def test_narrative_waiter_jumps_the_background_queue(llm_server: LoopbackLLMServer) -> None:
    llm_server.script(Reply.hang("blocking"))
    async with loopback_client(llm_server, max_concurrency=1) as client:
        blocker = client.stream(MSGS, model="blocker")
        assert await anext(blocker) == "blocking"
        background = [
            asyncio.create_task(client.complete(MSGS, model=f"bg{i}", priority=Priority.BACKGROUND))
            for i in range(3)
        ]
        await asyncio.sleep(0.01)
        narrative = asyncio.create_task(collect_model(client, "narrative"))
        await asyncio.sleep(0.01)
        assert client.gate.waiting == 4
        await blocker.aclose()
        await asyncio.gather(narrative, *background)
    models = [r.json["model"] for r in llm_server.requests]
    assert models == ["blocker", "narrative", "bg0", "bg1", "bg2"]


async def collect_model(client: OpenAICompatibleClient, model: str) -> str:
    return "".join([p async for p in client.stream(MSGS, model=model)])


async def test_slot_is_free_during_retry_backoff(llm_server: LoopbackLLMServer) -> None:
    llm_server.script(Reply.status(503, retry_after=0.2), Reply.text("b"), Reply.text("a"))
    async with loopback_client(llm_server, max_concurrency=1) as client:
        first = asyncio.create_task(client.complete(MSGS, model="a"))
        await asyncio.sleep(0.05)  # `a` got its 503 and is backing off
        assert await client.complete(MSGS, model="b") == "b"
        assert await first == "a"
    assert [r.json["model"] for r in llm_server.requests] == ["a", "b", "a"]


async def test_api_key_never_leaks(
    llm_server: LoopbackLLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    llm_server.script(
        Reply.status(500, message=f"key {TEST_API_KEY} exploded"),
        Reply.status(401, message=f"bad key {TEST_API_KEY}"),
        Reply.error(f"stream says {TEST_API_KEY}"),
    )
    errors: list[LLMError] = []
    async with loopback_client(llm_server) as client:
        assert TEST_API_KEY not in repr(client)
        for _ in range(2):
            with pytest.raises(LLMError) as info:
                await client.complete(MSGS, model="m")
            errors.append(info.value)
    assert len(llm_server.requests) == 3
    for exc in errors:
        assert TEST_API_KEY not in str(exc) and TEST_API_KEY not in repr(exc)
        assert "***" in str(exc)
    assert "retry 1 of 3" in caplog.text
    assert TEST_API_KEY not in caplog.text


async def test_connect_timeout_is_retried_then_named() -> None:
    attempts = 0

    def refuse(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        raise httpx.ConnectTimeout("timed out", request=request)

    client = OpenAICompatibleClient(
        "http://llm.invalid/v1",
        max_retries=2,
        backoff_base=0,
        timeouts=Timeouts(connect=0.5),
        transport=httpx.MockTransport(refuse),
    )
    async with client:
        with pytest.raises(LLMTimeoutError, match=r"could not connect .* within 0\.5 s") as info:
            await collect(client)
    assert info.value.phase == "connect"
    assert attempts == 3
