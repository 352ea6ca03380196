"""Retry timing: exponential backoff with full jitter, and the server's ``Retry-After``."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to wait; the client passes every value (its defaults are the only
    ones). Tests shrink ``base`` to milliseconds."""

    max_retries: int
    base: float
    cap: float
    retry_after_cap: float

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based).

        Full jitter spreads clients that failed together; a ``Retry-After`` hint is a floor,
        capped so a hostile or confused server cannot park a turn for minutes.
        """
        jitter = random.uniform(0, min(self.cap, self.base * 2**attempt))
        if retry_after is None:
            return jitter
        return max(min(retry_after, self.retry_after_cap), jitter)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds, from either form (seconds, or an HTTP date); None if absent."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = parsedate_to_datetime(value.strip())
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
        return max(seconds, 0.0)
    return seconds if seconds >= 0 else None
