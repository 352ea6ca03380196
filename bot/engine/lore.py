"""World info for one speaker's prompt: which books it may read, and what they fire now.

A card's own lorebook reaches that character's prompts only; the chat's world book reaches
every character's. Keys are scanned in the beats the speaker witnessed (the same transcript its
prompt carries) and in the line being answered, never in anything the speaker did not see.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from pydantic import ValidationError

from bot.cards import CardError
from bot.cards.card_json import decode_card_json
from bot.cards.lorebook import Lorebook, read_world_info
from bot.engine.cardtext import card_lorebook
from bot.engine.context import Cast, StoryContext
from bot.engine.errors import (
    Invalid,
    LoreEntryIncomplete,
    NoSuchLoreEntry,
    NoWorldInfo,
    UnreadableWorldBook,
)
from bot.engine.macros import Names, resolve_text
from bot.engine.parse import in_character_text
from bot.engine.worldinfo import Activation, Scanned, activate
from bot.store import append
from bot.store.events import LoreEntry, LoreEntryAdded, LoreEntryRemoved, WorldBookImported
from bot.store.views import Beat, Character, WorldBook, speaker_label
from bot.validation import first_problem

log = logging.getLogger(__name__)

LORE_SHARE = 0.15
"""The most of ``prompt_token_budget`` world info may take, whatever the books allow."""
CHAT_BOOK = "the story's world book"


async def world_book(ctx: StoryContext, chat_id: str) -> Lorebook:
    """The chat's world book as projected (entries numbered as /lore list shows them)."""
    return lorebook_of(await ctx.views.world_book(chat_id))


def lorebook_of(book: WorldBook) -> Lorebook:
    """A chat's world book as read from the store, as the book world info reads."""
    settings, numbered = book
    return Lorebook(
        name=CHAT_BOOK,
        scan_depth=settings.get("scan_depth"),
        token_budget=settings.get("token_budget"),
        recursive_scanning=bool(settings.get("recursive_scanning", False)),
        entries=tuple(entry for _, entry in numbered),
        numbers=tuple(number for number, _ in numbered),
    )


def books_for(speaker: Character, chat_book: Lorebook) -> list[Lorebook]:
    """The speaker's own lorebook (if its card has one), then the chat's world book."""
    own = card_lorebook(speaker.card)
    return [book for book in (own, chat_book) if book is not None and book.entries]


def scanned_beats(cast: Cast, transcript: Sequence[Beat]) -> list[Scanned]:
    """The witnessed transcript as scan text, oldest first, each line with its speaker."""
    names = cast.names()
    # an out-of-character aside is heard by no character: no key may fire on its words
    heard = [(beat, _heard(beat)) for beat in transcript]
    shown = [(beat, text) for beat, text in heard if text.strip()]
    count = len(shown)
    scanned = []
    for i, (beat, text) in enumerate(shown):
        label = speaker_label(beat, cast.you.name, names)
        age = "(the latest)" if i == count - 1 else f"({count - 1 - i} before the latest)"
        # names included, as SillyTavern scans by default: a key may be someone's name
        scanned.append(Scanned(f"{label}'s line {age}", f"{label}: {text}"))
    return scanned


def _heard(beat: Beat) -> str:
    return in_character_text(beat.text) if beat.role == "user" else beat.text


async def lore_for(
    ctx: StoryContext,
    cast: Cast,
    speaker: Character,
    transcript: Sequence[Beat],
    line: str,
    *,
    chat_book: Lorebook | None = None,
) -> Activation:
    """What world info fires for ``speaker`` given what it witnessed and the line it answers
    (``chat_book``: the chat's world book, when the caller has read it already)."""
    if chat_book is None:
        chat_book = await world_book(ctx, cast.chat.id)
    books = books_for(speaker, chat_book)
    if not books:
        return Activation()
    names = Names(char=speaker.name, user=cast.you.name)
    line = in_character_text(line)
    activation = activate(
        books,
        scanned_beats(cast, transcript),
        Scanned("the line being answered", line) if line.strip() else None,
        max_tokens=int(ctx.settings.prompt_token_budget * LORE_SHARE),
        resolve=lambda text: resolve_text(text, names),
    )
    log.debug("world info for %s in chat %s: %s", speaker.name, cast.chat.id, activation.describe())
    return activation


