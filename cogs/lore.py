"""The story's world book (world info): import a SillyTavern file, add, list, remove, and why.

The world book reaches every character of the story; a card's own lorebook reaches only that
character (it comes with the card). Changing the book is the story owner's; reading is anyone's.
"""

from __future__ import annotations

from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import StoryBot
from bot.engine.lore import describe_entry, entry_fields
from cogs._base import Interaction, Refusal, StoryCog, answer, defer
from cogs._choices import character_choices
from cogs._embeds import COLOUR, clip, fit
from cogs._guards import steered_story, story_here

MAX_BOOK_BYTES = 2 * 1024 * 1024
MAX_LISTED = 40


class Lore(StoryCog):
    lore = app_commands.Group(
        name="lore", description="The story's world book (world info)", guild_only=True
    )

    @lore.command(name="import", description="Replace the world book with a SillyTavern file")
    @app_commands.describe(book="a SillyTavern world-info JSON file (or a card JSON's lorebook)")
    async def import_(self, interaction: Interaction, book: discord.Attachment) -> None:
        place = await steered_story(interaction, "change its world book")
        if book.size > MAX_BOOK_BYTES:
            raise Refusal(f"{book.filename} is too big (the limit is 2 MiB)")
        await defer(interaction, ephemeral=True)
        data = await book.read()
        imported = await self.engine.lore.import_book(place.chat.id, data, book.filename)
        await answer(
            interaction,
            f"The world book is now {imported.name or book.filename}: "
            f"{len(imported.entries)} entries (earlier entries were replaced).",
        )

    @lore.command(name="add", description="Add an entry to the world book")
    @app_commands.describe(
        keys="words that make it fire, comma-separated",
        content="what the characters are told when it fires",
        secondary="more words, comma-separated, checked by 'logic'",
        logic="how the secondary words decide",
        constant="always sent, whatever is said",
        position="before or after the character's description, or at a depth in the transcript",
        depth="with position at_depth: how many messages from the end",
        order="lower comes first among entries that fire",
    )
    async def add(
        self,
        interaction: Interaction,
        *,
        keys: str,
        content: str,
        secondary: str = "",
        logic: Literal["and_any", "and_all", "not_any", "not_all"] = "and_any",
        constant: bool = False,
        position: Literal["before_char", "after_char", "at_depth"] = "before_char",
        order: int = 100,
        depth: int = 4,
    ) -> None:
        place = await steered_story(interaction, "change its world book")
        fields = entry_fields(
            keys=keys,
            content=content,
            secondary_keys=secondary,
            logic=logic,
            constant=constant,
            position=position,
            order=order,
            depth=depth,
        )
        number = await self.engine.lore.add(place.chat.id, fields)
        await answer(interaction, f"World-book entry #{number} added.")

    @lore.command(name="list", description="The world book's entries")
    async def list_(self, interaction: Interaction) -> None:
        place = await story_here(interaction)
        book = await self.engine.lore.book(place.chat.id)
        lines = [
            describe_entry(number, entry)
            for number, entry in zip(book.numbers, book.entries, strict=True)
        ]
        shown = lines[:MAX_LISTED]
        if len(lines) > MAX_LISTED:
            shown.append(f"… and {len(lines) - MAX_LISTED} more")
        embed = discord.Embed(
            title="World book",
            description=clip("\n".join(shown) or "empty: /lore add or /lore import", 4000),
            colour=COLOUR,
        )
        await answer(interaction, embed=fit(embed))

    @lore.command(name="remove", description="Remove a world-book entry by its number")
    @app_commands.describe(number="the entry's number in /lore list")
    async def remove(self, interaction: Interaction, number: int) -> None:
        place = await steered_story(interaction, "change its world book")
        await self.engine.lore.remove(place.chat.id, number)
        await answer(interaction, f"World-book entry #{number} removed.")

    @lore.command(name="why", description="Which world info a character's next reply carries")
    @app_commands.autocomplete(character=character_choices)
    @app_commands.describe(
        character="whose prompt (default: the host)", line="a line to test against"
    )
    async def why(
        self, interaction: Interaction, character: str | None = None, line: str = ""
    ) -> None:
        place = await story_here(interaction)
        speaker, activation = await self.engine.lore.why(place.chat.id, character, line)
        lines = [f"**{f.title}** ({f.book}): {f.reason}" for f in activation.fired]
        lines += [f"over budget: {f.title} ({f.book})" for f in activation.over_budget]
        embed = discord.Embed(
            title=f"World info for {speaker.name}'s next reply",
            description=clip("\n".join(lines) or "nothing fires now", 4000),
            colour=COLOUR,
        )
        await answer(interaction, embed=fit(embed))


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, StoryBot)
    await bot.add_cog(Lore(bot))
