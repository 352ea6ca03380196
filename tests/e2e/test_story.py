"""A whole story on a real server, as its player sees it.

Given Spacebar, storybot as its own process and Mira and Tomás prepared with ``console
--guild``, the owner plays a story step by step; each step checks what the owner's client
receives (messages, edits, answers, files), not what the bot believes it did.
"""

from __future__ import annotations

import json

import httpx

from tests.e2e.conftest import E2E_TEST, BotProcess, Narration
from tests.e2e.player import Player
from tests.e2e.seeing import (
    STREAM_MARKER,
    both,
    by_webhook,
    edits_of,
    most_in_window,
    sees,
    text_has,
    text_is,
)
from tests.e2e.story import MIRA, STOP_EMOJI, say, start_story

pytestmark = E2E_TEST

TOMAS = "Tomás Reyes"
EDIT_BUDGET = 10  # [discord] edit_interval_seconds = 0.5 in the e2e config: 10 per 5 s
REGENERATE_EMOJI = "🔄"
END_MEANWHILE = "storybot:meanwhile:end"


async def test_a_whole_story(
    owner: Player, bot: BotProcess, narration: Narration, channel: str
) -> None:
    # /chat start: the host opens through her own webhook, under her own name
    opening = await start_story(owner, channel, guest="tomas", place="the Lantern café")
    assert opening["webhook_id"] and opening["author"]["username"] == MIRA
    assert not opening["content"].endswith(STREAM_MARKER)

    # a streamed reply: one message that grows by edits, paced, and ends with the exact text
    reply = narration.then(
        "*Mira sets the kettle on and waits for it to sing.* " * 4
        + '"You came back. I did not think you would."',
        seconds=3.0,
    )
    mark = owner.mark()
    line, final = await say(owner, channel, "Hi Mira. Long night.", reply)
    edits = edits_of(owner, channel, since=mark)
    assert len(edits) >= 2, "a reply of three seconds is edited as it streams"
    assert all(e.data["id"] == final["id"] for e in edits)
    assert most_in_window([e.at for e in edits]) <= EDIT_BUDGET
    # the owner's line stays as written; the reply is in the channel for everyone
    shown = {m["id"]: m for m in await owner.messages(channel)}
    assert shown[final["id"]]["content"] == reply
    assert shown[line["id"]]["content"] == "Hi Mira. Long night."

    # ⛔ on a streaming reply stops it: the words so far stay, marked stopped
    narration.then("*Mira starts a long story about the harbour and its ghosts* " * 8, seconds=8)
    mark = owner.mark()
    await owner.send(channel, "Tell me about the harbour.")
    streaming = await sees(owner, channel, by_webhook(MIRA), since=mark)
    await owner.react(channel, streaming["id"], STOP_EMOJI)
    stopped = await sees(owner, channel, text_has("*(stopped)*"), since=mark)
    assert stopped["id"] == streaming["id"]

    # /stop does the same
    narration.then("*Mira hums an old tune, verse after verse* " * 8, seconds=8)
    mark = owner.mark()
    await owner.send(channel, "Sing something.")
    await sees(owner, channel, by_webhook(MIRA), since=mark)
    await owner.slash(channel, "stop")
    await sees(owner, channel, text_has(f"{STOP_EMOJI} stopped"), since=mark)
    await sees(owner, channel, text_has("*(stopped)*"), since=mark)

    # /regenerate: a new reply streams in, the old one is struck through
    await say(owner, channel, "Sorry. Go on.", narration.then('"Where was I?"'))
    mark = owner.mark()
    new_reply = narration.then('"Ah, yes. The ghosts."')
    await owner.slash(channel, "regenerate")
    await sees(owner, channel, both(by_webhook(MIRA), text_is(new_reply)), since=mark)
    await sees(owner, channel, text_is('~~"Where was I?"~~ *(rewound)*'), since=mark)
    await sees(owner, channel, text_has("the latest reply was regenerated"), since=mark)

    # 🔄 on the latest reply: the same, without a command
    latest = (await owner.messages(channel))[-1]
    assert latest["content"] == new_reply
    mark = owner.mark()
    again = narration.then('"The ghosts, they say, keep the lamps lit."')
    await owner.react(channel, latest["id"], REGENERATE_EMOJI)
    await sees(owner, channel, both(by_webhook(MIRA), text_is(again)), since=mark)
    await sees(owner, channel, text_is(f"~~{new_reply}~~ *(rewound)*"), since=mark)

    # editing the latest line changes it in the story and offers to regenerate the reply
    typo, _ = await say(owner, channel, "I sya nothing.", narration.then('"Hm."'))
    mark = owner.mark()
    await owner.edit(channel, typo["id"], "I say nothing.")
    offer = await sees(owner, channel, text_has("Your line changed"), since=mark)
    assert offer["components"], "the offer carries a Regenerate button"

    # deleting the latest line takes it back: its reply is struck through
    oops, _ = await say(owner, channel, "Oops, wrong window.", narration.then('"What?"'))
    mark = owner.mark()
    await owner.delete(channel, oops["id"])
    await sees(owner, channel, text_is('~~"What?"~~ *(rewound)*'), since=mark)

    # "Rewind story to here" on an earlier line: what came after leaves the story
    keep, _ = await say(owner, channel, "Let's start over.", narration.then('"Gladly."'))
    await say(owner, channel, "Or not.", narration.then('"Make up your mind."'))
    mark = await owner.message_command(channel, "Rewind story to here", keep)
    await sees(owner, channel, text_has("rewound"), since=mark)
    await sees(owner, channel, text_is('~~"Make up your mind."~~ *(rewound)*'), since=mark)

    # /meanwhile: a thread with an End button; lines there steer host and guest; the digest
    mark = await owner.slash(channel, "meanwhile", premise="Mira and Tomás close up the café")
    thread = await owner.wait_for("THREAD_CREATE", lambda d: d.get("parent_id") == channel)
    thread_id = thread["id"]
    intro = await sees(owner, thread_id, text_has("Host and guest go on without you"), since=mark)
    assert END_MEANWHILE in json.dumps(intro["components"])
    await sees(owner, channel, text_has("Meanwhile… opened in"), since=mark)
    first = narration.then('"Chairs up," Mira says.')
    second = narration.then('"Already on it," Tomás says.')
    await owner.send(thread_id, "They stack the chairs.")
    await sees(owner, thread_id, both(by_webhook(MIRA), text_is(first)), since=mark)
    await owner.send(thread_id, "The rain eases.")
    await sees(owner, thread_id, both(by_webhook(TOMAS), text_is(second)), since=mark)
    mark = await owner.press(thread_id, intro["id"], END_MEANWHILE)
    digest = await sees(owner, channel, text_has("**While you were away…**"), since=mark)
    assert "While you were away, Mira and Tomás stacked the chairs" in digest["content"]

    # /scene close, /chat status
    mark = await owner.slash(channel, "scene close")
    await sees(owner, channel, text_has("The scene closes."), since=mark)
    mark = await owner.slash(channel, "chat status")
    status = await sees(owner, channel, lambda d: bool(d.get("embeds")), since=mark)
    fields = {f["name"]: f["value"] for f in status["embeds"][0]["fields"]}
    assert fields["place"] == "the Lantern café"
    assert "Mira Vale" in fields["present"]

    # /chat export: the story as Markdown and its log as JSON lines
    mark = await owner.slash(channel, "chat export")
    exported = await sees(owner, channel, lambda d: bool(d.get("attachments")), since=mark)
    files = {a["filename"]: a["url"] for a in exported["attachments"]}
    [markdown_name] = [n for n in files if n.endswith(".md")]
    [log_name] = [n for n in files if n.endswith(".jsonl")]
    markdown = await download(files[markdown_name])
    assert "Hi Mira. Long night." in markdown
    assert "I say nothing." in markdown and "I sya nothing." not in markdown
    assert "Or not." not in markdown  # rewound
    kinds = {json.loads(line)["kind"] for line in (await download(files[log_name])).splitlines()}
    assert {"chat_created", "user_turn", "assistant_turn", "beats_rewound"} <= kinds

    # /character export: a Tavern card of Mira (a PNG carrying the card: her avatar is a PNG)
    mark = await owner.slash(channel, "character export", character="mira")
    card = await sees(owner, channel, lambda d: bool(d.get("attachments")), since=mark)
    [attachment] = card["attachments"]
    assert attachment["filename"].endswith(".png")
    assert bot.errors() == []


async def download(url: str) -> str:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(url)
        response.raise_for_status()
        return response.text
