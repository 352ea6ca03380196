"""Reading our own TOML character format: the ``BotAuthored`` fields as top-level keys.

``id`` is optional (derived from the name); ``avatar`` is a path to an image relative to the
TOML file, returned here unresolved so the loader decides whether it may read files.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass

from bot.cards.coerce import as_text, as_text_list
from bot.cards.errors import CardError
from bot.cards.slug import slugify

TEXT_KEYS = (
    "id",
    "name",
    "nickname",
    "persona",
    "personality",
    "backstory",
    "initial_relationship_to_you",
    "scenario",
    "kickoff_prose",
    "system_prompt",
    "post_history_instructions",
    "creator_notes",
    "creator",
    "character_version",
)
LIST_KEYS = ("voice_samples", "traits", "alternate_greetings", "tags")
AVATAR_KEY = "avatar"
KNOWN_KEYS = frozenset((*TEXT_KEYS, *LIST_KEYS, AVATAR_KEY))


@dataclass(frozen=True, slots=True)
class TomlCharacter:
    """Fields for ``BotAuthored`` (unvalidated) and the avatar path as written, if any."""

    fields: dict[str, object]
    avatar_path: str | None


def read_toml(data: bytes, filename: str) -> TomlCharacter:
    """Parse a character TOML file; syntax errors, unknown keys and wrong types are refused."""
    table = _parse(data, filename)
    unknown = sorted(set(table) - KNOWN_KEYS)
    if unknown:
        raise CardError(_unknown_key_message(unknown[0], filename))
    if "name" not in table:
        raise CardError(f"{filename} has no 'name' key; every character needs a name.")
    fields: dict[str, object] = {}
    for key in TEXT_KEYS:
        if key in table:
            fields[key] = as_text(table[key], f"'{key}' in {filename}")
    for key in LIST_KEYS:
        if key in table:
            fields[key] = as_text_list(table[key], f"'{key}' in {filename}")
    fields.setdefault("id", slugify(str(fields["name"])))
    avatar = table.get(AVATAR_KEY)
    if avatar is not None:
        avatar = as_text(avatar, f"'{AVATAR_KEY}' in {filename}").strip() or None
    return TomlCharacter(fields, avatar)


def _parse(data: bytes, filename: str) -> dict[str, object]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CardError(
            f"{filename} isn't valid UTF-8 text (bad byte at position {exc.start})."
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CardError(f"{filename} isn't valid TOML: {exc}.") from None


def _unknown_key_message(key: str, filename: str) -> str:
    close = difflib.get_close_matches(key, sorted(KNOWN_KEYS), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    known = ", ".join(sorted(KNOWN_KEYS))
    return f"unknown key '{key[:80]}' in {filename}{hint}. Known keys: {known}."
