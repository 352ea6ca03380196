"""Gateway payloads can be partial: what listeners read from them, read safely.

discord.py builds a Message from whatever a MESSAGE_CREATE or MESSAGE_UPDATE carried; an
update without ``author`` (an embed unfurling, a server that sends only what changed) gives a
Message with no ``author`` attribute at all. Listeners ask here instead of assuming.
"""

from __future__ import annotations

import discord


def author_of(message: discord.Message) -> discord.abc.User | None:
    """The message's author, or None when the payload did not say."""
    author: discord.abc.User | None = getattr(message, "author", None)
    return author


def by_a_person(message: discord.Message) -> bool:
    """Sent in a server by a person (not a bot, not a webhook); False when it cannot be told."""
    author = author_of(message)
    return (
        author is not None
        and not author.bot
        and message.webhook_id is None
        and message.guild is not None
    )
