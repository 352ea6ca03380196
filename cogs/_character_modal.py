"""The form for writing a character by hand: five fields, prefilled when editing."""

from __future__ import annotations

import discord

from bot.cards import slugify
from bot.store.views import Character
from cogs._base import Interaction, Refusal, answer, answer_error
from cogs._embeds import character_embed

TEXT_LIMIT = 4000


def lines_of(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def traits_of(text: str) -> list[str]:
    return [trait.strip() for trait in text.replace("\n", ",").split(",") if trait.strip()]


class CharacterModal(discord.ui.Modal, title="A character"):
    """Create a character, or edit ``character`` (its id, creator and avatar are kept)."""

    name: discord.ui.TextInput[CharacterModal] = discord.ui.TextInput(label="Name", max_length=80)
    persona: discord.ui.TextInput[CharacterModal] = discord.ui.TextInput(
        label="Persona", style=discord.TextStyle.paragraph, max_length=TEXT_LIMIT
    )
    kickoff: discord.ui.TextInput[CharacterModal] = discord.ui.TextInput(
        label="Kickoff prose (how a story opens)",
        style=discord.TextStyle.paragraph,
        required=False,
        max_length=TEXT_LIMIT,
    )
    voice: discord.ui.TextInput[CharacterModal] = discord.ui.TextInput(
        label="Voice samples (one per line)",
        style=discord.TextStyle.paragraph,
        required=False,
        max_length=TEXT_LIMIT,
    )
    traits: discord.ui.TextInput[CharacterModal] = discord.ui.TextInput(
        label="Traits (comma separated)", required=False, max_length=1000
    )

    def __init__(self, character: Character | None = None) -> None:
        super().__init__(title=f"Edit {character.name}" if character else "A new character")
        self.character = character
        if character is not None:
            card = character.card
            self.name.default = card.name
            self.persona.default = card.persona[:TEXT_LIMIT]
            self.kickoff.default = card.kickoff_prose[:TEXT_LIMIT]
            self.voice.default = "\n".join(card.voice_samples)[:TEXT_LIMIT]
            self.traits.default = ", ".join(card.traits)[:1000]

    def fields(self) -> dict[str, object]:
        base = self.character.card.model_dump() if self.character else {}
        return {
            **base,
            "id": self.character.id if self.character else slugify(self.name.value),
            "name": self.name.value.strip(),
            "persona": self.persona.value.strip(),
            "kickoff_prose": self.kickoff.value.strip(),
            "voice_samples": lines_of(self.voice.value),
            "traits": traits_of(self.traits.value),
        }

    async def on_submit(self, interaction: Interaction) -> None:  # type: ignore[override]
        engine = interaction.client.engine
        guild_id = interaction.guild_id or 0
        fields = self.fields()
        if self.character is None and await engine.characters.get(guild_id, str(fields["id"])):
            raise Refusal(f"a character with id {fields['id']!r} exists: use /character edit")
        character = await engine.characters.author(
            fields, guild_id=guild_id, creator_id=interaction.user.id
        )
        verb = "updated" if self.character else "created"
        await answer(interaction, f"{character.name} {verb}", embed=character_embed(character))

    async def on_error(self, interaction: Interaction, error: Exception, /) -> None:  # type: ignore[override]
        await answer_error(interaction, error)
