"""Whether this server takes ``response_format``, decided from evidence, never from a 500 alone.

A server that does not support JSON mode says so in one of two ways: a 400/415/422 whose error
names ``response_format`` (or JSON), or a failure that goes away when the same request is sent
without it (llama.cpp answers ``json_schema`` with a 500). A plain 500 storm proves neither, so
JSON mode stays on through it. The decision is per client, that is per server, logged once.
"""

from __future__ import annotations

import logging
import re
from typing import TypeGuard

from bot.llm.errors import LLMError, LLMHTTPError

log = logging.getLogger(__name__)

_NAMED_REFUSALS = frozenset({400, 415, 422})
_MAYBE_REFUSALS = frozenset({400, 415, 422, 500, 501})
"""Statuses with which servers refuse ``response_format`` without always saying why."""
_NAMES_JSON = re.compile(r"response_format|json", re.IGNORECASE)


class JsonMode:
    """``on`` until the server is shown to refuse ``response_format``."""

    def __init__(self, base_url: str, *, on: bool = True) -> None:
        self.base_url = base_url
        self.on = on

    @staticmethod
    def named_refusal(exc: LLMError) -> TypeGuard[LLMHTTPError]:
        """The server said in words that it will not take ``response_format``."""
        return (
            isinstance(exc, LLMHTTPError)
            and exc.status in _NAMED_REFUSALS
            and bool(_NAMES_JSON.search(exc.detail))
        )

    @staticmethod
    def maybe_refusal(exc: LLMError) -> bool:
        """A failure that could be a silent refusal: worth one try without ``response_format``."""
        return isinstance(exc, LLMHTTPError) and exc.status in _MAYBE_REFUSALS

    def refused(self, evidence: str) -> None:
        if self.on:
            self.on = False
            log.warning(
                "the LLM server at %s does not take response_format (%s); asking for JSON in "
                "the prompt only from now on (set [llm] use_response_format = false to skip "
                "the first try)",
                self.base_url,
                evidence,
            )
