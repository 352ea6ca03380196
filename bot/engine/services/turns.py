"""Beats: the player's, the characters' on their own, stopping and recovering them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

from bot.engine.beat_events import turn_events
from bot.engine.context import Cast, load_cast
from bot.engine.errors import (
    OutOfCharacter,
    SceneMovedOn,
)
from bot.engine.parse import is_out_of_character
from bot.engine.player_text import player_line
from bot.engine.services.base import Service
from bot.engine.sink import BeatSink
from bot.engine.speakers import choose_speaker, next_meanwhile_speaker
from bot.engine.turns import TurnResult, play_beat
from bot.store import append, append_events
from bot.store.checkpoints import checkpoint_text
from bot.store.events import (
    TurnMessagesLinked,
    TurnStarted,
)

log = logging.getLogger(__name__)

SceneChoice = Literal["auto", "you"] | int
"""Where a player's line was written: anywhere, the story channel, or one meanwhile scene."""


def _check_scene(cast: Cast, scene: SceneChoice) -> None:
    playing = cast.meanwhile.id if cast.meanwhile is not None else "you"
    if scene in ("auto", playing):
        return
    raise SceneMovedOn(cast.meanwhile)


class Turns(Service):
    """Beats: the player's, the characters' on their own, stopping and recovering them."""

    async def take(
        self,
        chat_id: str,
        prose: str,
        sink: BeatSink,
        *,
        author_id: int = 0,
        message_id: int = 0,
        scene: SceneChoice = "auto",
    ) -> TurnResult:
        """The player's beat. While a meanwhile scene is open it steers that scene.

        ``scene`` says where the line was written, checked when its turn comes (it may wait
        behind others): ``"you"`` for the story channel, a meanwhile scene's id for its thread.
        If that scene is no longer the one being played, the line is refused, not misplaced.
        """
        text = player_line(prose, self.ctx.settings.max_turn_chars)
        if is_out_of_character(text):
            raise OutOfCharacter()
        async with self._turn(chat_id):
            cast = await load_cast(self.ctx, chat_id)
            _check_scene(cast, scene)
            if cast.meanwhile is not None and cast.guest is not None:
                last = await self.ctx.views.last_meanwhile_speaker(cast.meanwhile.id)
                speaker = next_meanwhile_speaker(cast.host, cast.guest, last)
            else:
                present_guest = (
                    cast.guest if cast.guest and cast.guest.id in cast.scene.participants else None
                )
                speaker = choose_speaker(text, cast.host, present_guest)
            return await play_beat(
                self.ctx, cast, speaker, text, sink, author_id=author_id, message_id=message_id
            )

    async def meanwhile_beats(
        self, chat_id: str, beats: int, sink_for_beat: Callable[[], BeatSink]
    ) -> list[TurnResult]:
        """Auto mode: host and guest take up to ``beats`` beats on their own (capped)."""
        count = max(0, min(beats, self.ctx.settings.meanwhile_max_beats))
        results: list[TurnResult] = []
        for _ in range(count):
            async with self._turn(chat_id):
                cast = await load_cast(self.ctx, chat_id)
                if cast.meanwhile is None or cast.guest is None:
                    break
                last = await self.ctx.views.last_meanwhile_speaker(cast.meanwhile.id)
                speaker = next_meanwhile_speaker(cast.host, cast.guest, last)
                result = await play_beat(self.ctx, cast, speaker, None, sink_for_beat())
            results.append(result)
            if result.status != "done":
                break
        return results

    def cancel(self, chat_id: str) -> bool:
        """Stop the reply streaming in this chat now; its text so far stays, marked stopped."""
        return self.ctx.in_flight.cancel(chat_id)

    async def recover_interrupted(self) -> int:
        """Close every turn a crash cut off mid-stream, so no half-done turn stays open.

        The beat is written as the pipeline would have written a failed one (same witnesses,
        same line it answers), keeping the text last checkpointed: what the player saw. Each
        is closed holding its chat's turn: when processes share the story, an open turn may be
        another process's, streaming right now; it is closed only if it is still open once we
        hold its chat (a crashed process holds nothing, so its turns are closed at once).
        """
        closed = 0
        for started_id, raw in await self.ctx.views.open_turns():
            started = TurnStarted.model_validate_json(raw)
            async with self.ctx.queues.turn(started.chat_id):
                if started_id not in {i for i, _ in await self.ctx.views.open_turns()}:
                    continue
                closed += await self._close_interrupted(started_id, started)
        return closed

    async def _close_interrupted(self, started_id: int, started: TurnStarted) -> int:
        text = await checkpoint_text(self.ctx.db, started_id)
        beat = turn_events(started, started_id, text=text, status="failed")
        await append_events(self.ctx.db, beat.batch)
        log.warning(
            "closed turn %d of chat %s, cut off by a restart (%d characters kept)",
            started_id,
            started.chat_id,
            len(text),
        )
        return 1

    def queued(self, chat_id: str) -> int:
        """Beats and story changes of this chat running or waiting their turn."""
        return self.ctx.queues.pending(chat_id)

    @property
    def in_flight(self) -> dict[str, object]:
        """Chat id -> the task streaming its reply right now (read-only view for adapters)."""
        return dict(self.ctx.in_flight.tasks)

    async def link_messages(self, chat_id: str, turn_id: int, message_ids: list[int]) -> None:
        """Remember which adapter messages show a beat (for rewinds, edits and ⛔)."""
        linked = TurnMessagesLinked(chat_id=chat_id, turn_id=turn_id, message_ids=message_ids)
        await append(self.ctx.db, linked)
