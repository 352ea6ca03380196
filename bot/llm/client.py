"""``OpenAICompatibleClient``: chat completions over HTTP (Featherless, vLLM, OpenAI, ...).

One shared ``httpx.AsyncClient``; every request holds a ``PriorityGate`` slot for its whole life
(stream included), retries transient failures with jittered backoff while the slot is free, and
stops at four clear deadlines: connect, first token, idle gap, total.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager, nullcontext
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar, cast

import httpx
from pydantic import SecretStr

from bot.config import LLMSettings, TimeoutSettings
from bot.llm.base import Message, Priority, Purpose
from bot.llm.errors import (
    LLMConnectionError,
    LLMError,
    LLMHTTPError,
    LLMProtocolError,
    LLMRateLimitedError,
    LLMStreamError,
    LLMTimeoutError,
    TimeoutPhase,
)
from bot.llm.gate import LLMGate, PriorityGate, ReplyWait
from bot.llm.json_mode import JsonMode
from bot.llm.retry import RetryPolicy, parse_retry_after
from bot.llm.sse import ChatStreamDecoder, error_text, parse_json

log = logging.getLogger(__name__)
T = TypeVar("T")
_DETAIL_CHARS = 300
_DEFAULTS = LLMSettings()
"""The ``[llm]`` section's defaults: a client built without settings uses the same ones."""


