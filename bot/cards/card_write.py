"""Exporting a character as a Tavern card: V2 or V3 JSON, or a PNG with the card embedded.

The export is designed so that importing it gives back the same fields: the persona goes out as
the description (personality left empty), voice samples as ``<START>`` blocks, and the fields a
card has no slot for travel in ``extensions.storybot``.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Literal

from bot.cards.card_read import SPEC_V2, SPEC_V3, STORYBOT_EXTENSION, join_examples
from bot.cards.errors import CardError
from bot.cards.limits import MAX_CARD_JSON_BYTES
from bot.cards.png import embed_text, is_png
from bot.store.events import BotAuthored

log = logging.getLogger(__name__)

CardExportVersion = Literal["v2", "v3"]
ICON_ASSET: dict[str, object] = {"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}


def build_card(
    character: BotAuthored, version: CardExportVersion, *, with_icon: bool = False
) -> dict[str, object]:
    """The card object; ``with_icon`` adds V3's default icon asset (the PNG the card rides in)."""
    data: dict[str, object] = {
        "name": character.name,
        "description": character.persona,
        "personality": "",
        "scenario": character.scenario,
        "first_mes": character.kickoff_prose,
        "mes_example": join_examples(character.voice_samples),
        "creator_notes": character.creator_notes,
        "system_prompt": character.system_prompt,
        "post_history_instructions": character.post_history_instructions,
        "alternate_greetings": list(character.alternate_greetings),
        "tags": list(character.tags),
        "creator": "",
        "character_version": "",
        "extensions": {**character.extensions, STORYBOT_EXTENSION: _storybot(character)},
    }
    if version == "v2":
        return {"spec": SPEC_V2, "spec_version": "2.0", "data": data}
    data["nickname"] = character.nickname
    data["group_only_greetings"] = []
    if with_icon:
        data["assets"] = [dict(ICON_ASSET)]
    return {"spec": SPEC_V3, "spec_version": "3.0", "data": data}


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
