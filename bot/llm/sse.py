"""Server-sent events and OpenAI chat-completion chunks, parsed without any I/O.

``SSEParser`` turns arbitrary text pieces (network reads split anywhere, ``\\n``, ``\\r\\n`` or
``\\r`` line ends) into events; ``ChatStreamDecoder`` turns those events into text deltas and
decides whether the stream ended properly. Both are pure so every edge case is unit-tested.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.llm.errors import LLMProtocolError, LLMStreamError

DONE = "[DONE]"
_SNIPPET = 120


@dataclass(frozen=True, slots=True)
class SSEEvent:
    data: str
    event: str = "message"


class SSEParser:
    """Incremental SSE line parser (the subset of the spec that LLM servers use)."""

    def __init__(self) -> None:
        self._buf = ""
        self._data: list[str] = []
        self._event = ""
        self.comments = 0

    def feed(self, text: str) -> list[SSEEvent]:
        """Parse one piece of the body; return the events it completed."""
        buf = self._buf + text
        tail = ""
        if "\r" in buf:
            if buf.endswith("\r"):  # maybe the first half of a \r\n split across reads
                buf, tail = buf[:-1], "\r"
            buf = buf.replace("\r\n", "\n").replace("\r", "\n")
        lines = buf.split("\n")
        self._buf = lines.pop() + tail
        events: list[SSEEvent] = []
        for line in lines:
            self._line(line, events)
        return events

    def close(self) -> list[SSEEvent]:
        """End of body: flush a last event even without its blank line (servers skip it)."""
        events: list[SSEEvent] = []
        rest, self._buf = self._buf.rstrip("\r"), ""
        if rest:
            self._line(rest, events)
        self._line("", events)
        return events

    def _line(self, line: str, events: list[SSEEvent]) -> None:
        if not line:
            if self._data:
                events.append(SSEEvent("\n".join(self._data), self._event or "message"))
            self._data, self._event = [], ""
            return
        if line[0] == ":":
            self.comments += 1  # keep-alive
            return
        field, _, value = line.partition(":")
        if value[:1] == " ":
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value


class ChatStreamDecoder:
    """Turns the SSE body of a streamed chat completion into text deltas."""

    def __init__(self) -> None:
        self._sse = SSEParser()
        self.done = False
        self.finish_reason: str | None = None
        self.chars = 0

    def feed(self, text: str) -> list[str]:
        """Text deltas found in this piece of the body (never empty strings)."""
        return self._deltas(self._sse.feed(text))

    def close(self) -> list[str]:
        """The body ended: return the last deltas, or raise if the answer was cut off."""
        deltas = self._deltas(self._sse.close())
        if not self.done and self.finish_reason is None:
            got = f" after {self.chars} characters" if self.chars else " before any text"
            raise LLMStreamError(
                f"the LLM server cut the answer off mid-stream{got}", retryable=True
            )
        return deltas

    def _deltas(self, events: list[SSEEvent]) -> list[str]:
        out: list[str] = []
        for event in events:
            if self.done:
                break
            piece = self._event(event)
            if piece:
                self.chars += len(piece)
                out.append(piece)
        return out

    def _event(self, event: SSEEvent) -> str | None:
        data = event.data.strip()
        if data == DONE:
            self.done = True
            return None
        if not data:
            return None
        payload = parse_json(data, "stream chunk")
        if event.event == "error" or "error" in payload:
            raise LLMStreamError(
                f"the LLM server reported an error mid-stream: {error_text(payload)}"
            )
        text, finish = chunk_delta(payload)
        if finish:
            self.finish_reason = finish
        return text


def parse_json(data: str, what: str) -> dict[str, Any]:
    """``json.loads`` for server output, with an error a person can act on."""
    try:
        payload = json.loads(data)
    except ValueError:
        raise LLMProtocolError(
            f"the LLM server sent a malformed {what} (not JSON): {data[:_SNIPPET]!r}"
        ) from None
    if not isinstance(payload, dict):
        raise LLMProtocolError(
            f"the LLM server sent a malformed {what} (not an object): {data[:_SNIPPET]!r}"
        )
    return payload


def chunk_delta(payload: dict[str, Any]) -> tuple[str | None, str | None]:
    """(text, finish_reason) of one chunk; a role-only or empty delta gives no text."""
    choices = payload.get("choices")
    if not choices:
        return None, None  # e.g. a usage-only chunk
    if not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise LLMProtocolError(f"the LLM server sent chunk choices of the wrong shape: {choices!r}")
    choice = choices[0]
    delta = choice.get("delta")
    text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
    if text is not None and not isinstance(text, str):
        raise LLMProtocolError(f"the LLM server sent non-text content: {text!r}"[:200])
    finish = choice.get("finish_reason")
    return text, finish if isinstance(finish, str) else None


def error_text(payload: dict[str, Any]) -> str:
    """The human part of an OpenAI-style ``{"error": ...}`` object."""
    err = payload.get("error", payload)
    if isinstance(err, dict):
        message = err.get("message") or err.get("detail") or json.dumps(err)[:_SNIPPET]
        code = err.get("code") or err.get("type")
        return f"{message} ({code})" if code else str(message)
    return str(err)[:_SNIPPET]
