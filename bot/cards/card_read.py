"""Mapping a Tavern card (V1 flat, V2 or V3 JSON object) onto ``BotAuthored`` fields.

Text is kept as written, ``{{char}}``/``{{user}}`` included (see ``placeholders``). The card's
``data`` is also kept whole as ``card_source``, so an export gives back every field it had,
unknown ones included, except those changed here. Our own exports carry the fields Tavern has
no slot for under ``extensions.storybot``; that key is read back and removed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from bot.cards.coerce import as_object, as_text, as_text_list
from bot.cards.errors import CardError
from bot.cards.slug import slugify

CardVersion = Literal["v1", "v2", "v3"]
SPEC_V2 = "chara_card_v2"
SPEC_V3 = "chara_card_v3"
STORYBOT_EXTENSION = "storybot"
EXAMPLE_MARKER = "<START>"
_EXAMPLE_SPLIT = re.compile(re.escape(EXAMPLE_MARKER), re.IGNORECASE)

CARD_LABELS: dict[str, str] = {
    "id": "the character id",
    "name": "the card's name",
    "persona": "the persona (the card's description)",
    "personality": "the card's personality",
    "creator": "the card's creator",
    "character_version": "the card's character_version",
    "nickname": "the card's nickname",
    "kickoff_prose": "the card's first message (first_mes)",
    "voice_samples": "the card's example messages (mes_example)",
    "alternate_greetings": "the card's alternate greetings",
    "tags": "the card's tags",
    "scenario": "the card's scenario",
    "system_prompt": "the card's system prompt",
    "post_history_instructions": "the card's post-history instructions",
    "creator_notes": "the card's creator notes",
}
"""How a ``BotAuthored`` field is named in errors about a card, in the card's own terms."""


@dataclass(frozen=True, slots=True)
class CardFields:
    """A card read into ``BotAuthored`` fields (not yet validated), plus what was left behind."""

    fields: dict[str, object]
    version: CardVersion
    warnings: tuple[str, ...]


def read_card(card: dict[str, object]) -> CardFields:
    """Map a decoded card object to fields, whatever its spec; unknown specs are refused."""
    spec = card.get("spec")
    if spec is None:
        return _read_v1(card)
    if spec not in (SPEC_V2, SPEC_V3):
        raise CardError(
            f"this card's spec is {str(spec)[:40]!r}; only chara_card_v2, chara_card_v3 "
            "and old V1 cards can be imported."
        )
    version: CardVersion = "v2" if spec == SPEC_V2 else "v3"
    data = as_object(card.get("data"), "the card's 'data'")
    return _read_data(data, version)


def split_examples(mes_example: str) -> list[str]:
    """Example dialogues split on ``<START>`` markers, trimmed, empty ones dropped."""
    return [part.strip() for part in _EXAMPLE_SPLIT.split(mes_example) if part.strip()]


def join_examples(samples: list[str]) -> str:
    """The inverse of ``split_examples`` for trimmed, non-empty samples."""
    return "".join(f"{EXAMPLE_MARKER}\n{sample}\n" for sample in samples)


def _read_v1(card: dict[str, object]) -> CardFields:
    if "name" not in card:
        raise CardError(
            "this JSON isn't a character card (it has no 'spec', and no 'name' for an old V1 card)."
        )
    text = _texts(card)
    fields: dict[str, object] = {
        "name": text("name"),
        "persona": text("description"),
        "personality": text("personality"),
        "scenario": text("scenario"),
        "kickoff_prose": text("first_mes"),
        "voice_samples": split_examples(text("mes_example")),
        "card_source": dict(card),
    }
    fields["id"] = slugify(str(fields["name"]))
    return CardFields(fields, "v1", ())


def _read_data(data: dict[str, object], version: CardVersion) -> CardFields:
    text = _texts(data)
    texts = _text_lists(data)
    extensions = as_object(data.get("extensions"), "the card's 'extensions'", allow_none=True)
    ours = as_object(
        extensions.pop(STORYBOT_EXTENSION, None),
        "the card's 'extensions.storybot'",
        allow_none=True,
    )
    book = data.get("character_book")
    fields: dict[str, object] = {
        "name": text("name"),
        "persona": text("description"),
        "personality": text("personality"),
        "creator": text("creator"),
        "character_version": text("character_version"),
        "character_book": None if book is None else as_object(book, "the card's 'character_book'"),
        "scenario": text("scenario"),
        "kickoff_prose": text("first_mes"),
        "voice_samples": split_examples(text("mes_example")),
        "system_prompt": text("system_prompt"),
        "post_history_instructions": text("post_history_instructions"),
        "alternate_greetings": texts("alternate_greetings"),
        "tags": texts("tags"),
        "creator_notes": text("creator_notes"),
        "extensions": extensions,
        "card_source": _without_ours(data, extensions),
    }
    if version == "v3":
        fields["nickname"] = text("nickname")
    fields.update(_read_storybot(ours))
    fields.setdefault("id", slugify(str(fields["name"])))
    return CardFields(fields, version, _losses(data))


def _without_ours(data: dict[str, object], extensions: dict[str, object]) -> dict[str, object]:
    """The card's data as written, minus our own extension (read into fields instead)."""
    written = data.get("extensions")
    if isinstance(written, dict) and STORYBOT_EXTENSION in written:
        return {**data, "extensions": extensions}
    return data


def _read_storybot(ours: dict[str, object]) -> dict[str, object]:
    """Fields our export stored under ``extensions.storybot``; absent keys stay defaults."""
    label = "the card's 'extensions.storybot.{}'".format
    fields: dict[str, object] = {}
    for key in ("id", "backstory", "initial_relationship_to_you"):
        if key in ours:
            fields[key] = as_text(ours[key], label(key))
    if "traits" in ours:
        fields["traits"] = as_text_list(ours["traits"], label("traits"))
    return fields


def _losses(data: dict[str, object]) -> tuple[str, ...]:
    """Notes for card content kept on the card but not used in play."""
    warnings: list[str] = []
    group_only = data.get("group_only_greetings")
    if isinstance(group_only, list) and group_only:
        warnings.append(
            f"{len(group_only)} group-only greeting(s) are kept on the card but not used "
            "(storybot has no group chats)."
        )
    return tuple(warnings)


def _texts(source: dict[str, object]) -> Callable[[str], str]:
    def text(key: str) -> str:
        return as_text(source.get(key), f"the card's '{key}'", allow_none=True)

    return text


def _text_lists(source: dict[str, object]) -> Callable[[str], list[str]]:
    def texts(key: str) -> list[str]:
        return as_text_list(source.get(key), f"the card's '{key}'", allow_none=True)

    return texts
