"""Prompt-time substitution of the ``{{char}}`` / ``{{user}}`` macros that cards are written with.

Imported text keeps the macros as written, so renaming a character or a persona later still
reads right; they are resolved only when a prompt is built.
"""

from __future__ import annotations

import re

_MACRO = re.compile(r"\{\{\s*(char|user)\s*\}\}|<(bot|char|user)>", re.IGNORECASE)


def resolve_placeholders(text: str, *, char: str, user: str) -> str:
    """Replace ``{{char}}``/``{{user}}`` (any case) and legacy ``<BOT>``/``<CHAR>``/``<USER>``.

    One pass: a name that itself contains ``{{user}}`` is inserted literally, never re-expanded.
    """

    def _swap(match: re.Match[str]) -> str:
        word = (match.group(1) or match.group(2)).lower()
        return user if word == "user" else char

    return _MACRO.sub(_swap, text)
