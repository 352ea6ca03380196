"""Who may do what where: the story of a channel, its owner, character editors, bot permissions.

These are Discord-side checks (who is asking, in which channel, with which permissions); the
story rules themselves stay in the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import discord

from bot.engine import Engine
from bot.store.views import Character, Chat
from cogs._base import Interaction, Refusal

NO_STORY_HERE = "there is no story in this channel: start one with /chat start"

# What the bot needs in a story channel, in the words of the player who must grant it.
STORY_CHANNEL_NEEDS: dict[str, str] = {
    "view_channel": "View Channel",
    "read_message_history": "Read Message History",
    "send_messages": "Send Messages",
    "manage_webhooks": "Manage Webhooks (characters speak with their own name and avatar)",
    "add_reactions": "Add Reactions (⛔ to stop a reply)",
    "create_public_threads": "Create Public Threads (/meanwhile)",
    "send_messages_in_threads": "Send Messages in Threads (/meanwhile)",
}
CANNOT_SPEAK = ("view_channel", "send_messages")


@dataclass(frozen=True, slots=True)
class StoryPlace:
    """A channel that shows a story: its chat, and the meanwhile scene if it is that thread."""

    chat: Chat
    meanwhile_scene_id: int | None = None


async def story_place(engine: Engine, channel_id: int) -> StoryPlace | None:
    found = await engine.queries.story_of_thread(channel_id)
    if found is not None:
        return StoryPlace(found[0], found[1])
    chat = await engine.queries.chat_in_channel(channel_id)
    return None if chat is None else StoryPlace(chat)


def may_steer(user_id: int, chat: Chat, permissions: discord.Permissions) -> bool:
    """The story's owner, or someone who manages the channel, may change or stop it."""
    return user_id == chat.owner_id or permissions.manage_channels


async def story_here(interaction: Interaction) -> StoryPlace:
    place = await story_place(interaction.client.engine, interaction.channel_id or 0)
    if place is None or place.chat.guild_id != (interaction.guild_id or 0):
        raise Refusal(NO_STORY_HERE)
    return place


async def steered_story(interaction: Interaction, doing: str) -> StoryPlace:
    """The story of this channel, if the one asking may change it (``doing`` says how)."""
    place = await story_here(interaction)
    if not may_steer(interaction.user.id, place.chat, interaction.permissions):
        raise Refusal(f"only the owner of this story can {doing}")
    return place


async def known_character(interaction: Interaction, character_id: str) -> Character:
    """A character of this server (another server's characters are not there to see)."""
    character = await interaction.client.engine.characters.get(guild_of(interaction), character_id)
    if character is None:
        raise Refusal(f"no character {character_id!r} in this server")
    return character


async def editable_character(interaction: Interaction, character_id: str) -> Character:
    """A character of this server that its creator, or a server manager, is asking to change."""
    character = await known_character(interaction, character_id)
    creator = character.card.creator_id
    if interaction.user.id != creator and not interaction.permissions.manage_guild:
        raise Refusal(f"only the creator of {character.name} or a server manager can change it")
    return character


def missing_permissions(permissions: discord.Permissions) -> list[str]:
    return [label for flag, label in STORY_CHANNEL_NEEDS.items() if not getattr(permissions, flag)]


def require_speech(permissions: discord.Permissions) -> list[str]:
    """What the bot lacks in a channel; refused outright if it cannot even speak there."""
    if not all(getattr(permissions, flag) for flag in CANNOT_SPEAK):
        raise Refusal(
            "I can't send messages in this channel: give me View Channel and Send Messages here"
        )
    return missing_permissions(permissions)


def guild_of(interaction: Interaction) -> int:
    if interaction.guild_id is None:
        raise Refusal("stories live in servers: use this command in a server channel")
    return interaction.guild_id
