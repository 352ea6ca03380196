"""Files the bot hands out: a story's export, and a character as a Tavern card."""

from __future__ import annotations

import io

import discord

from bot.cards import export_card
from bot.cards.card_write import CardExportVersion
from bot.engine import Engine
from bot.store.views import Character


def attachment(data: bytes | str, filename: str) -> discord.File:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return discord.File(io.BytesIO(raw), filename=filename)


def story_files(chat_id: str, markdown: str, log: str) -> list[discord.File]:
    """The story to read (Markdown) and its log to restore with ``import-log`` (JSON lines)."""
    return [attachment(markdown, f"story-{chat_id}.md"), attachment(log, f"story-{chat_id}.jsonl")]


async def card_file(
    engine: Engine, character: Character, version: CardExportVersion
) -> discord.File:
    """The card inside the character's avatar when that is a PNG, else the card as JSON."""
    asset = await engine.queries.asset(character.card.avatar) if character.card.avatar else None
    png = asset[0] if asset is not None and asset[1] == "image/png" else None
    return attachment(*export_card(character.card, version=version, avatar_png=png))
