"""Type checks for values read from untrusted card or TOML data, with errors naming the field."""

from __future__ import annotations

from bot.cards.errors import CardError
from bot.cards.limits import MAX_FIELD_CHARS


def as_text(value: object, label: str, *, allow_none: bool = False) -> str:
    """A text field, capped; ``None`` reads as "" when ``allow_none`` (cards often write null)."""
    if value is None and allow_none:
        return ""
    if not isinstance(value, str):
        raise CardError(f"{label} should be text, not {kind_of(value)}.")
    _check_length(value, label)
    return value


def as_text_list(value: object, label: str, *, allow_none: bool = False) -> list[str]:
    """A list of texts, each capped like a text field."""
    if value is None and allow_none:
        return []
    if not isinstance(value, list):
        raise CardError(f"{label} should be a list of texts, not {kind_of(value)}.")
    items: list[str] = []
    for index, item in enumerate(value, start=1):
        if not isinstance(item, str):
            raise CardError(f"item {index} of {label} should be text, not {kind_of(item)}.")
        _check_length(item, f"item {index} of {label}")
        items.append(item)
    return items


def as_object(value: object, label: str, *, allow_none: bool = False) -> dict[str, object]:
    """A JSON object (a dict with text keys)."""
    if value is None and allow_none:
        return {}
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise CardError(f"{label} should be an object, not {kind_of(value)}.")
    return dict(value)


def _check_length(text: str, label: str) -> None:
    if len(text) > MAX_FIELD_CHARS:
        raise CardError(
            f"{label} is too long ({len(text):,} characters; the limit is {MAX_FIELD_CHARS:,})."
        )


def kind_of(value: object) -> str:
    """How a JSON/TOML value is described to a user: 'a number', 'a list', ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    for types, words in _KINDS:
        if isinstance(value, types):
            return words
    return type(value).__name__


_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    ((int, float), "a number"),
    (str, "text"),
    (list, "a list"),
    (dict, "an object"),
)
