"""A player's line as the story can take it, or a ``StoryError`` that says what is wrong.

Discord (and a terminal decoding bytes with ``surrogateescape``) can deliver text holding lone
UTF-16 surrogates; such text cannot be stored as UTF-8, so it is refused here with a reason
instead of failing deep in the store with an error no adapter answers.
"""

from __future__ import annotations

import re

from bot.engine.errors import EmptyTurn, TurnTooLong, UnwritableText

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def refuse_unwritable(text: str, what: str = "that message") -> None:
    """Refuse text with a lone surrogate: a character that is not valid text in any encoding."""
    found = _LONE_SURROGATE.search(text)
    if found:
        raise UnwritableText(what, ord(found[0]), found.start() + 1)


def player_line(prose: str, limit: int) -> str:
    """The stripped line, refused when empty, longer than ``limit`` or not valid text."""
    text = prose.strip()
    if not text:
        raise EmptyTurn()
    if len(text) > limit:
        raise TurnTooLong(len(text), limit)
    refuse_unwritable(text)
    return text
