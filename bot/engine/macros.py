"""Card macros, resolved the way SillyTavern does, for every prompt that carries card text.

``{{char}}``/``{{user}}`` (any case) and the old ``<BOT>``/``<CHAR>``/``<USER>`` become the
speaker's and the player's names; ``{{original}}`` in a card's ``system_prompt`` or
``post_history_instructions`` becomes the text the card replaces, and nothing anywhere else.
Every prompt builder ends with ``resolve_prompt``, so no macro reaches the LLM.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from bot.cards import resolve_placeholders
from bot.llm import Message

_ORIGINAL = re.compile(r"\{\{\s*original\s*\}\}", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Names:
    """Who ``{{char}}`` and ``{{user}}`` are in one prompt."""

    char: str
    user: str


def resolve_text(text: str, names: Names) -> str:
    """One text with every macro filled in (a stray ``{{original}}`` is dropped)."""
    if "{" not in text and "<" not in text:
        return text  # no macro begins otherwise: most of a prompt, read twice by regex for none
    return resolve_placeholders(_ORIGINAL.sub("", text), char=names.char, user=names.user)


def resolve_prompt(messages: Iterable[Message], names: Names) -> list[Message]:
    """The messages with every macro filled in: the last step of each prompt builder."""
    return [Message(role=m.role, content=resolve_text(m.content, names)) for m in messages]


def replacing(card_text: str, original: str) -> str:
    """A card's override of ``original``: empty keeps it, ``{{original}}`` inserts it.

    The original is inserted literally (a ``{{original}}`` inside it is not expanded again).
    """
    if not card_text.strip():
        return original
    return _ORIGINAL.sub(lambda _match: original, card_text)
