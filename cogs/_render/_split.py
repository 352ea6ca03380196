"""Cutting a reply into Discord-sized messages at the most natural boundary."""

from __future__ import annotations

import re

MESSAGE_LIMIT = 2000
"""Discord refuses a message whose content is longer than 2,000 characters."""

# A sentence ends at . ! ? or …, perhaps closed by quotes, brackets or markdown (*…*, _…_),
# and is followed by whitespace.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’»)\]*_~]*(?=\s)")


def split_for_discord(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` characters.

    A cut prefers the end of a sentence, then a newline, then a space, each in the later half of
    the piece so that no piece is needlessly short; a single word longer than ``limit`` is cut
    hard. Only the whitespace at a cut is dropped. Each piece depends only on the text up to one
    character past it, so a streaming reply's earlier pieces never change as it grows.
    """
    if limit < 1:
        raise ValueError("limit must be positive")
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = _cut_point(rest, limit)
        piece = rest[:cut].rstrip()
        rest = rest[cut:].lstrip()
        if piece:
            pieces.append(piece)
    if rest:
        pieces.append(rest)
    return pieces


def _cut_point(text: str, limit: int) -> int:
    """Where the first piece of ``text`` (longer than ``limit``) ends."""
    window = text[: limit + 1]
    half = limit // 2
    sentence_ends = [m.end() for m in _SENTENCE_END.finditer(window) if m.end() <= limit]
    if sentence_ends and sentence_ends[-1] > half:
        return sentence_ends[-1]
    newline = window.rfind("\n")
    if newline > half:
        return newline
    space = max(window.rfind(" "), window.rfind("\t"), newline)
    if space > 0:
        return space
    return limit
