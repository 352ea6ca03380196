"""Who may do what, on a real server: /chat start's checks, another player's ⛔, no webhooks.

Permissions are real Spacebar channel overwrites on the bot's member, so the bot learns them
from the server (the interaction's app_permissions, the channel's overwrites), as on Discord.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from tests.e2e.conftest import E2E_TEST, BotProcess, Narration, new_channel
from tests.e2e.player import Payload, Player
from tests.e2e.seeing import both, by_webhook, sees, text_has, text_is
from tests.e2e.story import KICKOFF_START, MIRA, STOP_EMOJI, say, start_story

pytestmark = E2E_TEST

SEND_MESSAGES = 1 << 11
MANAGE_WEBHOOKS = 1 << 29


async def test_chat_start_refuses_where_the_bot_cannot_speak_or_a_story_runs(
    owner: Player, stranger: Player, bot: BotProcess, server: dict[str, str], channel: str
) -> None:
    # Where the bot may not send messages it refuses. (Spacebar, unlike Discord, also refuses
    # the bot's answer to the interaction there, so the refusal is read in the bot's log.)
    mute = await new_channel(owner, "mute", deny_bot=SEND_MESSAGES, bot_id=server["bot_id"])
    await owner.slash(mute, "chat start", host="mira")
    await bot.wait_logged("I can't send messages in this channel")
    # nothing was bound by the refused start: once the bot may speak, a story starts there
    await owner.call("DELETE", f"/channels/{mute}/permissions/{server['bot_id']}")
    await start_story(owner, mute)

    await start_story(owner, channel)
    mark = await owner.slash(channel, "chat start", host="mira")
    await sees(owner, channel, text_has("this channel already has a story"), since=mark)

    # someone who does not own the story may not change it
    mark = await stranger.slash(channel, "chat end")
    await sees(stranger, channel, text_has("only the owner of this story can end it"), since=mark)
    mark = await stranger.slash(channel, "regenerate")
    await sees(stranger, channel, text_has("only the owner of this story can"), since=mark)

    # a thread is no home for a story
    thread: Payload = await owner.call(
        "POST", f"/channels/{channel}/threads", json={"name": "aside", "type": 11}
    )
    mark = await owner.slash(thread["id"], "chat start", host="mira")
    await sees(owner, thread["id"], text_has("a story needs a text channel"), since=mark)


async def reacted_with(player: Player, channel: str, message_id: str, emoji: str) -> set[str]:
    """Who has reacted ``emoji`` to the message (Spacebar answers 404 for nobody)."""
    path = f"/channels/{channel}/messages/{message_id}/reactions/{quote(emoji)}"
    response = await player.get(path)
    if response.status_code == 404:
        return set()
    response.raise_for_status()
    return {user["id"] for user in response.json()}


async def test_a_stop_from_someone_who_is_not_the_owner_is_taken_back(
    owner: Player, stranger: Player, bot: BotProcess, narration: Narration, channel: str
) -> None:
    await start_story(owner, channel)
    reply = narration.then("*Mira tells the whole tale, slowly, word by word.* " * 5, seconds=5)
    mark = owner.mark()
    await owner.send(channel, "Tell me everything.")
    streaming = await sees(owner, channel, by_webhook(MIRA), since=mark)
    await stranger.react(channel, streaming["id"], STOP_EMOJI)
    # taken back (Spacebar's MESSAGE_REACTION_REMOVE names the remover, and the bot removes
    # reactions of its own too, so ask who is left until the stranger is gone)
    await owner.wait_for(
        "MESSAGE_REACTION_REMOVE", lambda d: d.get("message_id") == streaming["id"], since=mark
    )
    for _ in range(50):
        if stranger.user_id not in await reacted_with(owner, channel, streaming["id"], STOP_EMOJI):
            break
        await asyncio.sleep(0.2)
    assert stranger.user_id not in await reacted_with(owner, channel, streaming["id"], STOP_EMOJI)
    final = await sees(owner, channel, text_is(reply.strip()), since=mark)
    assert final["id"] == streaming["id"]  # finished whole, not stopped

    # and the stranger's lines are no turns in the owner's story
    mark = owner.mark()
    await stranger.send(channel, "Can I play too?")
    await owner.send(channel, "Thank you.")
    answer = await sees(owner, channel, by_webhook(MIRA), since=mark)
    assert "Can I play too?" not in answer["content"]


async def test_without_manage_webhooks_the_characters_speak_through_the_bot(
    owner: Player, bot: BotProcess, narration: Narration, server: dict[str, str]
) -> None:
    channel = await new_channel(
        owner, "no-webhooks", deny_bot=MANAGE_WEBHOOKS, bot_id=server["bot_id"]
    )
    mark = await owner.slash(channel, "chat start", host="mira")
    note = await sees(owner, channel, text_has("A story begins with Mira Vale"), since=mark)
    assert "Manage Webhooks" in note["content"]
    told = await sees(owner, channel, text_has("missing the **Manage Webhooks**"), since=mark)
    assert told["content"].startswith(f"<@{owner.user_id}>")
    opening = await sees(owner, channel, text_has(f"**{MIRA}**: {KICKOFF_START}"), since=mark)
    assert not opening.get("webhook_id")
    assert opening["author"]["id"] == server["bot_id"]

    reply = narration.then('"No webhooks tonight, then."')
    mark = owner.mark()
    await owner.send(channel, "Hello?")
    final = await sees(owner, channel, text_is(f"**{MIRA}**: {reply}"), since=mark)
    assert final["author"]["id"] == server["bot_id"]
    # the owner is told once per channel, not at every reply
    assert not [
        e for e in owner.events[mark:] if "Manage Webhooks" in (e.data.get("content") or "")
    ]


async def test_two_stories_at_once_do_not_mix(
    owner: Player, bot: BotProcess, narration: Narration, channel: str
) -> None:
    """Two stories at once, in two channels, do not mix."""
    other = await new_channel(owner, "second-story")
    await start_story(owner, channel)
    await start_story(owner, other)
    first = narration.then('"This is the first story."')
    await say(owner, channel, "One.", first)
    second = narration.then('"And this the second."')
    _, shown = await say(owner, other, "Two.", second)
    assert shown["channel_id"] == other
    assert both(by_webhook(MIRA), text_is(second))(shown)