async def lore_now(ctx: StoryContext, cast: Cast, speaker: Character, line: str) -> Activation:
    """What would fire for ``speaker``'s next prompt, from the same transcript a turn reads."""
    transcript = await ctx.views.witnessed_beats(
        cast.chat.id, speaker.id, ctx.settings.transcript_beats
    )
    return await lore_for(ctx, cast, speaker, transcript, line)


async def import_world_book(
    ctx: StoryContext, chat_id: str, data: bytes, filename: str
) -> Lorebook:
    """Replace the chat's world book with a SillyTavern world-info file (or a card's book)."""
    try:
        raw = decode_card_json(data, filename)
        data_part = raw.get("data")
        if isinstance(data_part, dict) and isinstance(data_part.get("character_book"), dict):
            raw = data_part["character_book"]  # a whole card: take its lorebook
        book = read_world_info(raw, filename)
    except CardError as exc:
        raise UnreadableWorldBook(filename, exc.message) from None
    if not book.entries:
        raise NoWorldInfo(filename)
    try:
        imported = WorldBookImported(
            chat_id=chat_id,
            name=book.name[:500],
            scan_depth=book.scan_depth,
            token_budget=book.token_budget,
            recursive_scanning=book.recursive_scanning,
            entries=list(book.entries),
        )
    except ValidationError as exc:
        raise UnreadableWorldBook(filename, first_problem(exc, root="world book")) from None
    await append(ctx.db, imported)
    return book


async def add_entry(ctx: StoryContext, chat_id: str, fields: Mapping[str, object]) -> int:
    """Add an entry to the chat's world book; its number is the next free one."""
    try:
        entry = LoreEntry.model_validate(fields)
    except ValidationError as exc:
        raise Invalid("world-info entry", first_problem(exc, root="entry")) from None
    if not entry.content.strip():
        raise LoreEntryIncomplete("content")
    if not entry.constant and not any(key.strip() for key in entry.keys):
        raise LoreEntryIncomplete("keys")
    event_id = await append(ctx.db, LoreEntryAdded(chat_id=chat_id, entry=entry))
    number = await ctx.views.lore_number(chat_id, event_id)
    assert number is not None
    return number


async def remove_entry(ctx: StoryContext, chat_id: str, number: int) -> None:
    if not await ctx.views.has_lore_entry(chat_id, number):
        raise NoSuchLoreEntry(number)
    await append(ctx.db, LoreEntryRemoved(chat_id=chat_id, number=number))


def entry_fields(
    *,
    keys: str,
    content: str,
    secondary_keys: str = "",
    logic: str = "and_any",
    constant: bool = False,
    position: str = "before_char",
    order: int = 100,
    depth: int = 4,
    case_sensitive: bool = False,
) -> dict[str, object]:
    """A world-info entry from a command's options (keys as comma-separated words)."""
    secondary = _words(secondary_keys)
    return {
        "keys": _words(keys),
        "content": content.strip(),
        "secondary_keys": secondary,
        "selective": bool(secondary),
        "selective_logic": logic,
        "constant": constant,
        "position": position,
        "insertion_order": order,
        "depth": depth,
        "case_sensitive": case_sensitive,
    }


def _words(text: str) -> list[str]:
    return [word.strip() for word in text.split(",") if word.strip()]


def describe_entry(number: int | None, entry: LoreEntry, *, width: int = 80) -> str:
    """One line for /lore list: number, when it fires, and the start of its content."""
    if entry.constant:
        when = "always"
    else:
        when = "keys: " + ", ".join(entry.keys)
        if entry.selective and entry.secondary_keys:
            logic = entry.selective_logic.replace("_", " ")
            when += f" ({logic}: {', '.join(entry.secondary_keys)})"
    flags = [when] + ([] if entry.enabled else ["off"])
    if entry.position == "after_char":
        flags.append("after char")
    elif entry.position == "at_depth":
        flags.append(f"at depth {entry.depth}")
    content = " ".join(entry.content.split())
    if len(content) > width:
        content = content[: width - 1] + "…"
    label = f"#{number} " if number is not None else ""
    title = f"{entry.comment}: " if entry.comment else ""
    return f"{label}{title}{content} ({'; '.join(flags)})"
