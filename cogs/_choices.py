"""Autocomplete for character ids: only the characters of the server asking (and "you")."""

from __future__ import annotations

from discord import app_commands

from bot.store import YOU
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


async def someone_choices(interaction: Interaction, current: str) -> list[app_commands.Choice[str]]:
    """The characters of this server, and "you" (for who feels about whom)."""
    you = [app_commands.Choice(name="you", value=YOU)] if current.casefold() in YOU else []
    return (you + await character_choices(interaction, current))[:MAX_CHOICES]
