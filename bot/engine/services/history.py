"""Steering back: regenerate, rewind, take back and edit what was written."""

from __future__ import annotations

from bot.engine.context import load_cast
from bot.engine.edits import edit_player_line
from bot.engine.errors import (
    EditOutOfBounds,
    NotABeat,
    RewindPastStart,
    TooFewLines,
)
from bot.engine.history import (
    FeelingChange,
    Rewound,
    beat_by_id,
    beat_by_message,
    is_latest_player_line,
    latest_reply,
    rewind_from,
    rewind_reply,
    rewind_to,
    take_back,
)
from bot.engine.history import why as feeling_changes
from bot.engine.opening import next_greeting, show_greeting
from bot.engine.player_text import refuse_unwritable
from bot.engine.services.base import Service
from bot.engine.sink import BeatSink
from bot.engine.turns import TurnResult, play_beat
from bot.store.views import (
    Beat,
)


class History(Service):
    """Steering back: regenerate, rewind, take back and edit what was written."""

    async def regenerate(self, chat_id: str, sink: BeatSink) -> tuple[Rewound, TurnResult]:
        """Replace the latest reply with a new one by the same character.

        The old beat leaves the story (its memories and relationship changes with it); the
        player's line it answered stays and is answered again.
        """
        async with self._turn(chat_id):
            reply, player = await latest_reply(self.ctx, chat_id)
            cast = await load_cast(self.ctx, chat_id)
            greeting = await next_greeting(self.ctx, cast, reply)
            rewound = await rewind_reply(self.ctx, chat_id, reply, player)
            if greeting is not None:  # the opening, before the player's first line
                shown = await show_greeting(self.ctx, cast, cast.scene, greeting, sink)
                return rewound, shown
            cast = await load_cast(self.ctx, chat_id)
            speaker = cast.character(reply.speaker_id) or cast.host
            result = await play_beat(self.ctx, cast, speaker, None, sink, answering=player)
            return rewound, result

    async def _beat_of_message(self, chat_id: str, message_id: int) -> Beat:
        beat = await beat_by_message(self.ctx, chat_id, message_id)
        if beat is None:
            raise NotABeat()
        return beat

    async def rewind_to_message(self, chat_id: str, message_id: int) -> Rewound:
        """Return the story to right after the beat this message shows."""
        async with self._turn(chat_id):
            beat = await self._beat_of_message(chat_id, message_id)
            return await rewind_to(self.ctx, chat_id, beat)

    async def rewind_to_turn(self, chat_id: str, turn_id: int) -> Rewound:
        async with self._turn(chat_id):
            beat = await beat_by_id(self.ctx, chat_id, turn_id)
            if beat is None:
                raise NotABeat(turn_id)
            return await rewind_to(self.ctx, chat_id, beat)

    async def rewind_from_turn(self, chat_id: str, turn_id: int) -> Rewound:
        """Take beat ``turn_id`` and everything after it out of the story."""
        async with self._turn(chat_id):
            beat = await beat_by_id(self.ctx, chat_id, turn_id)
            if beat is None:
                raise NotABeat(turn_id)
            return await rewind_from(self.ctx, chat_id, beat)

    async def rewind_lines(self, chat_id: str, count: int) -> Rewound:
        """Take the player's last ``count`` lines back, with everything after the first of
        them; the story's opening always stays."""
        async with self._turn(chat_id):
            lines = await self.ctx.views.last_player_lines(chat_id, count)
            if len(lines) < count:
                raise TooFewLines(count, len(lines))
            first_gone = lines[-1]
            opening = await self.ctx.views.opening_beat(chat_id)
            if opening is not None and opening[0] == first_gone.id:
                raise RewindPastStart()
            return await rewind_from(self.ctx, chat_id, first_gone)

    async def take_back_message(self, chat_id: str, message_id: int) -> Rewound:
        """The player deleted their latest line: it and the reply to it leave the story."""
        async with self._turn(chat_id):
            beat = await self._beat_of_message(chat_id, message_id)
            return await take_back(self.ctx, chat_id, beat)

    async def edit_message(self, chat_id: str, message_id: int, new_prose: str) -> bool:
        """The player edited a line: the story's text follows.

        True if the text changed and it is the latest line (so a regenerate makes sense).
        """
        text = new_prose.strip()
        if not text or len(text) > self.ctx.settings.max_turn_chars:
            raise EditOutOfBounds(self.ctx.settings.max_turn_chars)
        refuse_unwritable(text, "the edited line")
        async with self._turn(chat_id):
            beat = await self._beat_of_message(chat_id, message_id)
            if beat.text == text:
                return False  # an update that is no edit (an embed or a link preview arrived)
            await edit_player_line(self.ctx, chat_id, beat, text)
            return await is_latest_player_line(self.ctx, chat_id, beat)

    async def why(self, chat_id: str, source_id: str, target_id: str) -> list[FeelingChange]:
        return await feeling_changes(self.ctx, chat_id, source_id, target_id)
