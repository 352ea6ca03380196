"""Lossless cards: import a card, export it as the same spec version, and the data is the card.

The cards are built here from the V2 and V3 specs, with every field set (a lorebook with V2 and
V3 entry fields, SillyTavern's entry extensions, unknown fields at every level), and carried in
each container: JSON, PNG (``chara`` / ``ccv3``) and CHARX.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest
from test_cards import make_png, make_zip

from bot.cards import build_card, export_card, load_character
from bot.cards.png import read_chunks, text_chunks
from bot.store.events import BotAuthored


def character_book() -> dict[str, Any]:
    return {
        "name": "Vale lore",
        "description": "the cliffs and the light",
        "scan_depth": 3,
        "token_budget": 400,
        "recursive_scanning": True,
        "extensions": {"chub": {"book_id": 7}},
        "entries": [
            {
                "keys": ["lighthouse", "lamp"],
                "content": "The lighthouse lamp has not failed in forty years.",
                "extensions": {"position": 0, "selectiveLogic": 1, "scan_depth": None},
                "enabled": True,
                "insertion_order": 10,
                "case_sensitive": False,
                "name": "lamp",
                "priority": 5,
                "id": 1,
                "comment": "the lamp",
                "selective": True,
                "secondary_keys": ["storm"],
                "constant": False,
                "position": "before_char",
            },
            {
                "keys": ["/wreck(s|age)?/i"],
                "content": "{{char}} found a wreck in spring.",
                "extensions": {},
                "enabled": True,
                "insertion_order": 20,
                "use_regex": True,
                "constant": True,
                "position": "after_char",
                "future_field": {"kept": [1, 2]},
            },
        ],
    }


def v2_data(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "Mira Vale",
        "description": "{{char}} keeps the light.",
        "personality": "wry, patient",
        "scenario": "A stormy night.",
        "first_mes": "*{{char}} looks up.* You're soaked, {{user}}.",
        "mes_example": "<START>\r\n{{user}}: Hi\r\n{{char}}:   Hello.\n\n<START>\n{{char}}: Bye.",
        "creator_notes": "Slow burn.",
        "system_prompt": "{{original}} Keep it short.",
        "post_history_instructions": None,
        "alternate_greetings": ["Oh. It's you, {{user}}.", "The lamp flickers."],
        "character_book": character_book(),
        "tags": ["sea"],
        "creator": "cliffside",
        "character_version": "2.1",
        "extensions": {
            "talkativeness": "0.5",
            "depth_prompt": {"prompt": "{{char}} is tired.", "depth": 2, "role": "system"},
            "world": "Vale",
        },
        "x_unknown": {"nested": [None, True, 1.5]},
    }
    data.update(extra)
    return data


def v2_card() -> dict[str, Any]:
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": v2_data()}


def v3_card(assets: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    data = v2_data(
        nickname="Mimi",
        group_only_greetings=["Hello, all of you."],
        source=["https://example.invalid/mira"],
        creation_date=1700000000,
        modification_date=1700000500,
        creator_notes_multilingual={"ja": "ゆっくり"},
        assets=assets or [{"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}],
    )
    return {"spec": "chara_card_v3", "spec_version": "3.0", "data": data}


def encoded(card: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(card, ensure_ascii=False).encode()).decode()


def stored(data: bytes, filename: str) -> BotAuthored:
    """The character as the log would keep it (the import's fields, validated)."""
    return load_character(data, filename).to_bot_authored()


def exported_data(character: BotAuthored, version: str) -> dict[str, Any]:
    data, _ = export_card(character, version=version, avatar_png=None)  # type: ignore[arg-type]
    card: dict[str, Any] = json.loads(data)
    assert card["spec"] == f"chara_card_{version}"
    return card["data"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("card", "version"), [(v2_card(), "v2"), (v3_card(), "v3")], ids=["v2", "v3"]
)
def test_json_card_exports_as_it_was_imported(card: dict[str, Any], version: str) -> None:
    character = stored(json.dumps(card).encode(), "mira.json")
    assert exported_data(character, version) == card["data"]


def test_v2_png_card_exports_as_it_was_imported() -> None:
    card = v2_card()
    character = stored(make_png(("chara", encoded(card))), "mira.png")
    png, _ = export_card(character, version="v2", avatar_png=make_png())
    chara = json.loads(base64.b64decode(text_chunks(read_chunks(png))["chara"]))
    assert chara["data"] == card["data"]


def test_v3_png_card_exports_as_it_was_imported() -> None:
    card = v3_card()
    png = make_png(("chara", encoded(v2_card())), ("ccv3", encoded(card)))
    character = stored(png, "mira.png")
    assert load_character(png, "mira.png").source_format == "v3-png"
    exported, _ = export_card(character, version="v3", avatar_png=make_png())
    ccv3 = json.loads(base64.b64decode(text_chunks(read_chunks(exported))["ccv3"]))
    assert ccv3["data"] == card["data"]


def test_nulls_stay_and_a_missing_spec_field_is_added_empty() -> None:
    card = v2_card()
    card["data"].update(extensions=None, tags=None, creator_notes=None)
    del card["data"]["personality"], card["data"]["character_book"]
    character = stored(json.dumps(card).encode(), "mira.json")
    # personality is required by the V2 spec: the export is a valid card; the lorebook is not
    assert exported_data(character, "v2") == {**card["data"], "personality": ""}


def test_charx_card_exports_as_it_was_imported() -> None:
    icon = [{"type": "icon", "uri": "embeded://assets/icon/main.png", "name": "main", "ext": "png"}]
    card = v3_card(assets=icon)
    charx = make_zip({"card.json": json.dumps(card).encode(), "assets/icon/main.png": make_png()})
    result = load_character(charx, "mira.charx")
    assert result.source_format == "charx" and result.avatar_bytes == make_png()
    assert exported_data(result.to_bot_authored(), "v3") == card["data"]


def test_every_feature_is_read_into_its_own_field() -> None:
    character = stored(json.dumps(v3_card()).encode(), "mira.json")
    assert character.persona == "{{char}} keeps the light."
    assert character.personality == "wry, patient"
    assert character.creator == "cliffside" and character.character_version == "2.1"
    assert character.character_book == character_book()
    assert character.nickname == "Mimi"
    assert character.alternate_greetings == ["Oh. It's you, {{user}}.", "The lamp flickers."]
    assert character.extensions["depth_prompt"] == v2_data()["extensions"]["depth_prompt"]


def test_a_changed_field_is_exported_and_the_rest_stays_as_written() -> None:
    character = stored(json.dumps(v2_card()).encode(), "mira.json")
    edited = character.model_copy(update={"persona": "A new description.", "tags": ["a", "b"]})
    data = exported_data(edited, "v2")
    expected = copy.deepcopy(v2_card()["data"])
    expected.update(description="A new description.", tags=["a", "b"])
    assert data == expected


def test_v3_card_exported_as_v2_leaves_out_what_v2_has_no_place_for() -> None:
    character = stored(json.dumps(v3_card()).encode(), "mira.json")
    data = exported_data(character, "v2")
    assert not {"nickname", "assets", "group_only_greetings", "source"} & set(data)
    assert data["character_book"] == character_book()
    assert data["x_unknown"] == {"nested": [None, True, 1.5]}


def test_v2_card_exported_as_v3_gains_the_v3_fields() -> None:
    character = stored(json.dumps(v2_card()).encode(), "mira.json")
    data = build_card(character, "v3", with_icon=True)["data"]
    assert isinstance(data, dict)
    assert data["nickname"] == "" and data["group_only_greetings"] == []
    assert data["assets"] == [{"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}]
    assert data["creator"] == "cliffside" and data["personality"] == "wry, patient"


def test_storybot_fields_ride_in_our_extension_only_when_they_say_something() -> None:
    character = stored(json.dumps(v2_card()).encode(), "mira.json")
    assert "storybot" not in exported_data(character, "v2")["extensions"]
    with_traits = character.model_copy(update={"traits": ["wry"], "id": "mira"})
    data = exported_data(with_traits, "v2")
    assert data["extensions"]["storybot"]["traits"] == ["wry"]
    again = stored(json.dumps({"spec": "chara_card_v2", "data": data}).encode(), "m.json")
    assert again.id == "mira" and again.traits == ["wry"]
    assert again.extensions == character.extensions
