"""What of a Tavern card reaches a prompt beyond the persona: personality, the character note at
depth (``extensions.depth_prompt``), and the card's own lorebook. Read from the stored card at
prompt time, so a card edited or re-imported takes effect on the next beat.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from bot.cards.lorebook import Lorebook, read_character_book
from bot.engine.worldinfo import Activation
from bot.llm import Message
from bot.store.events import BotAuthored

Role = Literal["system", "user", "assistant"]
_ROLES: tuple[Role, ...] = ("system", "user", "assistant")
DEFAULT_DEPTH = 4
"""SillyTavern's default depth for a character note."""


@dataclass(frozen=True, slots=True)
class DepthPrompt:
    text: str
    depth: int
    role: Role


def persona_text(card: BotAuthored) -> str:
    """The persona with the card's personality after it, as SillyTavern sends both."""
    if not card.personality.strip():
        return card.persona
    return f"{card.persona}\n\nPersonality: {card.personality}".strip()


def depth_prompt(card: BotAuthored) -> DepthPrompt | None:
    """``extensions.depth_prompt`` as SillyTavern writes it, or None when empty or malformed."""
    raw = card.extensions.get("depth_prompt")
    if not isinstance(raw, dict):
        return None
    text = raw.get("prompt")
    if not isinstance(text, str) or not text.strip():
        return None
    depth = raw.get("depth", DEFAULT_DEPTH)
    if isinstance(depth, str) and depth.strip().isdigit():
        depth = int(depth)
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
        depth = DEFAULT_DEPTH
    role = raw.get("role", "system")
    return DepthPrompt(text, min(depth, 1000), role if role in _ROLES else "system")


def insert_at_depth(chat: list[Message], notes: Sequence[DepthPrompt]) -> list[Message]:
    """``chat`` with each note ``depth`` messages from its end (0: after the last one), counted
    in ``chat`` as given; notes of the same depth keep their order."""
    placed: dict[int, list[Message]] = {}
    for note in notes:
        at = max(0, len(chat) - note.depth)
        placed.setdefault(at, []).append(Message(role=note.role, content=note.text))
    merged: list[Message] = []
    for index in range(len(chat) + 1):
        merged.extend(placed.get(index, ()))
        if index < len(chat):
            merged.append(chat[index])
    return merged


def card_lorebook(card: BotAuthored) -> Lorebook | None:
    """The card's own lorebook, read from the book it carries (once per book and name: a big
    book costs milliseconds to read, and the same card speaks turn after turn)."""
    if not card.character_book:
        return None
    return _read_book(json.dumps(card.character_book, ensure_ascii=False), card.name)


@functools.lru_cache(maxsize=64)
def _read_book(book_json: str, owner: str) -> Lorebook | None:
    book = read_character_book(json.loads(book_json))
    if not book.entries:
        return None
    return replace(book, name=book.name or f"{owner}'s lorebook")


def depth_notes(card: BotAuthored, lore: Activation) -> list[DepthPrompt]:
    """What goes into the transcript at a depth: world-info entries placed there (in their
    order), then the card's own character note."""
    notes = [DepthPrompt(e.content, e.depth, e.role) for e in lore.at_depth() if e.content.strip()]
    own = depth_prompt(card)
    return [*notes, own] if own is not None else notes
