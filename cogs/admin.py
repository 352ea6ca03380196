"""Owner-only upkeep: syncing slash commands (globally only when the owner asks)."""

from __future__ import annotations

import logging
from typing import Any, Literal

from discord.ext import commands

from bot.app import StoryBot

log = logging.getLogger(__name__)


class Admin(commands.Cog):
    def __init__(self, bot: StoryBot) -> None:
        self.bot = bot

    @commands.command(name="sync")
    @commands.is_owner()
    @commands.guild_only()
    async def sync(
        self, ctx: commands.Context[StoryBot], scope: Literal["here", "global"] = "here"
    ) -> None:
        """`@storybot sync` syncs to this server at once; `sync global` everywhere (slow)."""
        if scope == "global":
            synced = await self.bot.tree.sync()
        else:
            assert ctx.guild is not None
            self.bot.tree.copy_global_to(guild=ctx.guild)
            synced = await self.bot.tree.sync(guild=ctx.guild)
        log.info("%s synced %d commands (%s)", ctx.author, len(synced), scope)
        await ctx.reply(f"synced {len(synced)} commands ({scope})", mention_author=False)

    async def cog_command_error(self, ctx: commands.Context[Any], error: Exception) -> None:
        if isinstance(error, commands.NotOwner):
            await ctx.reply("only the owner of this bot can sync commands", mention_author=False)
        elif isinstance(error, commands.CommandError):
            await ctx.reply(str(error), mention_author=False)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, StoryBot)
    await bot.add_cog(Admin(bot))
