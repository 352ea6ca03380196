"""Posting one message of the story, paced and tried again when the server fails.

discord.py already retries a 5xx a few times inside one call; a story message that still did
not go out (the host's opening line, a digest, a reply's last piece) would simply be missing
from the story on screen, so it gets one more whole try. A refusal (403, 404, a bad request)
is not retried: it would only fail the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
import discord

from cogs._render._limiter import EditLimiter

log = logging.getLogger(__name__)

T = TypeVar("T")

STORY_SEND_TRIES = 2
"""A story message is sent at most this many times."""
SERVER_TROUBLE = (discord.DiscordServerError, aiohttp.ClientError, asyncio.TimeoutError)
"""Failures worth another try: the server erred, or the connection did."""


async def send_paced(
    limiter: EditLimiter,
    send: Callable[[], Awaitable[T]],
    *,
    channel_id: int,
    tries: int = STORY_SEND_TRIES,
    retry_on: tuple[type[BaseException], ...] = SERVER_TROUBLE,
) -> T:
    """``send()`` as a new message of this channel, tried up to ``tries`` times on ``retry_on``."""
    for attempt in range(1, tries + 1):
        limiter.note()
        try:
            async with limiter.request():
                return await send()
        except retry_on as exc:
            if attempt == tries:
                raise
            log.warning(
                "sending a message in channel %d failed (try %d of %d), trying again: %s",
                channel_id,
                attempt,
                tries,
                exc,
            )
    raise AssertionError("unreachable: the last try returns or raises")
