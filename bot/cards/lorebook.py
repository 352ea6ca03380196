"""Lorebooks (world info) read from cards and SillyTavern files into ``LoreEntry`` models.

Two shapes reach us: a card's ``character_book`` (V2/V3: ``keys``, ``insertion_order``, with
SillyTavern's own settings under each entry's ``extensions``) and a SillyTavern world-info file
(``{"entries": {"0": {"key": [...], "order": 100, "disable": false, ...}}}``). Both become the
same ``Lorebook``; a card keeps its book as written (``BotAuthored.character_book``), so this
runs when a prompt is built, and an export gives the book back untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import ValidationError

from bot.cards.errors import CardError
from bot.store.events import LoreEntry, LorePosition, LoreRole, SelectiveLogic
from bot.validation import first_problem

log = logging.getLogger(__name__)

SELECTIVE_LOGIC: dict[int, SelectiveLogic] = {
    0: "and_any",
    1: "not_all",
    2: "not_any",
    3: "and_all",
}
"""SillyTavern's ``selectiveLogic`` numbers."""
BEFORE_CHAR, AT_DEPTH = 0, 4
"""SillyTavern's ``position`` numbers: 0 before the character, 4 at a depth in the chat; the
others (after the character, around the author's note or the examples) are read as after."""
ROLES: dict[int, LoreRole] = {0: "system", 1: "user", 2: "assistant"}
DEFAULT_DEPTH = 4
MAX_ENTRIES = 2000
BUDGET_LIMIT = 1_000_000


@dataclass(frozen=True, slots=True)
class Lorebook:
    """A book's settings and its entries (``numbers`` name them in a chat's world book)."""

    name: str = ""
    scan_depth: int | None = None
    token_budget: int | None = None
    recursive_scanning: bool = False
    entries: tuple[LoreEntry, ...] = ()
    numbers: tuple[int, ...] = field(default=())


def read_character_book(book: Mapping[str, object]) -> Lorebook:
    """A card's ``character_book``; entries that make no sense are skipped, never fatal."""
    raw_entries = book.get("entries")
    entries = []
    for raw in raw_entries if isinstance(raw_entries, list) else []:
        if isinstance(raw, dict):
            entry = _entry(_card_entry(raw))
            if entry is not None:
                entries.append(entry)
    return Lorebook(
        name=_text(book.get("name")),
        scan_depth=_count(book.get("scan_depth")),
        token_budget=_count(book.get("token_budget"), BUDGET_LIMIT),
        recursive_scanning=book.get("recursive_scanning") is True,
        entries=tuple(entries[:MAX_ENTRIES]),
    )


def read_world_info(data: Mapping[str, object], filename: str) -> Lorebook:
    """A SillyTavern world-info JSON file (or a bare ``character_book`` object)."""
    raw_entries = data.get("entries")
    if isinstance(raw_entries, list):
        return read_character_book(data)
    if not isinstance(raw_entries, dict):
        raise CardError(f"{filename} isn't a world-info file (it has no 'entries').")
    entries = []
    for raw in raw_entries.values():
        if isinstance(raw, dict):
            entry = _entry(_st_entry(raw))
            if entry is not None:
                entries.append(entry)
    if len(entries) > MAX_ENTRIES:
        raise CardError(f"{filename} has {len(entries)} entries; the limit is {MAX_ENTRIES}.")
    entries.sort(key=lambda e: e.insertion_order)
    return Lorebook(
        name=_text(data.get("name")) or filename.rsplit(".", 1)[0],
        scan_depth=_count(data.get("scanDepth", data.get("scan_depth"))),
        token_budget=_count(data.get("tokenBudget", data.get("token_budget")), BUDGET_LIMIT),
        recursive_scanning=data.get("recursive_scanning") is True,
        entries=tuple(entries),
    )


def _card_entry(raw: Mapping[str, object]) -> dict[str, object]:
    ext = raw.get("extensions")
    st = ext if isinstance(ext, dict) else {}
    fields: dict[str, object] = {
        "keys": _texts(raw.get("keys")),
        "secondary_keys": _texts(raw.get("secondary_keys")),
        "selective": raw.get("selective") is True,
        "selective_logic": SELECTIVE_LOGIC.get(_int(st.get("selectiveLogic"), 0), "and_any"),
        "content": _text(raw.get("content")),
        "comment": _text(raw.get("comment")) or _text(raw.get("name")),
        "constant": raw.get("constant") is True,
        "enabled": raw.get("enabled") is not False,
        "insertion_order": _int(raw.get("insertion_order"), 100),
        "priority": _int(raw.get("priority"), 10),
        "position": _position(raw.get("position"), st.get("position")),
        "depth": _depth(st.get("depth")),
        "role": ROLES.get(_int(st.get("role"), 0), "system"),
        "case_sensitive": (raw.get("case_sensitive") or st.get("case_sensitive")) is True,
        "use_regex": raw.get("use_regex") is True,
        "match_whole_words": st.get("match_whole_words") is True,
        "scan_depth": _count(st.get("scan_depth")),
        "exclude_recursion": st.get("exclude_recursion") is True,
        "prevent_recursion": st.get("prevent_recursion") is True,
    }
    return fields


def _st_entry(raw: Mapping[str, object]) -> dict[str, object]:
    return {
        "keys": _texts(raw.get("key")),
        "secondary_keys": _texts(raw.get("keysecondary")),
        "selective": raw.get("selective") is not False,
        "selective_logic": SELECTIVE_LOGIC.get(_int(raw.get("selectiveLogic"), 0), "and_any"),
        "content": _text(raw.get("content")),
        "comment": _text(raw.get("comment")),
        "constant": raw.get("constant") is True,
        "enabled": raw.get("disable") is not True,
        "insertion_order": _int(raw.get("order"), 100),
        "priority": _int(raw.get("priority"), 10),
        "position": _position(None, raw.get("position")),
        "depth": _depth(raw.get("depth")),
        "role": ROLES.get(_int(raw.get("role"), 0), "system"),
        "case_sensitive": raw.get("caseSensitive") is True,
        "use_regex": raw.get("useRegex") is True,
        "match_whole_words": raw.get("matchWholeWords") is True,
        "scan_depth": _count(raw.get("scanDepth")),
        "exclude_recursion": raw.get("excludeRecursion") is True,
        "prevent_recursion": raw.get("preventRecursion") is True,
    }


def _entry(fields: dict[str, object]) -> LoreEntry | None:
    try:
        return LoreEntry.model_validate(fields)
    except ValidationError as exc:
        log.info("skipped a lorebook entry that does not fit: %s", first_problem(exc, "entry"))
        return None


def _position(spec: object, st: object) -> LorePosition:
    if isinstance(st, int) and not isinstance(st, bool):
        positions: dict[int, LorePosition] = {BEFORE_CHAR: "before_char", AT_DEPTH: "at_depth"}
        return positions.get(st, "after_char")
    return "after_char" if spec == "after_char" else "before_char"


def _depth(value: object) -> int:
    """An at-depth entry's depth; SillyTavern's default is 4."""
    depth = _count(value)
    return DEFAULT_DEPTH if depth is None else depth


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _texts(value: object) -> list[str]:
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return []
    return [item.strip() for item in value if isinstance(item, str) and item.strip()][:100]


def _int(value: object, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return int(value)


def _count(value: object, limit: int = 1000) -> int | None:
    number = _int(value, -1)
    return number if 0 <= number <= limit else None
