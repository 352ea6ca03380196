"""What every story cog shares: the bot's engine and renderer, and errors answered privately.

A cog is a doorway: it parses the interaction, calls the engine, renders the result. Anything a
player can fix (a StoryError from the engine, in the words of ``cogs/_errors.py``; a refusal
from a guard; a bad card) is answered ephemerally to the one who asked; anything else is logged
and answered with a short apology.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import discord
from discord import app_commands
from discord.ext import commands
from discord.utils import MISSING

from bot.cards import CardError
from bot.engine import StoryError
from cogs._errors import describe

if TYPE_CHECKING:
    from bot.app import StoryBot
    from bot.engine import Engine
    from cogs._render import Renderer

log = logging.getLogger(__name__)

Interaction: TypeAlias = "discord.Interaction[StoryBot]"


class Refusal(app_commands.AppCommandError):
    """A request this player may not make here; the message says why (and what to do)."""


SHUTTING_DOWN = "storybot is shutting down; try again when it is back"

# Interactions deferred with a public "thinking…" message and not answered yet. Discord turns the
# first followup into that message whatever its ephemeral flag, so a private answer (an error)
# takes the public placeholder away first. Bounded: an interaction lives 15 minutes at most.
_public_deferrals: deque[int] = deque(maxlen=256)


async def defer(interaction: Interaction, *, ephemeral: bool) -> None:
    """Acknowledge now ("thinking…"), for work that may outlast Discord's 3 seconds.

    Anything that waits on the chat's turn queue (behind a streaming reply) or downloads must
    defer before it starts; the answer then comes through ``answer`` as a followup. Deferring an
    interaction already answered or deferred does nothing. Shutdown waits for (then cancels) the
    deferred work, so it never writes to a closed store.
    """
    interaction.client.keep_until_done()
    if interaction.response.is_done():
        return
    await interaction.response.defer(ephemeral=ephemeral, thinking=True)
    if not ephemeral:
        _public_deferrals.append(interaction.id)


async def answer(
    interaction: discord.Interaction[Any],
    text: str = "",
    *,
    embed: discord.Embed = MISSING,
    files: Sequence[discord.File] = MISSING,
    ephemeral: bool = True,
) -> None:
    """Reply to an interaction whether or not it was answered (or deferred) already."""
    if not interaction.response.is_done():
        await interaction.response.send_message(text, embed=embed, files=files, ephemeral=ephemeral)
        return
    if interaction.id in _public_deferrals:
        _public_deferrals.remove(interaction.id)
        if ephemeral:
            try:
                await interaction.delete_original_response()
            except discord.HTTPException as exc:
                log.info("could not take away the thinking message: %s", exc)
    await interaction.followup.send(text, embed=embed, files=files, ephemeral=ephemeral)


def player_message(error: BaseException) -> str | None:
    """The message for an error the player can act on, or None for our own bugs."""
    cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    if isinstance(cause, StoryError):
        return describe(cause)
    if isinstance(cause, CardError | Refusal):
        return str(cause)
    if isinstance(cause, app_commands.CheckFailure | app_commands.TransformerError):
        return str(cause) or "you can't use that here"
    return None


async def answer_error(interaction: discord.Interaction[Any], error: BaseException) -> None:
    message = player_message(error)
    if message is None:
        log.error("a command failed", exc_info=error)
        message = "something went wrong on my side; it has been logged"
    try:
        await answer(interaction, message)
    except discord.HTTPException:
        log.warning("could not tell %s about a failed command: %s", interaction.user, message)


def refuse_while_closing(interaction: discord.Interaction[Any]) -> None:
    engine: Engine = interaction.client.engine
    if engine.closing:
        raise Refusal(SHUTTING_DOWN)


class StoryCog(commands.Cog):
    """Base of the story cogs: access to the story, and private answers to failed commands.

    The command tree's error handler is ``answer_error``, the one handler of every failed slash
    command and context menu (in a cog or not); the story cogs install it, so it is there
    whichever of them load.
    """

    def __init__(self, bot: StoryBot) -> None:
        self.bot = bot
        bot.tree.error(answer_error)

    @property
    def engine(self) -> Engine:
        return self.bot.engine

    @property
    def renderer(self) -> Renderer:
        return self.bot.renderer

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        """No new story work starts once the bot is shutting down; shutdown waits for the rest."""
        refuse_while_closing(interaction)
        interaction.client.keep_until_done()
        return True
