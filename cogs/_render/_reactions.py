"""Touching a reply's messages as the bot: the ⛔ to stop it, and clearing a stale copy."""

from __future__ import annotations

import logging

import discord

from cogs._render._types import StoryChannel

log = logging.getLogger(__name__)

STOP_EMOJI = "⛔"


async def add_stop(place: StoryChannel, message_id: int) -> None:
    """Offer ⛔ on a message; without it the player can still add one, so failure is logged."""
    try:
        await place.get_partial_message(message_id).add_reaction(STOP_EMOJI)
    except discord.HTTPException as exc:
        log.warning("could not add %s to message %d: %s", STOP_EMOJI, message_id, exc)


async def remove_stop(place: StoryChannel, message_id: int) -> None:
    """Take the bot's own ⛔ away once the reply is done."""
    try:
        await place.get_partial_message(message_id).remove_reaction(STOP_EMOJI, place.guild.me)
    except discord.HTTPException as exc:
        log.warning("could not remove %s from message %d: %s", STOP_EMOJI, message_id, exc)


async def delete_quietly(place: StoryChannel, message_id: int) -> None:
    """Delete a stale copy of a reply if the bot may (Manage Messages); otherwise leave it."""
    try:
        await place.get_partial_message(message_id).delete()
    except discord.HTTPException as exc:
        log.info("left stale message %d in place: %s", message_id, exc)
