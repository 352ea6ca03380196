"""The import result, and the final check of mapped fields against ``BotAuthored``.

Validating here means a card that maps to an invalid character fails at import, with the field
named in the terms of the file it came from, not later when the event is appended.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from bot.cards.errors import CardError
from bot.store.events import BotAuthored

SourceFormat = Literal[
    "toml", "v1-json", "v2-json", "v3-json", "v1-png", "v2-png", "v3-png", "charx"
]
CALLER_FIELDS = frozenset({"guild_id", "creator_id", "avatar"})
"""``BotAuthored`` fields an import never sets: the caller knows the guild, creator and asset."""


@dataclass(frozen=True, slots=True)
class ImportedCharacter:
    """A character read from a file, already validated; nothing has been stored yet.

    ``fields`` holds every ``BotAuthored`` field except ``CALLER_FIELDS``. The avatar, when there
    is one, is the image to keep as an ``asset_stored`` event; ``warnings`` say what was dropped.
    """

    fields: dict[str, object]
    avatar_bytes: bytes | None
    avatar_content_type: str | None
    source_format: SourceFormat
    warnings: tuple[str, ...] = ()

    def to_bot_authored(
        self, *, guild_id: int = 0, creator_id: int = 0, avatar: str = ""
    ) -> BotAuthored:
        """The payload to append, once the caller has stored the avatar (``avatar`` = sha256)."""
        payload = {**self.fields, "guild_id": guild_id, "creator_id": creator_id, "avatar": avatar}
        return BotAuthored.model_validate(payload)


def validated_fields(
    fields: dict[str, object], labels: Mapping[str, str] | None = None
) -> dict[str, object]:
    """``fields`` checked by ``BotAuthored`` and filled with defaults, minus ``CALLER_FIELDS``."""
    try:
        character = BotAuthored.model_validate(fields)
    except ValidationError as exc:
        raise CardError(_describe(exc.errors()[0], labels or {})) from None
    return character.model_dump(exclude=set(CALLER_FIELDS))


def _describe(error: ErrorDetails, labels: Mapping[str, str]) -> str:
    """One pydantic error as a sentence for a Discord user."""
    field = str(error["loc"][0]) if error["loc"] else "character"
    what = labels.get(field, f"'{field}'")
    limit = error.get("ctx", {}).get("max_length")
    match error["type"]:
        case "string_too_long":
            return f"{what} is too long (the limit is {limit:,} characters)."
        case "too_long":
            return f"{what} has too many items (the limit is {limit})."
        case "string_too_short":
            return f"{what} is empty."
        case "string_pattern_mismatch":
            return (
                f"{what} must be lowercase letters, digits, '-' or '_', "
                "starting with a letter or digit."
            )
        case "missing":
            return f"{what} is missing."
        case _:
            return f"{what}: {error['msg']}."
