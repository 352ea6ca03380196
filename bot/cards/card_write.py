"""Exporting a character as a Tavern card: V2 or V3 JSON, or a PNG with the card embedded.

The export is designed so that importing it gives back the same fields, and an imported card
exported as its own spec version gives back the card: the persona goes out as the description,
voice samples as ``<START>`` blocks, the fields a card has no slot for travel in
``extensions.storybot``, and everything else the card held comes from ``card_source``.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from typing import Literal

from bot.cards.card_read import (
    SPEC_V2,
    SPEC_V3,
    STORYBOT_EXTENSION,
    join_examples,
    split_examples,
)
from bot.cards.errors import CardError
from bot.cards.limits import MAX_CARD_JSON_BYTES
from bot.cards.png import embed_text, is_png
from bot.cards.slug import slugify
from bot.store.events import BotAuthored

log = logging.getLogger(__name__)

CardExportVersion = Literal["v2", "v3"]
ICON_ASSET: dict[str, object] = {"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}


V3_ONLY = frozenset(
    {
        "nickname",
        "group_only_greetings",
        "assets",
        "source",
        "creation_date",
        "modification_date",
        "creator_notes_multilingual",
    }
)
"""Fields of V3 ``data`` that a V2 card has no place for (left out of a V2 export)."""


def build_card(
    character: BotAuthored, version: CardExportVersion, *, with_icon: bool = False
) -> dict[str, object]:
    """The card object; ``with_icon`` adds V3's default icon asset (the PNG the card rides in).

    Starts from the imported card as written (``card_source``) and writes our value only for
    a field that changed here (or that the source lacks), so unknown fields and the card's own
    spelling of unchanged ones (``null``, ``mes_example`` layout) survive a round trip.
    """
    source = dict(character.card_source)
    data: dict[str, object] = {
        k: v for k, v in source.items() if version == "v3" or k not in V3_ONLY
    }
    for key, (ours, as_read) in _our_fields(character, version).items():
        if key not in source or as_read(source[key]) != _comparable(key, character):
            data[key] = ours
    if version == "v2":
        return {"spec": SPEC_V2, "spec_version": "2.0", "data": data}
    data.setdefault("group_only_greetings", [])
    if with_icon:
        data["assets"] = _with_default_icon(data.get("assets"))
    return {"spec": SPEC_V3, "spec_version": "3.0", "data": data}


_Reader = Callable[[object], object]


def _text(value: object) -> object:
    return "" if value is None else value


def _list(value: object) -> object:
    return [] if value is None else value


def _examples(value: object) -> object:
    return split_examples(value) if isinstance(value, str) else ([] if value is None else value)


def _extensions(value: object) -> object:
    if not isinstance(value, dict):
        return {} if value is None else value
    return {k: v for k, v in value.items() if k != STORYBOT_EXTENSION}


def _same(value: object) -> object:
    return value


_FIELD_OF: dict[str, str] = {
    "name": "name",
    "description": "persona",
    "personality": "personality",
    "scenario": "scenario",
    "first_mes": "kickoff_prose",
    "mes_example": "voice_samples",
    "creator_notes": "creator_notes",
    "system_prompt": "system_prompt",
    "post_history_instructions": "post_history_instructions",
    "alternate_greetings": "alternate_greetings",
    "tags": "tags",
    "creator": "creator",
    "character_version": "character_version",
    "character_book": "character_book",
    "extensions": "extensions",
    "nickname": "nickname",
}
"""Card ``data`` key -> the ``BotAuthored`` field it is read into."""


def _comparable(key: str, character: BotAuthored) -> object:
    """The field as the card's key would read back; extensions also say whether ours ride."""
    value = getattr(character, _FIELD_OF[key])
    if key == "extensions" and _storybot_needed(character):
        return None  # never equal to what the source held: our extension must be written
    return value


def _our_fields(
    character: BotAuthored, version: CardExportVersion
) -> dict[str, tuple[object, _Reader]]:
    """Each card key: our value as the card writes it, and how the card's value reads back."""
    extensions = dict(character.extensions)
    if _storybot_needed(character):
        extensions[STORYBOT_EXTENSION] = _storybot(character)
    fields: dict[str, tuple[object, _Reader]] = {
        "name": (character.name, _text),
        "description": (character.persona, _text),
        "personality": (character.personality, _text),
        "scenario": (character.scenario, _text),
        "first_mes": (character.kickoff_prose, _text),
        "mes_example": (join_examples(character.voice_samples), _examples),
        "creator_notes": (character.creator_notes, _text),
        "system_prompt": (character.system_prompt, _text),
        "post_history_instructions": (character.post_history_instructions, _text),
        "alternate_greetings": (list(character.alternate_greetings), _list),
        "tags": (list(character.tags), _list),
        "creator": (character.creator, _text),
        "character_version": (character.character_version, _text),
        "extensions": (extensions, _extensions),
    }
    if character.character_book is not None:
        fields["character_book"] = (character.character_book, _same)
    if version == "v3":
        fields["nickname"] = (character.nickname, _text)
    return fields


def _storybot_needed(character: BotAuthored) -> bool:
    """Our extension rides only when it says something a re-import would not guess."""
    return bool(
        character.id != slugify(character.name)
        or character.traits
        or character.backstory
        or character.initial_relationship_to_you
        or not character.card_source
    )


def _with_default_icon(assets: object) -> list[object]:
    """The card's assets with the PNG itself as the main icon (``ccdefault:``)."""
    kept = [a for a in assets if isinstance(a, dict)] if isinstance(assets, list) else []
    if any(a.get("type") == "icon" and a.get("uri") == "ccdefault:" for a in kept):
        return list(kept)
    return [dict(ICON_ASSET), *(a for a in kept if a.get("type") != "icon")]


def export_card(
    character: BotAuthored, *, version: CardExportVersion, avatar_png: bytes | None
) -> tuple[bytes, str]:
    """The card file and its name: JSON without an avatar, else the avatar PNG carrying the card.

    A V3 PNG carries both a ``ccv3`` and a V2 ``chara`` chunk, as SillyTavern writes them, so
    V2-only tools can still read it.
    """
    if avatar_png is None:
        card = build_card(character, version)
        return _encode(card), f"{character.id}.json"
    if not is_png(avatar_png):
        raise CardError("a card can only be embedded in a PNG avatar; export it as JSON instead.")
    texts = {"chara": _b64(build_card(character, "v2"))}
    if version == "v3":
        texts = {"ccv3": _b64(build_card(character, "v3", with_icon=True)), **texts}
    png = embed_text(avatar_png, texts)
    log.debug("exported %s as a %s PNG card (%d bytes)", character.id, version, len(png))
    return png, f"{character.id}.png"


def _storybot(character: BotAuthored) -> dict[str, object]:
    return {
        "id": character.id,
        "traits": list(character.traits),
        "backstory": character.backstory,
        "initial_relationship_to_you": character.initial_relationship_to_you,
    }


def _encode(card: dict[str, object], *, pretty: bool = True) -> bytes:
    if pretty:
        text = json.dumps(card, ensure_ascii=False, indent=2)
    else:
        text = json.dumps(card, ensure_ascii=False, separators=(",", ":"))
    raw = text.encode("utf-8")
    if len(raw) > MAX_CARD_JSON_BYTES:
        raise CardError("this character is too big to export as a card (its extensions are huge).")
    return raw


def _b64(card: dict[str, object]) -> str:
    return base64.b64encode(_encode(card, pretty=False)).decode("ascii")
