"""Character import/export: Tavern cards (V1/V2/V3 JSON, PNG, CHARX) and our TOML format.

Test PNGs and zips are built in code (the PNG writer here is independent of ``bot.cards.png``)
so each broken case is a small, visible mutation of a good file.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import tomllib
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.cards import (
    CardError,
    ImportedCharacter,
    build_card,
    export_card,
    export_toml,
    load_character,
    load_character_file,
    resolve_placeholders,
    slugify,
)
from bot.cards.card_read import split_examples
from bot.cards.limits import MAX_AVATAR_BYTES, MAX_FIELD_CHARS, MAX_INPUT_BYTES
from bot.cards.png import read_chunks, text_chunks
from bot.cards.result import CALLER_FIELDS
from bot.cards.toml_write import toml_string
from bot.store.events import BotAuthored
from tests.helpers.cards import chunk, make_png

# --- builders ------------------------------------------------------------------------------


def b64(card: object) -> str:
    return base64.b64encode(json.dumps(card).encode()).decode()


def v2_card(**data: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "Mira Vale",
        "description": "{{char}} is a lighthouse keeper who talks to {{user}} about storms.",
        "personality": "wry, patient",
        "scenario": "A stormy night at the lighthouse.",
        "first_mes": "*{{char}} looks up.* You're soaked, {{user}}.",
        "mes_example": (
            "<START>\n{{user}}: Hi\n{{char}}: Hello.\n<START>\n\n<START>\n{{char}}: Bye."
        ),
        "creator_notes": "Best with slow burn.",
        "system_prompt": "Write as {{char}}.",
        "post_history_instructions": "Stay in character.",
        "alternate_greetings": ["Another greeting", "Yet another"],
        "tags": ["sea", "mystery"],
        "creator": "someone",
        "character_version": "1.2",
        "extensions": {"depth_prompt": {"depth": 4, "prompt": "x"}, "fav": False, "n": None},
    }
    base.update(data)
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": base}


def v3_card(**data: Any) -> dict[str, Any]:
    card = v2_card(**data)
    card["spec"] = "chara_card_v3"
    card["spec_version"] = "3.0"
    card["data"].setdefault("nickname", "Mimi")
    card["data"].setdefault("group_only_greetings", [])
    return card


def make_zip(members: dict[str, bytes], *, level: int = 6) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def full_character(**overrides: Any) -> BotAuthored:
    values: dict[str, Any] = {
        "id": "mira-vale",
        "name": "Mira Vale",
        "persona": '{{char}} keeps the light.\n\nShe "never" sleeps \\ ever.',
        "voice_samples": ["{{user}}: Hi\n{{char}}: Hello.", "{{char}}: Bye."],
        "traits": ["wry", "patient"],
        "backstory": "Grew up on the cliffs.",
        "initial_relationship_to_you": "A stranger at the door.",
        "kickoff_prose": "*She looks up.* You're soaked, {{user}}.",
        "nickname": "Mimi",
        "scenario": "A stormy night.",
        "system_prompt": "Write as {{char}}.",
        "post_history_instructions": "Stay in character.",
        "alternate_greetings": ["Hello again.", "Oh, it's you."],
        "tags": ["sea", "mystery"],
        "creator_notes": "Slow burn.",
        "extensions": {"depth_prompt": {"depth": 4, "prompt": "x"}, "talkativeness": "0.5"},
    }
    values.update(overrides)
    return BotAuthored.model_validate(values)


def expected_fields(character: BotAuthored) -> dict[str, object]:
    """What importing an export of ``character`` gives (the card it came from aside)."""
    return character.model_dump(exclude={*CALLER_FIELDS, "card_source"})


def without_source(fields: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in fields.items() if k != "card_source"}


def error_of(data: bytes, filename: str = "card.png") -> str:
    with pytest.raises(CardError) as caught:
        load_character(data, filename)
    return caught.value.message


# --- Tavern JSON ---------------------------------------------------------------------------


def test_v2_json_maps_every_field_and_keeps_placeholders() -> None:
    result = load_character(json.dumps(v2_card()).encode(), "mira.json")
    fields = result.fields
    assert result.source_format == "v2-json"
    assert result.avatar_bytes is None and result.avatar_content_type is None
    assert fields["id"] == "mira-vale"
    assert fields["name"] == "Mira Vale"
    assert fields["persona"] == (
        "{{char}} is a lighthouse keeper who talks to {{user}} about storms."
    )
    assert fields["personality"] == "wry, patient"
    assert fields["creator"] == "someone" and fields["character_version"] == "1.2"
    assert fields["scenario"] == "A stormy night at the lighthouse."
    assert fields["kickoff_prose"] == "*{{char}} looks up.* You're soaked, {{user}}."
    assert fields["voice_samples"] == ["{{user}}: Hi\n{{char}}: Hello.", "{{char}}: Bye."]
    assert fields["alternate_greetings"] == ["Another greeting", "Yet another"]
    assert fields["tags"] == ["sea", "mystery"]
    assert fields["creator_notes"] == "Best with slow burn."
    assert fields["system_prompt"] == "Write as {{char}}."
    assert fields["post_history_instructions"] == "Stay in character."
    assert fields["traits"] == [] and fields["backstory"] == "" and fields["nickname"] == ""
    assert not CALLER_FIELDS & set(fields)
    BotAuthored.model_validate({**fields, "guild_id": 1, "creator_id": 2})
    assert result.to_bot_authored(guild_id=5, avatar="a" * 64).guild_id == 5


def test_extensions_are_passed_through_untouched() -> None:
    extensions = {"depth_prompt": {"depth": 4, "prompt": "x"}, "fav": False, "n": None, "l": [1]}
    result = load_character(json.dumps(v2_card(extensions=extensions)).encode(), "a.json")
    assert result.fields["extensions"] == extensions


def test_v3_json_reads_nickname_and_lorebook_and_notes_unused_content() -> None:
    book = {"entries": [{"keys": ["x"], "content": "y"}]}
    card = v3_card(group_only_greetings=["hi all"], character_book=book)
    result = load_character(json.dumps(card).encode(), "mira.json")
    assert result.source_format == "v3-json"
    assert result.fields["nickname"] == "Mimi"
    assert result.fields["character_book"] == book
    assert not any("lorebook" in warning for warning in result.warnings)
    assert any("group-only" in warning for warning in result.warnings)


def test_v1_flat_json_card() -> None:
    card = {
        "name": "Old Tom",
        "description": "A sailor.",
        "personality": "",
        "scenario": "Docks.",
        "first_mes": "Ahoy, <USER>.",
        "mes_example": "<START>\n<BOT>: Arr.",
    }
    result = load_character(json.dumps(card).encode(), "tom.json")
    assert result.source_format == "v1-json"
    assert result.fields["id"] == "old-tom"
    assert result.fields["persona"] == "A sailor."
    assert result.fields["kickoff_prose"] == "Ahoy, <USER>."
    assert result.fields["voice_samples"] == ["<BOT>: Arr."]


def test_null_fields_in_a_card_read_as_empty() -> None:
    card = v2_card(tags=None, alternate_greetings=None, personality=None, extensions=None)
    fields = load_character(json.dumps(card).encode(), "a.json").fields
    assert fields["tags"] == [] and fields["alternate_greetings"] == []
    assert fields["extensions"] == {}


def test_json_with_bom_and_leading_whitespace() -> None:
    data = b"\xef\xbb\xbf \n" + json.dumps(v2_card()).encode()
    assert load_character(data, "x.txt").source_format == "v2-json"


# --- PNG -----------------------------------------------------------------------------------


def test_png_with_chara_chunk_becomes_card_and_avatar() -> None:
    png = make_png(("chara", b64(v2_card())))
    result = load_character(png, "mira.png")
    assert result.source_format == "v2-png"
    assert result.fields["name"] == "Mira Vale"
    assert result.avatar_content_type == "image/png"
    assert result.avatar_bytes is not None
    avatar_chunks = read_chunks(result.avatar_bytes)
    assert [chunk.type for chunk in avatar_chunks] == [b"IHDR", b"IDAT", b"IEND"]
    assert result.avatar_bytes == make_png()  # same image, card stripped


def test_png_with_both_chunks_prefers_ccv3() -> None:
    png = make_png(
        ("chara", b64(v2_card(name="Old Name"))),
        ("ccv3", b64(v3_card(name="New Name"))),
    )
    result = load_character(png, "card.png")
    assert result.source_format == "v3-png"
    assert result.fields["name"] == "New Name"


def test_png_keyword_is_case_insensitive_and_base64_may_be_wrapped() -> None:
    encoded = b64(v2_card())
    wrapped = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    result = load_character(make_png(("Chara", wrapped)), "card.png")
    assert result.fields["name"] == "Mira Vale"


def test_png_too_big_for_an_avatar_imports_without_one() -> None:
    png = make_png(("chara", b64(v2_card())))
    huge = png[:-12] + chunk(b"zzZz", b"\0" * (MAX_AVATAR_BYTES + 1)) + png[-12:]
    result = load_character(huge, "card.png")
    assert result.avatar_bytes is None and result.avatar_content_type is None
    assert any("too big" in warning for warning in result.warnings)


# --- CHARX ---------------------------------------------------------------------------------


def test_charx_with_icon_asset() -> None:
    icon = make_png(pixel=b"\x00\x00\xff")
    card = v3_card(
        assets=[
            {"type": "background", "uri": "embeded://assets/bg/x.png", "name": "bg", "ext": "png"},
            {"type": "icon", "uri": "embeded://assets/icon/images/alt.png", "name": "alt"},
            {"type": "icon", "uri": "embeded://assets/icon/images/main.png", "name": "main"},
        ]
    )
    data = make_zip(
        {
            "card.json": json.dumps(card).encode(),
            "assets/icon/images/main.png": icon,
            "assets/icon/images/alt.png": make_png(),
            "assets/bg/x.png": make_png(),
        }
    )
    result = load_character(data, "mira.charx")
    assert result.source_format == "charx"
    assert result.fields["nickname"] == "Mimi"
    assert result.avatar_bytes == icon
    assert result.avatar_content_type == "image/png"


def test_charx_ccdefault_icon_falls_back_to_the_icon_folder() -> None:
    icon = b"\xff\xd8\xff\xe0fake-jpeg"
    card = v3_card(assets=[{"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}])
    data = make_zip({"card.json": json.dumps(card).encode(), "assets/icon/main.jpg": icon})
    result = load_character(data, "x.charx")
    assert result.avatar_bytes == icon and result.avatar_content_type == "image/jpeg"


def test_charx_remote_icon_is_not_fetched() -> None:
    card = v3_card(assets=[{"type": "icon", "uri": "https://example.com/a.png", "name": "main"}])
    result = load_character(make_zip({"card.json": json.dumps(card).encode()}), "x.charx")
    assert result.avatar_bytes is None
    assert any("not fetched" in warning for warning in result.warnings)


def test_charx_icon_that_is_not_an_image_is_refused() -> None:
    card = v3_card(assets=[{"type": "icon", "uri": "embeded://assets/icon/a.png", "name": "main"}])
    data = make_zip({"card.json": json.dumps(card).encode(), "assets/icon/a.png": b"#!/bin/sh"})
    assert "isn't a PNG, JPEG, GIF or WebP" in error_of(data, "x.charx")


def test_charx_without_card_json() -> None:
    assert "no card.json" in error_of(make_zip({"readme.txt": b"hi"}), "x.charx")


def test_zip_bomb_is_refused_by_declared_size() -> None:
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("card.json", "w") as member,
    ):
        block = b"\0" * (1 << 20)
        for _ in range(100):  # 100 MB of zeros, about 100 KB compressed
            member.write(block)
    data = buffer.getvalue()
    assert len(data) < 1_000_000
    assert "too big" in error_of(data, "bomb.charx")


def test_zip_bomb_with_lying_sizes_is_refused() -> None:
    """A member that claims to be tiny still can't inflate past what it declared."""
    data = bytearray(make_zip({"card.json": b" " * (5 << 20)}, level=9))
    central = data.find(b"PK\x01\x02")
    local = data.find(b"PK\x03\x04")
    struct.pack_into("<I", data, central + 24, 100)  # uncompressed size in the central dir
    struct.pack_into("<I", data, local + 22, 100)  # ... and in the local header
    assert "damaged (Bad CRC-32" in error_of(bytes(data), "bomb.charx")


