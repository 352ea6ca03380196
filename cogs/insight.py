"""What the characters remember and feel, and why: memories, relationships, read-only.

The story owner's look behind the scenes: these show what the *characters* know, so only the
owner (or someone who manages the channel) may ask, and every answer is private (ephemeral).
"""

from __future__ import annotations

from discord import app_commands
from discord.ext import commands

from bot.app import StoryBot
from bot.store import YOU
from cogs._base import Interaction, Refusal, StoryCog, answer
from cogs._choices import character_choices, someone_choices
from cogs._embeds import memories_embed, relationship_embed, why_embed
from cogs._guards import StoryPlace, steered_story

BEHIND_THE_SCENES = "look behind the scenes"


class Insight(StoryCog):
    @app_commands.command(name="memories", description="What a character of this story remembers")
    @app_commands.autocomplete(character=character_choices)
    @app_commands.guild_only()
    async def memories(self, interaction: Interaction, character: str, query: str = "") -> None:
        place = await steered_story(interaction, BEHIND_THE_SCENES)
        if character == YOU:
            raise Refusal("you keep your own memories; ask about a character of this story")
        names = await self._in_story(place, character)
        memories = await self.engine.queries.own_memories(place.chat.id, character, query=query)
        await answer(interaction, embed=memories_embed(names[character], memories, query))

    @app_commands.command(name="relationship", description="How one character feels about another")
    @app_commands.autocomplete(a=character_choices, b=character_choices)
    @app_commands.describe(a="who feels", b="about whom ('you' for you)")
    @app_commands.guild_only()
    async def relationship(self, interaction: Interaction, a: str, b: str) -> None:
        place = await steered_story(interaction, BEHIND_THE_SCENES)
        names = await self._in_story(place, a, b)
        relationship = await self.engine.queries.relationship(place.chat.id, a, b)
        await answer(interaction, embed=relationship_embed(relationship, names[a], names[b]))

    @app_commands.command(name="why", description="Which beats moved how one feels about another")
    @app_commands.autocomplete(a=someone_choices, b=someone_choices)
    @app_commands.describe(a="who feels", b="about whom ('you' for you)")
    @app_commands.guild_only()
    async def why(self, interaction: Interaction, a: str, b: str) -> None:
        place = await steered_story(interaction, BEHIND_THE_SCENES)
        names = await self._in_story(place, a, b)
        changes = await self.engine.history.why(place.chat.id, a, b)
        await answer(interaction, embed=why_embed(changes, names[a], names[b]))

    async def _in_story(self, place: StoryPlace, *who: str) -> dict[str, str]:
        """The story's names, if everyone asked about is in it."""
        names = await self._cast(place)
        for someone in who:
            if someone not in names:
                raise Refusal(f"{someone!r} is not in this story")
        return names

    async def _cast(self, place: StoryPlace) -> dict[str, str]:
        """Everyone of this story by id: its host, its guest, and you."""
        return (await self.engine.queries.status(place.chat.id)).names


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, StoryBot)
    await bot.add_cog(Insight(bot))
