"""LLM errors, worded for the person reading them (a player or whoever runs the bot).

Every error says what the LLM server did wrong in plain words; ``retryable`` tells the client
whether a fresh attempt could help, and ``retry_after`` carries the server's own wait hint.
None of them ever contains the API key: the client redacts server-supplied text.
"""

from __future__ import annotations

from typing import Literal

TimeoutPhase = Literal["connect", "first_token", "idle", "total"]


def _seconds(value: float) -> str:
    return f"{value:g} s"


def wait_words(seconds: float) -> str:
    """A server's wait hint as a person says it: "40 s", "5 min", "1 h", "1.5 h"."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return f"{round(seconds / 3600, 1):g} h"


class LLMError(Exception):
    """Base of every failure the LLM layer raises; callers catch this one."""

    retryable: bool = False
    retry_after: float | None = None

    @property
    def public_reason(self) -> str:
        """A short reason fit for a public channel: no URL, no upstream text, no detail."""
        return "something went wrong on the model's side"


class LLMConnectionError(LLMError):
    """The server could not be reached, or dropped the connection before answering."""

    retryable = True

    @property
    def public_reason(self) -> str:
        return "could not reach the model server"


class LLMTimeoutError(LLMError):
    """The server was too slow in one ``phase`` (connect, first token, idle gap, total)."""

    def __init__(self, phase: TimeoutPhase, seconds: float) -> None:
        self.phase: TimeoutPhase = phase
        self.seconds = seconds
        # Only a slow connect is worth another try: the others already cost the player the wait.
        self.retryable = phase == "connect"
        super().__init__(self._describe(phase, seconds))

    @property
    def public_reason(self) -> str:
        if self.phase == "connect":
            return "could not reach the model server"
        return "the model took too long to answer"

    @staticmethod
    def _describe(phase: TimeoutPhase, seconds: float) -> str:
        s = _seconds(seconds)
        if phase == "connect":
            return f"could not connect to the LLM server within {s}"
        if phase == "first_token":
            return f"the LLM server did not send a first token within {s}"
        if phase == "idle":
            return f"the LLM server went silent for {s} in the middle of an answer"
        return f"the LLM server did not finish its answer within {s}"


class LLMHTTPError(LLMError):
    """The server answered with an HTTP error status."""

    def __init__(
        self,
        status: int,
        detail: str = "",
        *,
        retry_after: float | None = None,
        wait_refused: bool = False,
    ) -> None:
        self.status = status
        self.detail = detail
        self.retry_after = retry_after
        self.wait_refused = wait_refused and retry_after is not None
        """The server asked for a wait longer than the call may last: it was not waited out."""
        self.retryable = status in {408, 429} or status >= 500
        message = self._describe(status, detail)
        if self.wait_refused and retry_after is not None:
            message = f"{self._asks_to_wait()} ({message})"
        super().__init__(message)

    def refusing_the_wait(self) -> LLMHTTPError:
        """The same failure, given up at once because its ``Retry-After`` is too long."""
        return LLMHTTPError(
            self.status, self.detail, retry_after=self.retry_after, wait_refused=True
        )

    def _asks_to_wait(self) -> str:
        return (
            f"the LLM provider asks us to wait {wait_words(self.retry_after or 0)}; try again later"
        )

    @property
    def public_reason(self) -> str:
        if self.wait_refused:
            return self._asks_to_wait()
        if self.status == 429:
            return "the model server is busy; try again in a moment"
        if self.status in (401, 403):
            return "the model server refused the bot's key"
        if self.status >= 500:
            return "the model server had a problem"
        return "the model server refused the request"

    @staticmethod
    def _describe(status: int, detail: str) -> str:
        if status in (401, 403):
            head = (
                f"the LLM server refused the API key (HTTP {status}); "
                "check llm.api_key or STORYBOT_LLM_API_KEY"
            )
        elif status == 404:
            head = "the LLM server does not know this model or URL (HTTP 404)"
        elif status == 429:
            head = "the LLM server is rate limiting us (HTTP 429)"
        elif status >= 500:
            head = f"the LLM server had an internal problem (HTTP {status})"
        else:
            head = f"the LLM server rejected the request (HTTP {status})"
        return f"{head}: {detail}" if detail else head


class LLMRateLimitedError(LLMHTTPError):
    """HTTP 429: too many requests or too many concurrent ones for the plan."""

    def __init__(
        self, detail: str = "", *, retry_after: float | None = None, wait_refused: bool = False
    ) -> None:
        super().__init__(429, detail, retry_after=retry_after, wait_refused=wait_refused)

    def refusing_the_wait(self) -> LLMRateLimitedError:
        return LLMRateLimitedError(self.detail, retry_after=self.retry_after, wait_refused=True)


class LLMStreamError(LLMError):
    """The server reported an error inside a 200 answer, or cut the answer off.

    A cut is a broken connection, so it is ``retryable`` - but only while no text has reached
    the caller; the client enforces that. An error object the server chose to send is not.
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        self.retryable = retryable
        super().__init__(message)

    @property
    def public_reason(self) -> str:
        if self.retryable:
            return "the model server cut the answer off"
        return "the model server reported an error"


class LLMProtocolError(LLMError):
    """The server sent something that is not the OpenAI chat-completions format."""

    @property
    def public_reason(self) -> str:
        return "the model's answer was garbled"
