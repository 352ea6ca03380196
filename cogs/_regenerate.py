"""The "Regenerate the reply" prompt the bot offers after the player edits their latest line.

One prompt per edited message at a time; it deletes itself once pressed or when it times out.
"""

from __future__ import annotations

import contextlib
import logging

import discord

from bot.store.views import Chat
from cogs._base import SHUTTING_DOWN, Interaction, answer, answer_error
from cogs._guards import may_steer
from cogs._steering import REGENERATE_EMOJI, regenerate_reply

log = logging.getLogger(__name__)

OFFER_SECONDS = 300.0
OFFER_TEXT = "Your line changed. Should the reply change too?"
OWNER_ONLY = "only the owner of this story can regenerate its replies"


class RegenerateOffer(discord.ui.View):
    """A one-button prompt under an edited line; ``offers`` holds the live ones by line."""

    def __init__(
        self, chat: Chat, line_id: int, offers: dict[int, RegenerateOffer], *, timeout: float
    ) -> None:
        super().__init__(timeout=timeout)
        self.chat = chat
        self.line_id = line_id
        self.offers = offers
        self.prompt: discord.Message | None = None

    @classmethod
    async def post(
        cls,
        line: discord.Message,
        chat: Chat,
        offers: dict[int, RegenerateOffer],
        *,
        lasting: float = OFFER_SECONDS,
    ) -> None:
        """Reply under ``line`` unless a prompt is already open there."""
        if line.id in offers:
            return
        offer = offers[line.id] = cls(chat, line.id, offers, timeout=lasting)
        try:
            offer.prompt = await line.reply(OFFER_TEXT, view=offer, mention_author=False)
        except BaseException:
            await offer.close()
            raise

    @discord.ui.button(
        label="Regenerate the reply", emoji=REGENERATE_EMOJI, style=discord.ButtonStyle.primary
    )
    async def regenerate(
        self, interaction: Interaction, button: discord.ui.Button[RegenerateOffer]
    ) -> None:
        await interaction.response.defer()
        await self.close()
        await regenerate_reply(interaction.client, self.chat)

    async def interaction_check(self, interaction: Interaction) -> bool:  # type: ignore[override]
        """The story's owner, or someone who manages the channel (as everywhere else)."""
        if interaction.client.engine.closing:
            await answer(interaction, SHUTTING_DOWN)
            return False
        if may_steer(interaction.user.id, self.chat, interaction.permissions):
            return True
        await answer(interaction, OWNER_ONLY)
        return False

    async def on_timeout(self) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop listening and take the prompt away."""
        self.stop()
        self.offers.pop(self.line_id, None)
        if self.prompt is not None:
            with contextlib.suppress(discord.HTTPException):
                await self.prompt.delete()
            self.prompt = None

    async def on_error(  # type: ignore[override]
        self, interaction: Interaction, error: Exception, item: discord.ui.Item[RegenerateOffer], /
    ) -> None:
        await answer_error(interaction, error)
