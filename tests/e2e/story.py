"""Steps of a story on a real server that several e2e modules take: start one, say a line."""

from __future__ import annotations

from typing import Any

from tests.e2e.player import Payload, Player
from tests.e2e.seeing import both, by_webhook, sees, text_has, text_is

MIRA = "Mira Vale"
KICKOFF_START = "*Rain ticks against the Lantern's windows."
STOP_EMOJI = "⛔"


async def start_story(owner: Player, channel: str, **options: Any) -> Payload:
    """/chat start with Mira hosting (Tomás the guest); returns the host's opening message."""
    mark = await owner.slash(channel, "chat start", host="mira", **options)
    await sees(owner, channel, text_has("A story begins with Mira Vale"), since=mark)
    return await sees(owner, channel, text_has(KICKOFF_START), since=mark)


async def say(
    owner: Player, channel: str, line: str, reply: str, *, speaker: str = MIRA
) -> tuple[Payload, Payload]:
    """The owner writes ``line``; ``speaker`` answers exactly ``reply`` (streamed, edited)."""
    mark = owner.mark()
    sent = await owner.send(channel, line)
    final = await sees(owner, channel, both(by_webhook(speaker), text_is(reply)), since=mark)
    return sent, final