def _gen(it: AsyncIterator[T]) -> AsyncGenerator[T, None]:
    """httpx types its body iterators loosely; they are generators, closable at once."""
    return cast(AsyncGenerator[T, None], it)


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds allowed per phase of one call; ``total`` spans retries too."""

    connect: float = _DEFAULTS.timeouts.connect
    first_token: float = _DEFAULTS.timeouts.first_token
    idle: float = _DEFAULTS.timeouts.idle
    total: float = _DEFAULTS.timeouts.total

    @classmethod
    def of(cls, settings: TimeoutSettings) -> Self:
        return cls(settings.connect, settings.first_token, settings.idle, settings.total)


class OpenAICompatibleClient:
    """The real ``LLMClient``. Use as ``async with`` or call ``aclose()`` when done."""

    def __init__(
        self,
        base_url: str = _DEFAULTS.base_url,
        api_key: str | SecretStr = "",
        *,
        max_concurrency: int = _DEFAULTS.max_concurrency,
        max_retries: int = _DEFAULTS.max_retries,
        timeouts: Timeouts | None = None,
        app_url: str | None = None,
        app_title: str | None = None,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        retry_after_cap: float = 30.0,
        gate: LLMGate | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._url = f"{self.base_url}/chat/completions"
        self._key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        self.timeouts = timeouts or Timeouts()
        self.retry = RetryPolicy(max_retries, backoff_base, backoff_cap, retry_after_cap)
        self.gate: LLMGate = gate or PriorityGate(max_concurrency)
        self._json_mode = JsonMode(self.base_url)
        headers = {"User-Agent": "storybot", "Accept": "application/json, text/event-stream"}
        if self._key.get_secret_value():
            headers["Authorization"] = f"Bearer {self._key.get_secret_value()}"
        if app_url:
            headers["HTTP-Referer"] = app_url  # Featherless asks integrations to name themselves
        if app_title:
            headers["X-Title"] = app_title
        pool = max(self.gate.limit * 2, 4)
        self._http = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(
                connect=self.timeouts.connect, read=None, write=self.timeouts.idle, pool=None
            ),
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
            transport=transport,
        )

    @classmethod
    def from_settings(cls, settings: LLMSettings, **overrides: Any) -> Self:
        """Build from the ``[llm]`` section; ``overrides`` win (tests, bench)."""
        kwargs: dict[str, Any] = {
            "base_url": settings.base_url,
            "api_key": settings.api_key,
            "max_concurrency": settings.max_concurrency,
            "max_retries": settings.max_retries,
            "timeouts": Timeouts.of(settings.timeouts),
            "app_url": settings.app_url,
            "app_title": settings.app_title,
        }
        kwargs.update(overrides)
        return cls(**kwargs)

    @property
    def json_mode(self) -> bool:
        """False once the server refused ``response_format``: JSON is then asked in words only."""
        return self._json_mode.on

    def __repr__(self) -> str:
        return f"OpenAICompatibleClient(base_url={self.base_url!r}, limit={self.gate.limit})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        priority: Priority = Priority.BACKGROUND,
        purpose: Purpose | None = None,
        **params: Any,
    ) -> str:
        """The whole answer at once (``stream: false``); retried as a unit.

        A server that refuses ``response_format`` (see ``bot.llm.json_mode``) is asked again
        without it, and never with it again by this client; that try is one of the retries.
        """
        plain = {k: v for k, v in params.items() if k != "response_format"}
        json_mode = self.json_mode and plain != params
        with_json = self._payload(messages, model, params if json_mode else plain, stream=False)
        without = self._payload(messages, model, plain, stream=False) if json_mode else with_json
        payload = with_json
        deadline = asyncio.get_running_loop().time() + self.timeouts.total
        attempt = 0
        failure: LLMError | None = None
        while True:
            try:
                answer = self._content(await self._whole(payload, priority, deadline))
            except LLMError as exc:
                if payload is not without and JsonMode.named_refusal(exc):
                    self._json_mode.refused(f"HTTP {exc.status}: {exc.detail}")
                    payload = with_json = without
                    continue
                if failure is None and payload is not without and self._probe_now(exc, attempt):
                    failure, payload = exc, without  # one of the retries goes without it
                    delay = self._retry_delay(exc, attempt, deadline) if exc.retryable else 0.0
                else:
                    payload = with_json
                    delay = self._retry_delay(exc, attempt, deadline)
                if delay is None:
                    raise
                attempt += 1
                await asyncio.sleep(delay)
                continue
            if payload is without and failure is not None:
                self._json_mode.refused(f"{failure}; the same request without it succeeded")
            return answer

    def _probe_now(self, exc: LLMError, attempt: int) -> bool:
        """Should the next try, the last this call may make, go without ``response_format``?"""
        if not JsonMode.maybe_refusal(exc) or attempt >= self.retry.max_retries:
            return False
        return not exc.retryable or attempt + 1 == self.retry.max_retries

    async def _whole(self, payload: bytes, priority: Priority, deadline: float) -> str:
        async with self.gate.slot(priority), self._open(payload, deadline) as (response, _):
            raw = bytearray()
            async with aclosing(_gen(response.aiter_bytes())) as body:
                while (piece := await self._read(body, "idle", deadline)) is not None:
                    raw += piece
        return raw.decode("utf-8", errors="replace")

    async def models(self) -> list[str]:
        """The model ids the server lists (``GET /models``); not every server offers the list."""
        deadline = asyncio.get_running_loop().time() + self.timeouts.total
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._http.get(f"{self.base_url}/models")
        except TimeoutError:
            raise self._timeout("total") from None
        except httpx.TransportError as exc:
            raise LLMConnectionError(f"could not reach the LLM server at {self.base_url}") from exc
        if response.status_code >= 400:
            raise await self._status_error(response, deadline)
        try:
            return [str(m["id"]) for m in response.json()["data"]]
        except (ValueError, KeyError, TypeError):
            raise LLMProtocolError("the model list is not in the OpenAI format") from None

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        priority: Priority = Priority.NARRATIVE,
        purpose: Purpose | None = None,
        **params: Any,
    ) -> AsyncGenerator[str, None]:
        """Yield text deltas as they arrive; never retried once any text was yielded.

        An async generator: ``aclose()`` it or cancel the consuming task to hang up at once.
        """
        payload = self._payload(messages, model, params, stream=True)
        deadline = asyncio.get_running_loop().time() + self.timeouts.total
        attempt = 0
        while True:
            yielded = False
            try:
                async with (
                    self._first_token_wait(priority) as waiting,
                    self.gate.slot(priority),
                    self._open(payload, deadline) as (response, first_token_by),
                ):
                    decoder = ChatStreamDecoder()
                    async with aclosing(_gen(response.aiter_text())) as body:
                        while True:
                            if yielded:
                                text = await self._read(body, "idle", deadline)
                            else:
                                text = await self._read(
                                    body, "first_token", deadline, first_token_by
                                )
                            if text is None:
                                break
                            for piece in decoder.feed(text):
                                yielded = True
                                waiting.arrived()
                                yield piece
                    for piece in decoder.close():
                        yielded = True
                        yield piece
                return
            except LLMError as exc:
                delay = None if yielded else self._retry_delay(exc, attempt, deadline)
                if delay is None:
                    raise
            attempt += 1
            await asyncio.sleep(delay)

    def _first_token_wait(self, priority: Priority) -> AbstractAsyncContextManager[ReplyWait]:
        """A reply holds background calls back until its first token; other streams do not."""
        if priority is Priority.NARRATIVE:
            return self.gate.reply_waiting()
        return nullcontext(ReplyWait(None))

    @asynccontextmanager
    async def _open(
        self, payload: bytes, deadline: float
    ) -> AsyncIterator[tuple[httpx.Response, float]]:
        """Send the request and check the status; the response is closed on any exit.

        Yields the response and the first-token deadline, which starts once we hold a slot.
        """
        loop = asyncio.get_running_loop()
        first_token_by = loop.time() + self.timeouts.first_token
        request = self._http.build_request(
            "POST", self._url, content=payload, headers={"Content-Type": "application/json"}
        )
        try:
            async with asyncio.timeout_at(min(first_token_by, deadline)):
                response = await self._http.send(request, stream=True)
        except TimeoutError:
            raise self._timeout("first_token" if first_token_by < deadline else "total") from None
        except httpx.ConnectTimeout:
            raise LLMTimeoutError("connect", self.timeouts.connect) from None
        except httpx.TransportError as exc:
            raise LLMConnectionError(
                f"could not reach the LLM server at {self.base_url}: {self._redact(str(exc))}"
                if str(exc)
                else f"could not reach the LLM server at {self.base_url} ({type(exc).__name__})"
            ) from exc
        try:
            if response.status_code >= 400:
                raise await self._status_error(response, deadline)
            yield response, first_token_by
        finally:
            await response.aclose()

    async def _read(
        self,
        body: AsyncIterator[T],
        phase: TimeoutPhase,
        deadline: float,
        phase_deadline: float | None = None,
    ) -> T | None:
        """The next network read, or None at the end of the body, within its deadline."""
        if phase_deadline is None:
            phase_deadline = asyncio.get_running_loop().time() + self.timeouts.idle
        try:
            async with asyncio.timeout_at(min(phase_deadline, deadline)):
                return await anext(body)
        except StopAsyncIteration:
            return None
        except TimeoutError:
            raise self._timeout(phase if phase_deadline < deadline else "total") from None
        except httpx.TransportError as exc:
            raise LLMStreamError(
                "the LLM server dropped the connection in the middle of an answer", retryable=True
            ) from exc

    async def _status_error(self, response: httpx.Response, deadline: float) -> LLMHTTPError:
        detail = ""
        try:
            async with asyncio.timeout_at(
                min(deadline, asyncio.get_running_loop().time() + self.timeouts.idle)
            ):
                raw = await response.aread()
            text = raw.decode("utf-8", errors="replace").strip()
            try:
                detail = error_text(json.loads(text))
            except (ValueError, AttributeError):
                detail = text
        except (TimeoutError, httpx.TransportError):
            pass
        detail = self._redact(detail)[:_DETAIL_CHARS]
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if response.status_code == 429:
            return LLMRateLimitedError(detail, retry_after=retry_after)
        return LLMHTTPError(response.status_code, detail, retry_after=retry_after)

    def _content(self, text: str) -> str:
        payload = parse_json(text, "response")
        if "error" in payload:
            raise LLMStreamError(
                f"the LLM server answered with an error: {self._redact(error_text(payload))}"
            )
        try:
            content = payload["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise LLMProtocolError(
                f"the LLM server's answer has no choices[0].message.content: {text[:120]!r}"
            ) from None
        if not isinstance(content, str):
            raise LLMProtocolError("the LLM server's answer has no text content")
        return content

    def _retry_delay(self, exc: LLMError, attempt: int, deadline: float) -> float | None:
        """Seconds to wait before another try, or None to give up with ``exc``.

        A ``Retry-After`` longer than we may wait (the cap, or what is left of the call's total
        deadline) is not slept on at all: the call fails at once, saying how long was asked.
        """
        if not exc.retryable:
            return None
        now = asyncio.get_running_loop().time()
        wait = exc.retry_after
        if (
            isinstance(exc, LLMHTTPError)
            and wait is not None
            and (wait > self.retry.retry_after_cap or now + wait >= deadline)
        ):
            raise exc.refusing_the_wait() from None
        if attempt >= self.retry.max_retries:
            return None
        delay = self.retry.delay(attempt, exc.retry_after)
        if now + delay >= deadline:
            return None
        log.warning(
            "LLM call failed (%s); retry %d of %d in %.2f s",
            exc,
            attempt + 1,
            self.retry.max_retries,
            delay,
        )
        return delay

    def _timeout(self, phase: TimeoutPhase) -> LLMTimeoutError:
        seconds = {
            "connect": self.timeouts.connect,
            "first_token": self.timeouts.first_token,
            "idle": self.timeouts.idle,
            "total": self.timeouts.total,
        }[phase]
        return LLMTimeoutError(phase, seconds)

    def _redact(self, text: str) -> str:
        key = self._key.get_secret_value()
        return text.replace(key, "***") if key else text

    @staticmethod
    def _payload(
        messages: Sequence[Message], model: str, params: dict[str, Any], *, stream: bool
    ) -> bytes:
        body: dict[str, Any] = {
            "model": model,
            "messages": [m.as_dict() for m in messages],
            "stream": stream,
        }
        body.update((k, v) for k, v in params.items() if v is not None)
        return json.dumps(body, ensure_ascii=False).encode("utf-8")
