"""Characters and you: write, import, export, show, edit, give an avatar, delete; set your persona.

Characters belong to the server they were made in; their creator or a server manager edits them.
"""

from __future__ import annotations

from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import StoryBot
from bot.cards import load_character
from bot.cards.limits import MAX_AVATAR_BYTES, MAX_INPUT_BYTES
from cogs._base import Interaction, Refusal, StoryCog, answer, defer
from cogs._character_modal import CharacterModal
from cogs._choices import character_choices
from cogs._embeds import character_embed, clip
from cogs._files import card_file
from cogs._guards import editable_character, guild_of, known_character


async def read_upload(attachment: discord.Attachment, limit: int) -> bytes:
    if attachment.size > limit:
        raise Refusal(
            f"{attachment.filename} is {attachment.size // 1024} KiB; "
            f"the limit is {limit // 1024} KiB"
        )
    return await attachment.read()


class Characters(StoryCog):
    character = app_commands.Group(
        name="character", description="The characters of this server", guild_only=True
    )
    you = app_commands.Group(name="you", description="Who you are in stories", guild_only=True)

    @character.command(name="create", description="Write a new character")
    async def create(self, interaction: Interaction) -> None:
        guild_of(interaction)
        await interaction.response.send_modal(CharacterModal())

    @character.command(name="import", description="Import a character: our TOML or a Tavern card")
    @app_commands.describe(card="a .toml file, or a Tavern card (PNG, JSON or CHARX)")
    async def import_(self, interaction: Interaction, card: discord.Attachment) -> None:
        guild_id = guild_of(interaction)
        await defer(interaction, ephemeral=True)
        imported = load_character(await read_upload(card, MAX_INPUT_BYTES), card.filename)
        existing = str(imported.fields.get("id", ""))
        if await self.engine.characters.get(guild_id, existing):
            await editable_character(interaction, existing)
        avatar = None
        if imported.avatar_bytes and imported.avatar_content_type:
            avatar = (imported.avatar_bytes, imported.avatar_content_type)
        character = await self.engine.characters.author(
            imported.fields, guild_id=guild_id, creator_id=interaction.user.id, avatar=avatar
        )
        notes = "".join(f"\n• {warning}" for warning in imported.warnings)
        await answer(
            interaction, f"{character.name} imported{notes}", embed=character_embed(character)
        )

    @character.command(name="list", description="The characters of this server")
    async def list_(self, interaction: Interaction) -> None:
        characters = await self.engine.characters.all(guild_of(interaction))
        lines = [f"**{c.name}** `{c.id}`" for c in characters]
        listing = "\n".join(lines) or "no characters yet: /character create"
        await answer(interaction, clip(listing, 2000))

    @character.command(name="show", description="A character's card")
    @app_commands.autocomplete(character=character_choices)
    async def show(self, interaction: Interaction, character: str) -> None:
        found = await known_character(interaction, character)
        await answer(interaction, embed=character_embed(found))

    @character.command(name="export", description="A character as a Tavern card (PNG or JSON)")
    @app_commands.autocomplete(character=character_choices)
    @app_commands.describe(version="Tavern card spec: v3 (newest) or v2 (read by more tools)")
    async def export(
        self, interaction: Interaction, character: str, version: Literal["v2", "v3"] = "v3"
    ) -> None:
        found = await known_character(interaction, character)
        card = await card_file(self.engine, found, version)
        await answer(interaction, f"{found.name} as a Tavern {version.upper()} card", files=[card])

    @character.command(name="edit", description="Edit a character you created")
    @app_commands.autocomplete(character=character_choices)
    async def edit(self, interaction: Interaction, character: str) -> None:
        found = await editable_character(interaction, character)
        await interaction.response.send_modal(CharacterModal(found))

    @character.command(name="avatar", description="Give a character a face (PNG, JPEG, GIF, WebP)")
    @app_commands.autocomplete(character=character_choices)
    async def avatar(
        self, interaction: Interaction, character: str, image: discord.Attachment
    ) -> None:
        found = await editable_character(interaction, character)
        await defer(interaction, ephemeral=True)  # the download can outlast Discord's 3 seconds
        data = await read_upload(image, MAX_AVATAR_BYTES)
        content_type = (image.content_type or "").split(";")[0]
        updated = await self.engine.characters.set_avatar(
            found.guild_id, found.id, data, content_type
        )
        await answer(interaction, f"{updated.name} has a new avatar")

    @character.command(name="delete", description="Delete a character you created")
    @app_commands.autocomplete(character=character_choices)
    async def delete(self, interaction: Interaction, character: str) -> None:
        found = await editable_character(interaction, character)
        await self.engine.characters.delete(found.guild_id, found.id)
        await answer(interaction, f"{found.name} deleted")

    @you.command(name="set", description="Who you are in this server's stories")
    async def you_set(
        self, interaction: Interaction, name: str, pronouns: str = "", persona: str = ""
    ) -> None:
        you = await self.engine.characters.set_you(
            guild_id=guild_of(interaction),
            owner_id=interaction.user.id,
            name=name,
            pronouns=pronouns,
            persona=persona,
        )
        pronouns = f" ({you.pronouns})" if you.pronouns else ""
        await answer(interaction, f"you are {you.name}{pronouns}")


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, StoryBot)
    await bot.add_cog(Characters(bot))
