"""Showing rewound beats as gone: their messages struck through (or deleted), or marked ⏪.

The bot can edit what it sent (through the character's webhook, or as itself) but never a
player's message: those get a ⏪ reaction, or are deleted when the bot may (Manage Messages).
"""

from __future__ import annotations

import logging
from typing import Literal

import discord
from discord.utils import MISSING

from cogs._render._split import MESSAGE_LIMIT
from cogs._render._voices import QUIET

log = logging.getLogger(__name__)

RetireMode = Literal["strike", "delete"]
REWOUND_EMOJI = "⏪"
REWOUND_NOTE = " *(rewound)*"
STRIKE = "~~"


def struck(content: str) -> str:
    """``~~text~~ *(rewound)*``, clipped so it still fits in one Discord message."""
    room = MESSAGE_LIMIT - len(REWOUND_NOTE) - 2 * len(STRIKE) - 1
    text = content.strip()
    if len(text) > room:
        text = text[:room].rstrip() + "…"
    return (f"{STRIKE}{text}{STRIKE}" if text else "") + REWOUND_NOTE


def is_struck(content: str) -> bool:
    return content.endswith(REWOUND_NOTE)


async def retire_message(
    message: discord.Message, mode: RetireMode, *, webhook: discord.Webhook | None, mine: bool
) -> None:
    """Retire one message; ``webhook`` sent it (if ours), ``mine``: the bot sent it itself."""
    try:
        if webhook is not None:
            await _through_webhook(webhook, message, mode)
        elif mine:
            await _own(message, mode)
        elif mode == "delete":
            await _delete_or_mark(message)
        else:
            await message.add_reaction(REWOUND_EMOJI)
    except discord.HTTPException as exc:
        log.warning("could not retire message %d: %s", message.id, exc)


async def _through_webhook(
    webhook: discord.Webhook, message: discord.Message, mode: RetireMode
) -> None:
    thread = message.channel if isinstance(message.channel, discord.Thread) else MISSING
    if mode == "delete":
        await webhook.delete_message(message.id, thread=thread)
    elif not is_struck(message.content):
        await webhook.edit_message(
            message.id, content=struck(message.content), allowed_mentions=QUIET, thread=thread
        )


async def _own(message: discord.Message, mode: RetireMode) -> None:
    if mode == "delete":
        await message.delete()
    elif not is_struck(message.content):
        await message.edit(content=struck(message.content), allowed_mentions=QUIET)


async def _delete_or_mark(message: discord.Message) -> None:
    """Someone else's message (the player's, or a webhook not ours): delete it, or mark it ⏪."""
    try:
        await message.delete()
    except discord.Forbidden:
        log.info("may not delete message %d (Manage Messages); marking it", message.id)
        await message.add_reaction(REWOUND_EMOJI)
