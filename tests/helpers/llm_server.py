"""A loopback OpenAI-compatible chat-completions server for tests and benches.

Hand-written HTTP/1.1 on ``asyncio.start_server`` in the caller's event loop: no threads, no
dependencies, millisecond start-up. Each request takes the next scripted ``Reply`` (or
``server.default``), so a test can stage any fault a real server produces: 429 with
``Retry-After``, 5xx, cut connections, malformed or error chunks, hangs, keep-alives.
It counts requests in flight and sees client disconnects as they happen.

    async with LoopbackLLMServer() as server:
        server.script(Reply.status(429, retry_after=0.1), Reply.text("hello"))
        client = OpenAICompatibleClient(server.base_url, "key")

In pytest, use the ``llm_server`` / ``llm_client`` fixtures (``pytest_plugins``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

import pytest_asyncio

from bot.llm import OpenAICompatibleClient, Timeouts

ReplyKind = Literal["text", "status", "cut", "malformed", "error", "hang"]
TEST_API_KEY = "sk-loopback-test-key-0123456789"
_WORDS = re.compile(r"\s+|\S+\s*")
_REASONS = {
    200: "OK",
    404: "Not Found",
    408: "Request Timeout",
    429: "Too Many Requests",
    500: "Internal Error",
}


class _Gone(Exception):
    """The client hung up while we were answering."""


@dataclass(frozen=True)
class Reply:
    """One scripted answer. Build with the class methods, not by hand."""

    kind: ReplyKind
    chunks: tuple[str, ...] = ()
    chunk_delay: float = 0.0
    status_code: int = 200
    retry_after: float | None = None
    message: str = ""
    keepalive: bool = False
    write_size: int | None = None
    send_headers: bool = True
    finish_reason: str | None = "stop"
    done: bool = True
    prompt_delay: float = 0.0

    @classmethod
    def text(
        cls,
        text: str = "",
        *,
        chunks: Sequence[str] | None = None,
        chunk_delay: float = 0.0,
        prompt_delay: float = 0.0,
        keepalive: bool = False,
        write_size: int | None = None,
        finish_reason: str | None = "stop",
        done: bool = True,
    ) -> Reply:
        """A good answer, streamed word by word (or as ``chunks``) when the client streams.

        ``keepalive`` puts an SSE comment before every chunk; ``write_size`` re-cuts the raw
        SSE bytes into network writes of that many bytes (splitting lines and UTF-8);
        ``finish_reason=None, done=False`` ends the body cleanly but without either marker;
        ``prompt_delay`` is the time a server spends on the prompt before its first token.
        """
        return cls(
            "text",
            tuple(chunks) if chunks is not None else tuple(_WORDS.findall(text)),
            chunk_delay=chunk_delay,
            prompt_delay=prompt_delay,
            keepalive=keepalive,
            write_size=write_size,
            finish_reason=finish_reason,
            done=done,
        )

    @classmethod
    def status(cls, code: int, *, retry_after: float | None = None, message: str = "") -> Reply:
        """An HTTP error with an OpenAI-style error body and optional ``Retry-After``."""
        return cls("status", status_code=code, retry_after=retry_after, message=message)

    @classmethod
    def cut(cls, text_before: str = "", *, chunk_delay: float = 0.0) -> Reply:
        """Stream ``text_before``, then drop the connection mid-body."""
        return cls("cut", tuple(_WORDS.findall(text_before)), chunk_delay=chunk_delay)

    @classmethod
    def malformed(cls, text_before: str = "") -> Reply:
        """Stream ``text_before``, then a chunk that is not JSON."""
        return cls("malformed", tuple(_WORDS.findall(text_before)))

    @classmethod
    def error(cls, message: str = "the model is overloaded", text_before: str = "") -> Reply:
        """Stream ``text_before``, then an ``{"error": ...}`` object inside the 200 stream."""
        return cls("error", tuple(_WORDS.findall(text_before)), message=message)

    @classmethod
    def hang(
        cls, text_before: str = "", *, send_headers: bool = True, keepalive: float = 0.0
    ) -> Reply:
        """Send headers (and ``text_before``), then nothing until the client hangs up.

        ``keepalive`` > 0 sends an SSE comment every that many seconds while hanging.
        """
        return cls(
            "hang",
            tuple(_WORDS.findall(text_before)),
            chunk_delay=keepalive,
            send_headers=send_headers,
        )


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = 0.0
    _json: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def json(self) -> dict[str, Any]:
        if self._json is None:
            self._json = json.loads(self.body) if self.body else {}
        return self._json

    @property
    def stream(self) -> bool:
        return bool(self.json.get("stream"))

    @property
    def messages(self) -> list[dict[str, str]]:
        messages: list[dict[str, str]] = self.json.get("messages", [])
        return messages


def echo_reply(request: RecordedRequest) -> Reply:
    """The default: a deterministic answer naming the last user message."""
    users = [m.get("content", "") for m in request.messages if m.get("role") == "user"]
    return Reply.text(f"echo: {users[-1] if users else ''}")


class LoopbackLLMServer:
    """The server; ``async with`` starts it on 127.0.0.1 with a free port."""

    def __init__(
        self,
        default: Reply | Callable[[RecordedRequest], Reply] = echo_reply,
        *,
        one_at_a_time: bool = False,
    ) -> None:
        self.default = default
        self.one_at_a_time = one_at_a_time
        """Serve requests strictly one at a time, in arrival order, like a one-slot local server."""
        self._serial = asyncio.Lock()
        self._serving: RecordedRequest | None = None
        self.queued_behind: list[tuple[RecordedRequest, RecordedRequest]] = []
        """(request, the one being served when it arrived), for one_at_a_time servers."""
        self.replies_waiting: set[int] = set()
        self.json_while_a_reply_waited: list[RecordedRequest] = []
        """JSON requests that arrived while a streamed reply had not had its first chunk."""
        self.models: list[str] | None = None
        """What ``GET /v1/models`` lists; None answers it with 404, as some servers do."""
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.disconnects = 0
        self.disconnect_times: list[float] = []
        self.disconnected = asyncio.Event()
        self._queue: deque[Reply] = deque()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def pending(self) -> int:
        return len(self._queue)

    def script(self, *replies: Reply) -> None:
        """Queue answers for the next requests, in order."""
        self._queue.extend(replies)

    def reset_stats(self) -> None:
        self.requests.clear()
        self.max_in_flight = self.in_flight
        self.disconnects = 0
        self.disconnect_times.clear()
        self.disconnected.clear()

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # -- connection handling -------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while (request := await self._read_request(reader)) is not None:
                if not await self._answer(request, reader, writer):
                    break
        except (ConnectionError, _Gone):
            pass
        except asyncio.CancelledError:
            # aclose() cancels us; ending quietly keeps asyncio's stream callback from
            # logging the cancellation as an error (Python 3.11).
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _read_request(self, reader: asyncio.StreamReader) -> RecordedRequest | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        size = int(headers.get("content-length", "0"))
        body = await reader.readexactly(size) if size else b""
        loop = asyncio.get_running_loop()
        return RecordedRequest(method, path, headers, body, at=loop.time())

    async def _answer(
        self, request: RecordedRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Play one reply; True to keep the connection for another request."""
        if request.stream:
            self.replies_waiting.add(id(request))
        elif self.replies_waiting:
            self.json_while_a_reply_waited.append(request)
        if not self.one_at_a_time:
            return await self._play(request, reader, writer)
        if self._serving is not None:
            self.queued_behind.append((request, self._serving))
        async with self._serial:
            self._serving = request
            try:
                return await self._play(request, reader, writer)
            finally:
                self._serving = None

    async def _play(
        self, request: RecordedRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        out = _Out(self, reader, writer)
        try:
            if request.method == "GET" and request.path.endswith("/models"):
                return await out.models(self.models)
            if self._queue:
                reply = self._queue.popleft()
            else:
                reply = self.default(request) if callable(self.default) else self.default
            return await out.play(reply, request)
        finally:
            await out.finish()


class _Out:
    """Writes one response, watching for the client hanging up meanwhile."""

    def __init__(
        self, server: LoopbackLLMServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.writer = writer
        self.request: RecordedRequest | None = None
        self.active = True
        self.watcher = asyncio.create_task(self._watch(reader))

    async def _watch(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(ConnectionError):
            while await reader.read(4096):
                pass  # a well-behaved client sends nothing while we answer
        if self.active:
            s = self.server
            s.disconnects += 1
            s.disconnect_times.append(asyncio.get_running_loop().time())
            s.disconnected.set()
            self.done()

    def done(self) -> None:
        """The response is over (complete or abandoned); no longer in flight."""
        if self.active:
            self.active = False
            self.server.in_flight -= 1

    async def finish(self) -> None:
        """Stop watching before the connection's next request is read."""
        if self.request is not None:  # a reply that never sent a chunk waits no more
            self.server.replies_waiting.discard(id(self.request))
        self.done()
        self.watcher.cancel()
        await asyncio.wait({self.watcher})

    def write(self, data: bytes) -> None:
        if self.watcher.done():
            raise _Gone
        self.writer.write(data)

    async def flush(self, delay: float = 0.0) -> None:
        await self.writer.drain()
        if delay > 0:
            await asyncio.wait({self.watcher}, timeout=delay)
        if self.watcher.done():
            raise _Gone

    def chunk(self, data: bytes) -> None:
        self.write(b"%x\r\n%s\r\n" % (len(data), data))

    def last_chunk(self) -> None:
        self.done()  # before the write: the client may send its next request right after
        self.write(b"0\r\n\r\n")

    def head(self, status: int, content_type: str, extra: dict[str, str] | None = None) -> None:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
        lines.append(f"Content-Type: {content_type}")
        lines.append("Transfer-Encoding: chunked")
        lines.extend(f"{k}: {v}" for k, v in (extra or {}).items())
        self.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    async def whole(
        self, status: int, body: dict[str, Any] | bytes, extra: dict[str, str] | None = None
    ) -> bool:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.head(status, "application/json", extra)
        self.chunk(data)
        self.last_chunk()
        await self.flush()
        return True

    async def models(self, models: list[str] | None) -> bool:
        if models is None:
            return await self.whole(404, {"error": {"message": "not found", "code": 404}})
        listed = [{"id": m, "object": "model", "owned_by": "loopback"} for m in models]
        return await self.whole(200, {"object": "list", "data": listed})

    async def play(self, reply: Reply, request: RecordedRequest) -> bool:
        self.request = request
        model = str(request.json.get("model", "loopback"))
        if reply.kind == "status":
            extra = {}
            if reply.retry_after is not None:
                extra["Retry-After"] = f"{reply.retry_after:g}"
            message = reply.message or f"scripted HTTP {reply.status_code}"
            body = {"error": {"message": message, "code": reply.status_code}}
            return await self.whole(reply.status_code, body, extra)
        if reply.kind == "hang" and not (reply.send_headers and request.stream):
            await asyncio.wait({self.watcher})
            raise _Gone
        if not request.stream:
            return await self._plain(reply, model)
        return await self._sse(reply, model)

    async def _plain(self, reply: Reply, model: str) -> bool:
        text = "".join(reply.chunks)
        if reply.kind == "text":
            await self.flush(reply.chunk_delay * len(reply.chunks))
            return await self.whole(200, _completion(model, text, reply.finish_reason))
        if reply.kind == "malformed":
            return await self.whole(200, b'{"choices": [{"message": ')
        if reply.kind == "error":
            return await self.whole(200, {"error": {"message": reply.message, "code": 503}})
        self.head(200, "application/json")  # cut: promise a body, then drop the connection
        self.chunk(json.dumps(_completion(model, text, "stop")).encode()[:20])
        await self.flush()
        self.writer.transport.abort()
        return False

    async def _sse(self, reply: Reply, model: str) -> bool:
        if reply.prompt_delay:
            await self.flush(reply.prompt_delay)
        self.head(200, "text/event-stream", {"Cache-Control": "no-cache"})
        delay = 0.0 if reply.kind == "hang" else reply.chunk_delay
        for data in sse_events(reply, model):
            if reply.keepalive:
                self.chunk(b": keep-alive\n\n")
            self.chunk(data)
            await self.writer.drain()
            self.server.replies_waiting.discard(id(self.request))  # its first bytes are out
            await self.flush(delay)
        if reply.kind == "cut":
            self.done()
            self.writer.transport.abort()
            return False
        if reply.kind == "hang":
            while reply.chunk_delay > 0:
                self.chunk(b": keep-alive\n\n")
                await self.flush(reply.chunk_delay)
            await asyncio.wait({self.watcher})
            raise _Gone
        self.last_chunk()
        await self.flush()
        return True


def sse_events(reply: Reply, model: str) -> list[bytes]:
    """The SSE body of ``reply``, one network write per item."""
    events = [_event({"role": "assistant", "content": ""}, None, model)]
    events += [_event({"content": c}, None, model) for c in reply.chunks]
    if reply.kind == "text":
        if reply.finish_reason is not None:
            events.append(_event({}, reply.finish_reason, model))
        if reply.done:
            events.append(b"data: [DONE]\n\n")
    elif reply.kind == "malformed":
        events.append(b'data: {"choices": [{"delta": {"content": "oo\n\n')
    elif reply.kind == "error":
        err = {"error": {"message": reply.message, "type": "server_error", "code": 503}}
        events.append(b"data: " + json.dumps(err).encode() + b"\n\n")
    if reply.write_size:
        raw, step = b"".join(events), reply.write_size
        events = [raw[i : i + step] for i in range(0, len(raw), step)]
    return events


def _event(delta: dict[str, str], finish: str | None, model: str) -> bytes:
    chunk = {
        "id": "chatcmpl-loopback",
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n"


def _completion(model: str, text: str, finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-loopback",
        "object": "chat.completion",
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish,
            }
        ],
    }


def loopback_client(server: LoopbackLLMServer, **overrides: Any) -> OpenAICompatibleClient:
    """A real client aimed at ``server``, with test-sized timeouts and millisecond backoff."""
    kwargs: dict[str, Any] = {
        "base_url": server.base_url,
        "api_key": TEST_API_KEY,
        "max_concurrency": 2,
        "max_retries": 3,
        "backoff_base": 0.001,
        "timeouts": Timeouts(connect=2.0, first_token=2.0, idle=2.0, total=10.0),
        "app_url": "https://example.test/storybot",
        "app_title": "storybot-tests",
    }
    kwargs.update(overrides)
    return OpenAICompatibleClient(**kwargs)


@pytest_asyncio.fixture
async def llm_server() -> AsyncIterator[LoopbackLLMServer]:
    """A running loopback server in the test's event loop."""
    async with LoopbackLLMServer() as server:
        yield server


@pytest_asyncio.fixture
async def llm_client(llm_server: LoopbackLLMServer) -> AsyncIterator[OpenAICompatibleClient]:
    """``loopback_client(llm_server)``, closed after the test."""
    async with loopback_client(llm_server) as client:
        yield client
