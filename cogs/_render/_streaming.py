"""A reply streaming into Discord: typing, a first message at once, paced edits, follow-ups.

``append`` only records text and wakes a background task, so the LLM stream never waits on
Discord (and a ⛔ that cancels the stream never cuts a request in half). That one task is the only
writer to Discord for this reply, so sends and edits never race.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import discord

from bot.engine import BeatEnd, Speaker
from cogs._render._limiter import EditLimiter
from cogs._render._reactions import add_stop, delete_quietly, remove_stop
from cogs._render._registry import StreamingMessages
from cogs._render._sending import SERVER_TROUBLE, STORY_SEND_TRIES, send_paced
from cogs._render._split import MESSAGE_LIMIT, split_for_discord
from cogs._render._types import StoryChannel
from cogs._render._typing import TypingIndicator
from cogs._render._voices import MessageGone, Voice
from cogs._render._webhooks import NoWebhook

log = logging.getLogger(__name__)

ENDING_ROOM = 160
"""Characters kept free in every message for the streaming marker or the ending mark."""
STOPPED_MARK = " *(stopped)*"
FAILED_MARK = " *(the reply failed: {error})*"
STOPPED_EMPTY = "*(stopped before a word was said)*"
FAILED_EMPTY = "*(the reply failed before a word was said: {error})*"

VoiceFor = Callable[[Speaker], Coroutine[Any, Any, Voice]]


class StreamingReply:
    """One beat shown in one channel; implements the engine's BeatSink."""

    def __init__(
        self,
        place: StoryChannel,
        *,
        voice_for: VoiceFor,
        limiter: EditLimiter,
        registry: StreamingMessages,
        chat_id: str,
        marker: str,
    ) -> None:
        self._place = place
        self._voice_for = voice_for
        self._limiter = limiter
        self._registry = registry
        self._chat_id = chat_id
        self._marker = marker
        self._typing = TypingIndicator(place)
        self._parts: list[str] = []
        self._ids: list[int] = []
        self._shown: list[str] = []
        self._wake = asyncio.Event()
        self._outcome: BeatEnd | None = None
        self._writer: asyncio.Task[None] | None = None
        self._stop_offer: asyncio.Task[None] | None = None
        self._stop_on = 0  # the message that carries the bot's ⛔

    @property
    def message_ids(self) -> list[int]:
        return list(self._ids)

    async def begin(self, speaker: Speaker) -> None:
        """Show typing and find the character's webhook while the model thinks."""
        self._typing.start()
        voice = asyncio.create_task(self._voice_for(speaker), name=f"voice {speaker.id}")
        self._writer = asyncio.create_task(self._write(voice), name=f"stream {self._chat_id}")

    async def append(self, text: str) -> None:
        self._parts.append(text)
        if text.strip():
            self._typing.stop()
            self._wake.set()

    async def end(self, outcome: BeatEnd) -> list[int]:
        """Show the whole beat with its ending mark; return the ids of its messages."""
        if outcome.status == "failed":  # the channel shows only the short public reason
            log.info("a reply in channel %d failed: %s", self._place.id, outcome.error)
        try:
            if self._writer is not None:
                self._outcome = outcome
                self._wake.set()
                try:
                    await self._writer
                except Exception:
                    log.exception("showing the reply in channel %d failed", self._place.id)
            await self._typing.close()
            if self._stop_offer is not None:
                await self._stop_offer
                await remove_stop(self._place, self._stop_on)
        finally:
            if self._writer is not None and not self._writer.done():
                self._writer.cancel()
            self._registry.discard(self._ids)
        return list(self._ids)

    # -- the writer task ----------------------------------------------------------------------

    async def _write(self, voice_task: asyncio.Task[Voice]) -> None:
        voice = await voice_task
        while True:
            await self._wake.wait()
            self._wake.clear()
            slot = False
            if self._ids:  # an edit: wait for this channel's next slot
                await self._limiter.acquire()
                slot = True
            final = self._outcome
            await self._show(voice, final, slot=slot)
            if final is not None:
                return

    async def _show(self, voice: Voice, final: BeatEnd | None, *, slot: bool) -> None:
        """Bring every message up to date: edit the changed ones, send the new ones in order."""
        for index, content in enumerate(self._contents(voice.prefix, final)):
            if index < len(self._shown) and self._shown[index] == content:
                continue
            if index < len(self._ids):
                if not slot:
                    await self._limiter.acquire()
                slot = False
                await self._edit(voice, index, content, final=final is not None)
            elif not await self._send(voice, content, final=final is not None):
                return  # keep the order: later pieces wait until this one is out

    def _contents(self, prefix: str, final: BeatEnd | None) -> list[str]:
        limit = MESSAGE_LIMIT - len(prefix) - max(ENDING_ROOM, len(self._marker))
        if final is None:
            pieces = split_for_discord("".join(self._parts).strip(), limit)
            if pieces:
                pieces[-1] += self._marker
            return [prefix + piece for piece in pieces]
        pieces = split_for_discord((final.text or "".join(self._parts)).strip(), limit)
        error = final.reason or GENERIC_REASON
        if not pieces:
            if final.status == "stopped":
                return [prefix + STOPPED_EMPTY]
            if final.status == "failed":
                return [prefix + FAILED_EMPTY.format(error=error)]
            return []
        if final.status == "stopped":
            pieces[-1] += STOPPED_MARK
        elif final.status == "failed":
            pieces[-1] += FAILED_MARK.format(error=error)
        return [prefix + piece for piece in pieces]

    async def _send(self, voice: Voice, content: str, *, final: bool) -> bool:
        """Post a new message now (new words should not wait); the final one is tried twice."""
        try:
            message_id = await send_paced(
                self._limiter,
                lambda: voice.send(content),
                channel_id=self._place.id,
                tries=STORY_SEND_TRIES if final else 1,
                retry_on=(discord.HTTPException, NoWebhook, *SERVER_TROUBLE),
            )
        except (discord.HTTPException, NoWebhook, *SERVER_TROUBLE) as exc:
            log.warning("sending a reply in channel %d failed: %s", self._place.id, exc)
            return False
        self._ids.append(message_id)
        self._shown.append(content)
        self._registry.add(message_id, self._chat_id)
        if len(self._ids) == 1:
            self._typing.stop()
            self._stop_on = message_id
            self._stop_offer = asyncio.create_task(add_stop(self._place, message_id))
        return True

    async def _edit(self, voice: Voice, index: int, content: str, *, final: bool) -> None:
        """Edit one message; an error is logged and the next edit catches up (final: retried)."""
        for attempt in range(2 if final else 1):
            if attempt:
                await self._limiter.acquire()
            try:
                async with self._limiter.request():
                    await voice.edit(self._ids[index], content)
            except MessageGone:
                await self._replace(voice, index, content, final=final)
                return
            except discord.HTTPException as exc:
                log.warning(
                    "editing a reply in channel %d failed (try %d): %s",
                    self._place.id,
                    attempt + 1,
                    exc,
                )
                continue
            self._shown[index] = content
            return

    async def _replace(self, voice: Voice, index: int, content: str, *, final: bool) -> None:
        """A message deleted under us is sent again, so the beat stays whole on screen."""
        gone = self._ids[index]
        log.info("message %d of a reply cannot be edited any more; sending it again", gone)
        if await self._send(voice, content, final=final):
            self._ids[index] = self._ids.pop()
            self._shown[index] = self._shown.pop()
            self._registry.discard([gone])
            await delete_quietly(self._place, gone)


GENERIC_REASON = "something went wrong on the model's side"
"""Shown when a failed beat carries no public reason."""
