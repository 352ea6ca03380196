"""Autocomplete for character ids: only the characters of the server asking (and "you")."""

from __future__ import annotations

from discord import app_commands

from bot.engine import StoryError
from bot.store import YOU
from cogs._base import Interaction

MAX_CHOICES = 25


async def character_choices(
    interaction: Interaction, current: str
) -> list[app_commands.Choice[str]]:
    if interaction.guild_id is None:
        return []
    needle = current.casefold()
    characters = await interaction.client.engine.characters.all(interaction.guild_id)
    return [
        app_commands.Choice(name=f"{c.name} ({c.id})"[:100], value=c.id)
        for c in characters
        if needle in c.id or needle in c.name.casefold()
    ][:MAX_CHOICES]


async def someone_choices(interaction: Interaction, current: str) -> list[app_commands.Choice[str]]:
    """The characters of this server, and "you" (for who feels about whom)."""
    you = [app_commands.Choice(name="you", value=YOU)] if current.casefold() in YOU else []
    return (you + await character_choices(interaction, current))[:MAX_CHOICES]


async def greeting_choices(
    interaction: Interaction, current: str
) -> list[app_commands.Choice[int]]:
    """The chosen host's greetings, each previewed (0: the card's first message)."""
    host = getattr(interaction.namespace, "host", None)
    if interaction.guild_id is None or not isinstance(host, str) or not host:
        return []
    try:
        greetings = await interaction.client.engine.chats.greetings(
            interaction.guild_id, interaction.user.id, host
        )
    except StoryError:
        return []
    choices = []
    for number, text in enumerate(greetings):
        label = "first message" if number == 0 else f"alternate {number}"
        preview = " ".join(text.split()) or "(empty)"
        name = f"{number}: {label} — {preview}"
        if (
            current.strip()
            and current.strip() not in str(number)
            and (current.casefold() not in name.casefold())
        ):
            continue
        choices.append(
            app_commands.Choice(name=name[:97] + "…" if len(name) > 100 else name, value=number)
        )
    return choices[:MAX_CHOICES]
