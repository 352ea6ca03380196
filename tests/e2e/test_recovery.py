"""A restart of the bot mid-reply, on a real server: clean (SIGTERM) and a crash (SIGKILL).

A clean stop marks the streaming reply stopped on screen before the process ends; a crash
leaves the turn open in the log, and the next start closes it as interrupted. Either way the
story goes on after the restart.
"""

from __future__ import annotations

import signal
import tomllib
from pathlib import Path

from bot.store.events import AssistantTurn
from tests.e2e.conftest import E2E_TEST, BotProcess, Narration
from tests.e2e.player import Player
from tests.e2e.seeing import by_webhook, sees, text_has
from tests.e2e.story import MIRA, say, start_story
from tests.helpers.events import log_in_file

pytestmark = E2E_TEST

LONG = "*Mira talks on and on about the old lighthouse keeper.* " * 10


async def interrupted_turns(bot: BotProcess, chat_prefix: str) -> list[dict[str, object]]:
    """The log's interrupted replies of the channel's story (read from the bot's database)."""
    settings = tomllib.loads(bot.config.read_text())
    log = await log_in_file(Path(settings["storage"]["db_path"]))
    return [
        event.payload.model_dump(mode="json")
        for event in log
        if isinstance(event.payload, AssistantTurn)
        and (event.chat_id or "").startswith(chat_prefix)
        and event.payload.interrupted
    ]


async def test_a_clean_restart_mid_reply_marks_it_stopped_and_the_story_goes_on(
    owner: Player, bot: BotProcess, narration: Narration, channel: str
) -> None:
    await start_story(owner, channel)
    narration.then(LONG, seconds=10)
    mark = owner.mark()
    await owner.send(channel, "Tell me about the lighthouse.")
    await sees(owner, channel, by_webhook(MIRA), since=mark)
    assert await bot.stop(signal.SIGTERM) == 0
    await sees(owner, channel, text_has("*(stopped)*"), since=mark)

    await bot.start()
    await say(owner, channel, "Go on.", narration.then('"Where was I? Ah, the keeper."'))


async def test_a_crash_mid_reply_is_closed_at_the_next_start(
    owner: Player, bot: BotProcess, narration: Narration, channel: str
) -> None:
    await start_story(owner, channel)
    narration.then(LONG, seconds=10)
    mark = owner.mark()
    await owner.send(channel, "And the storm?")
    await sees(owner, channel, by_webhook(MIRA), since=mark)
    await bot.stop(signal.SIGKILL)
    assert await interrupted_turns(bot, channel) == []  # cut off: only its turn_started is written

    await bot.start()  # closes the cut-off turn before it connects
    [interrupted] = await interrupted_turns(bot, channel)
    assert interrupted["speaker_id"] == "mira"
    await say(owner, channel, "Are you all right?", narration.then('"I lost my thread."'))
    assert bot.errors() == []
