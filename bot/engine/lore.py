"""World info for one speaker's prompt: which books it may read, and what they fire now.

A card's own lorebook reaches that character's prompts only; the chat's world book reaches
every character's. Keys are scanned in the beats the speaker witnessed (the same transcript its
prompt carries) and in the line being answered, never in anything the speaker did not see.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from bot.cards.lorebook import Lorebook
from bot.engine.cardtext import card_lorebook
from bot.engine.context import Cast, StoryContext
from bot.engine.macros import Names, resolve_text
from bot.engine.views import Beat, Character, speaker_label
from bot.engine.worldinfo import Activation, Scanned, activate
from bot.store.events import LoreEntry

log = logging.getLogger(__name__)

LORE_SHARE = 0.15
"""The most of ``prompt_token_budget`` world info may take, whatever the books allow."""
CHAT_BOOK = "the story's world book"


async def world_book(ctx: StoryContext, chat_id: str) -> Lorebook:
    """The chat's world book as projected (entries numbered as /lore list shows them)."""
    settings_row = await ctx.db.fetchone(
        "SELECT name, settings_json FROM world_books WHERE chat_id = ?", (chat_id,)
    )
    rows = await ctx.db.fetchall(
        "SELECT number, entry_json FROM lore_entries WHERE chat_id = ? ORDER BY number",
        (chat_id,),
    )
    settings = json.loads(settings_row[1]) if settings_row is not None else {}
    return Lorebook(
        name=CHAT_BOOK,
        scan_depth=settings.get("scan_depth"),
        token_budget=settings.get("token_budget"),
        recursive_scanning=bool(settings.get("recursive_scanning", False)),
        entries=tuple(LoreEntry.model_validate_json(r[1]) for r in rows),
        numbers=tuple(int(r[0]) for r in rows),
    )


def books_for(speaker: Character, chat_book: Lorebook) -> list[Lorebook]:
    """The speaker's own lorebook (if its card has one), then the chat's world book."""
    own = card_lorebook(speaker.card)
    return [book for book in (own, chat_book) if book is not None and book.entries]


def scanned_beats(cast: Cast, transcript: Sequence[Beat]) -> list[Scanned]:
    """The witnessed transcript as scan text, oldest first, each saying whose line it was."""
    names = cast.names()
    shown = [beat for beat in transcript if beat.text.strip()]
    count = len(shown)
    return [
        Scanned(
            f"{speaker_label(beat, cast.you.name, names)}'s line "
            + ("(the latest)" if i == count - 1 else f"({count - 1 - i} before the latest)"),
            beat.text,
        )
        for i, beat in enumerate(shown)
    ]


async def lore_for(
    ctx: StoryContext,
    cast: Cast,
    speaker: Character,
    transcript: Sequence[Beat],
    line: str,
) -> Activation:
    """What world info fires for ``speaker`` given what it witnessed and the line it answers."""
    books = books_for(speaker, await world_book(ctx, cast.chat.id))
    if not books:
        return Activation()
    names = Names(char=speaker.name, user=cast.you.name)
    activation = activate(
        books,
        scanned_beats(cast, transcript),
        Scanned("the line being answered", line) if line.strip() else None,
        max_tokens=int(ctx.settings.prompt_token_budget * LORE_SHARE),
        resolve=lambda text: resolve_text(text, names),
    )
    log.debug("world info for %s in chat %s: %s", speaker.name, cast.chat.id, activation.describe())
    return activation