def test_zip_with_too_many_members_is_refused() -> None:
    members = {f"f{i}": b"" for i in range(1001)}
    members["card.json"] = json.dumps(v3_card()).encode()
    assert "too many files" in error_of(make_zip(members, level=1), "x.charx")


def test_damaged_zip_is_refused() -> None:
    data = make_zip({"card.json": json.dumps(v3_card()).encode()})
    assert "damaged" in error_of(data[: len(data) // 2], "x.charx")


# --- our TOML ------------------------------------------------------------------------------

TOML = """
name = "Mira Vale"
persona = \"\"\"
{{char}} keeps the light.\"\"\"
traits = ["wry", "patient"]
voice_samples = ["{{char}}: Hello."]
backstory = "Cliffs."
avatar = "img/mira.png"
"""


def test_toml_file_with_avatar(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    avatar = make_png()
    (tmp_path / "img" / "mira.png").write_bytes(avatar)
    path = tmp_path / "mira.toml"
    path.write_text(TOML, encoding="utf-8")
    result = load_character_file(path)
    assert result.source_format == "toml"
    assert result.fields["id"] == "mira-vale"
    assert result.fields["persona"] == "{{char}} keeps the light."
    assert result.fields["traits"] == ["wry", "patient"]
    assert result.avatar_bytes == avatar and result.avatar_content_type == "image/png"


def test_toml_bytes_skip_the_avatar_with_a_warning() -> None:
    result = load_character(TOML.encode(), "mira.toml")
    assert result.avatar_bytes is None
    assert any("img/mira.png" in warning for warning in result.warnings)


def test_toml_explicit_id_is_kept_and_validated() -> None:
    good = load_character(b'id = "m_1"\nname = "M"\npersona = ""\n', "m.toml")
    assert good.fields["id"] == "m_1"
    assert "lowercase letters" in error_of(b'id = "Bad Id"\nname = "M"\npersona = ""', "m.toml")


def test_toml_unknown_key_is_named_with_a_suggestion() -> None:
    message = error_of(b'name = "M"\npersnoa = "x"\n', "m.toml")
    assert "unknown key 'persnoa'" in message and "did you mean 'persona'" in message


def test_toml_syntax_error_names_the_line() -> None:
    message = error_of(b'name = "M"\npersona = \n', "m.toml")
    assert "isn't valid TOML" in message and "line 2" in message


def test_toml_wrong_type_and_missing_fields() -> None:
    assert "'traits' in m.toml should be a list" in error_of(
        b'name = "M"\npersona = ""\ntraits = "x"', "m.toml"
    )
    assert "no 'name' key" in error_of(b'persona = "x"', "m.toml")
    assert "'persona' is missing" in error_of(b'name = "M"', "m.toml")


@pytest.mark.parametrize(
    ("avatar", "fragment"),
    [
        ("/etc/passwd", "must be relative"),
        ("C:\\\\x.png", "must be relative"),
        ("../secret.png", "'..'"),
        ("img/../../secret.png", "'..'"),
        ("missing.png", "can't read"),
        ("notes.txt", "isn't a PNG, JPEG, GIF or WebP"),
        ("folder", "isn't a regular file"),
    ],
)
def test_toml_avatar_paths_are_kept_inside_the_folder(
    tmp_path: Path, avatar: str, fragment: str
) -> None:
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "folder").mkdir()
    path = tmp_path / "m.toml"
    path.write_text(f'name = "M"\npersona = ""\navatar = "{avatar}"\n')
    with pytest.raises(CardError) as caught:
        load_character_file(path)
    assert fragment in caught.value.message


def test_toml_avatar_symlink_escaping_the_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.png"
    outside.write_bytes(make_png())
    folder = tmp_path / "char"
    folder.mkdir()
    (folder / "link.png").symlink_to(outside)
    path = folder / "m.toml"
    path.write_text('name = "M"\npersona = ""\navatar = "link.png"\n')
    with pytest.raises(CardError, match="outside"):
        load_character_file(path)


def test_missing_or_oversized_file_is_a_card_error(tmp_path: Path) -> None:
    with pytest.raises(CardError, match="can't read"):
        load_character_file(tmp_path / "nope.toml")
    big = tmp_path / "big.toml"
    big.write_bytes(b" " * (MAX_INPUT_BYTES + 1))
    with pytest.raises(CardError, match="too big"):
        load_character_file(big)


def test_export_toml_round_trip(tmp_path: Path) -> None:
    character = full_character(extensions={})
    (tmp_path / "mira.png").write_bytes(make_png())
    path = tmp_path / "mira.toml"
    path.write_text(export_toml(character, avatar_path="mira.png"), encoding="utf-8")
    result = load_character_file(path)
    assert without_source(result.fields) == expected_fields(character)
    assert result.avatar_bytes == make_png()


@given(st.text())
def test_toml_string_reads_back_exactly(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return
    assert tomllib.loads(f"x = {toml_string(text)}")["x"] == text


# --- broken and hostile files --------------------------------------------------------------


def test_png_without_a_card() -> None:
    message = error_of(make_png(("Software", "paint")))
    assert message == "this PNG has no character card in it (no 'chara' or 'ccv3' text chunk)."


def test_png_with_bad_base64() -> None:
    assert "isn't valid base64" in error_of(make_png(("chara", "not*base64!")))


def test_png_with_invalid_utf8_in_the_card() -> None:
    payload = base64.b64encode(b'{"name": "\xff\xfe"}').decode()
    assert "isn't valid UTF-8" in error_of(make_png(("chara", payload)))


def test_truncated_png() -> None:
    png = make_png(("chara", b64(v2_card())))
    assert "truncated" in error_of(png[: len(png) - 30])
    assert "truncated" in error_of(png[:10])


def test_png_with_bad_crc() -> None:
    png = bytearray(make_png(("chara", b64(v2_card()))))
    png[42] ^= 0xFF  # inside the IDAT data (8 signature + 25 IHDR + 8 header)
    assert "CRC" in error_of(bytes(png))


def test_png_not_starting_with_ihdr() -> None:
    png = make_png()
    swapped = png[:8] + chunk(b"IDAT", zlib.compress(b"\0\0\0\0")) + png[8:]
    assert "IHDR" in error_of(swapped)


def test_file_named_png_that_is_not_one() -> None:
    assert "isn't a PNG file" in error_of(b"GIF89a....", "card.png")


def test_wrong_spec() -> None:
    card = v2_card()
    card["spec"] = "chara_card_v9"
    assert "spec is 'chara_card_v9'" in error_of(json.dumps(card).encode(), "a.json")


def test_json_that_is_not_an_object() -> None:
    assert "should be a JSON object, not a list" in error_of(b"[1, 2]", "a.json")
    assert "should be a JSON object" in error_of(make_png(("chara", b64("just text"))))


def test_json_that_is_not_a_card() -> None:
    assert "isn't a character card" in error_of(b'{"hello": 1}', "a.json")


def test_card_data_of_the_wrong_shape() -> None:
    card = v2_card()
    card["data"] = ["x"]
    assert "'data' should be an object" in error_of(json.dumps(card).encode(), "a.json")
    assert "'tags' should be a list" in error_of(json.dumps(v2_card(tags="x")).encode(), "a.json")
    message = error_of(json.dumps(v2_card(tags=["ok", 3])).encode(), "a.json")
    assert "item 2 of the card's 'tags' should be text, not a number" in message


def test_invalid_json_and_hostile_values() -> None:
    assert "isn't valid JSON" in error_of(b'{"spec": ', "a.json")
    assert "bad number" in error_of(b'{"name": NaN}', "a.json")
    assert "nested too deeply" in error_of(b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert "invalid characters" in error_of(b'{"name": "\\ud800"}', "a.json")
    assert "isn't valid UTF-8" in error_of(b'{"name": "\xc3\x28"}', "a.json")


def test_huge_field_is_refused() -> None:
    card = v2_card(description="x" * (MAX_FIELD_CHARS + 1))
    message = error_of(json.dumps(card).encode(), "a.json")
    assert "'description' is too long" in message and "20,000" in message


def test_personality_over_the_limit_is_refused() -> None:
    card = v2_card(personality="y" * (MAX_FIELD_CHARS + 1))
    assert "'personality' is too long" in error_of(json.dumps(card).encode(), "a.json")


def test_card_that_maps_to_an_invalid_character() -> None:
    assert "the card's name is empty" in error_of(json.dumps(v2_card(name="")).encode(), "a.json")
    long_name = json.dumps(v2_card(name="n" * 81)).encode()
    assert "the card's name is too long" in error_of(long_name, "a.json")
    too_many = json.dumps(v2_card(tags=["t"] * 101)).encode()
    assert "the card's tags has too many items" in error_of(too_many, "a.json")


def test_whole_input_over_the_size_cap() -> None:
    assert "too big" in error_of(b" " * (MAX_INPUT_BYTES + 1), "a.toml")


def test_card_json_over_the_size_cap() -> None:
    card = v2_card(extensions={"blob": "x" * (3 << 20)})
    assert "too big" in error_of(json.dumps(card).encode(), "a.json")


def test_invalid_utf8_toml() -> None:
    assert "isn't valid UTF-8" in error_of(b'name = "\xff"', "a.toml")


# --- export --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_export_import_round_trip_json(version: str) -> None:
    character = full_character()
    data, filename = export_card(character, version=version, avatar_png=None)  # type: ignore[arg-type]
    assert filename == "mira-vale.json"
    card = json.loads(data)
    assert card["spec"] == f"chara_card_{version}"
    assert card["data"]["description"] == character.persona
    result = load_character(data, filename)
    assert result.source_format == f"{version}-json"
    expected = expected_fields(character)
    if version == "v2":  # V2 has no nickname slot
        expected["nickname"] = ""
    assert without_source(result.fields) == expected


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_export_import_round_trip_png(version: str) -> None:
    character = full_character()
    avatar = make_png(("Software", "paint"))
    data, filename = export_card(character, version=version, avatar_png=avatar)  # type: ignore[arg-type]
    assert filename == "mira-vale.png"
    keywords = set(text_chunks(read_chunks(data)))
    assert keywords == ({"software", "chara", "ccv3"} if version == "v3" else {"software", "chara"})
    result = load_character(data, filename)
    assert result.source_format == f"{version}-png"
    expected = expected_fields(character)
    if version == "v2":
        expected["nickname"] = ""
    assert without_source(result.fields) == expected
    assert result.avatar_bytes == make_png()


def test_v3_png_export_is_readable_by_v2_only_tools() -> None:
    data, _ = export_card(full_character(), version="v3", avatar_png=make_png())
    chara = text_chunks(read_chunks(data))["chara"]
    card = json.loads(base64.b64decode(chara))
    assert card["spec"] == "chara_card_v2"
    assert card["data"]["name"] == "Mira Vale"


def test_export_replaces_an_existing_card_in_the_avatar() -> None:
    old = make_png(("chara", b64(v2_card(name="Someone Else"))))
    data, _ = export_card(full_character(), version="v2", avatar_png=old)
    chunks = read_chunks(data)
    assert sum(chunk.type == b"tEXt" for chunk in chunks) == 1
    assert load_character(data, "x.png").fields["name"] == "Mira Vale"


def test_export_into_a_non_png_avatar_is_refused() -> None:
    with pytest.raises(CardError, match="only be embedded in a PNG"):
        export_card(full_character(), version="v3", avatar_png=b"\xff\xd8\xffjpeg")


def test_v3_export_declares_the_default_icon_only_with_an_image() -> None:
    assert "assets" not in build_card(full_character(), "v3")["data"]  # type: ignore[operator]
    with_icon = build_card(full_character(), "v3", with_icon=True)["data"]
    assert with_icon["assets"][0]["uri"] == "ccdefault:"  # type: ignore[index]


def test_export_leaves_user_extensions_and_strips_ours_on_import() -> None:
    character = full_character(extensions={"storybot_other": 1, "chub": {"id": 5}})
    data, _ = export_card(character, version="v3", avatar_png=None)
    assert json.loads(data)["data"]["extensions"]["storybot"]["traits"] == ["wry", "patient"]
    assert load_character(data, "x.json").fields["extensions"] == character.extensions


# --- placeholders and ids -----------------------------------------------------------------


def test_resolve_placeholders() -> None:
    text = "{{char}} greets {{USER}}; {{ Char }} and <BOT>, <char> see <User>. {{other}}"
    assert resolve_placeholders(text, char="Mira", user="Sam") == (
        "Mira greets Sam; Mira and Mira, Mira see Sam. {{other}}"
    )


@given(st.text(), st.text(), st.text())
def test_resolve_placeholders_never_re_expands(prefix: str, char: str, user: str) -> None:
    text = prefix.replace("{", "").replace("<", "") + "{{char}}"
    resolved = resolve_placeholders(text, char=f"{{{{user}}}}{char}", user=user)
    assert resolved.endswith(f"{{{{user}}}}{char}")


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Mira Vale", "mira-vale"),
        ("  Zoë  O'Brien!! ", "zoe-o-brien"),
        ("x" * 100, "x" * 64),
        ("---", "character-"),
        ("さくら", "character-"),
    ],
)
def test_slugify(name: str, slug: str) -> None:
    result = slugify(name)
    assert result.startswith(slug)
    BotAuthored(id=result, name="n", persona="")


def test_split_examples() -> None:
    assert split_examples("") == []
    assert split_examples("no marker") == ["no marker"]
    assert split_examples("<start>\na\n<START>\n  \n<START>b") == ["a", "b"]


def test_imported_character_is_frozen() -> None:
    result = load_character(json.dumps(v2_card()).encode(), "a.json")
    assert isinstance(result, ImportedCharacter)
    with pytest.raises(AttributeError):
        result.source_format = "toml"  # type: ignore[misc]
