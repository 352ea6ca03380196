"""Staying connected through gateway events discord.py cannot read.

A Discord-compatible server (or Discord itself, on a bad day) can send an event discord.py
fails on: a payload that is not JSON, or one missing a key its parser reads (Spacebar's
CHANNEL_UPDATE without ``position``). Left alone the error escapes ``Client.connect`` and ends
the process. Two layers keep the bot up:

- each event parser is guarded: an event whose payload cannot be parsed is logged and dropped,
  and the connection goes on (reconnecting would lose the events sent meanwhile, such as a
  player's slash command);
- anything else that escapes ``connect`` (a frame that is not JSON) is logged and the gateway is
  opened again with backoff, by ``StoryBot.connect``. READY is not guarded: a session that never
  became ready is better opened again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Parser = Callable[[Any], None]
UNGUARDED = frozenset({"READY", "RESUMED"})


def guard_parsers(parsers: dict[str, Parser]) -> None:
    """Wrap every event parser (in place) so that one bad payload drops only its event."""
    for kind, parse in list(parsers.items()):
        if kind not in UNGUARDED:
            parsers[kind] = _guarded(kind, parse)


def _guarded(kind: str, parse: Parser) -> Parser:
    def guarded(data: Any) -> None:
        try:
            parse(data)
        except Exception:
            keys = sorted(data) if isinstance(data, dict) else type(data).__name__
            log.exception("dropped a %s event discord.py could not read (keys: %s)", kind, keys)

    return guarded
