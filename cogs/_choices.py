"""Autocomplete for character ids: only the characters of the server asking."""

from __future__ import annotations

from discord import app_commands

from cogs._base import Interaction

MAX_CHOICES = 25


async def character_choices(
    interaction: Interaction, current: str
) -> list[app_commands.Choice[str]]:
    if interaction.guild_id is None:
        return []
    needle = current.casefold()
    characters = await interaction.client.engine.characters(interaction.guild_id)
    return [
        app_commands.Choice(name=f"{c.name} ({c.id})"[:100], value=c.id)
        for c in characters
        if needle in c.id or needle in c.name.casefold()
    ][:MAX_CHOICES]
