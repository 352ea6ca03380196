"""The console's Tavern commands: greeting=N, /character show, and the /lore group."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from bot.config import Settings
from bot.console import play
from bot.engine import Engine
from bot.llm import ScriptedLLM
from bot.store import Database
from tests.helpers.engine_helpers import parse_answer, zero_state

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def write_card(tmp_path: Path) -> Path:
    card = {
        "spec": "chara_card_v2",
        "spec_version": "2.0",
        "data": {
            "name": "Mira",
            "description": "{{char}} keeps the light.",
            "first_mes": "Evening, {{user}}.",
            "alternate_greetings": ["*{{char}} waves at {{user}}.*"],
            "creator": "cliffside",
            "character_version": "2.1",
            "character_book": {"entries": [{"keys": ["lamp"], "content": "The lamp never fails."}]},
        },
    }
    path = tmp_path / "mira.json"
    path.write_text(json.dumps(card), encoding="utf-8")
    return path


def write_world(tmp_path: Path) -> Path:
    world = {
        "entries": {
            "0": {"uid": 0, "key": ["harbour"], "content": "The harbour froze.", "comment": "ice"},
            "1": {"uid": 1, "key": ["gull"], "content": "Gulls steal.", "order": 5},
        }
    }
    path = tmp_path / "vale.json"
    path.write_text(json.dumps(world), encoding="utf-8")
    return path


async def play_script(engine: Engine, script: str) -> str:
    out = io.StringIO()
    assert await play(engine, io.StringIO(script), out, interactive=False) == 0
    return out.getvalue()


async def test_the_console_plays_greetings_and_the_world_book(
    db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mock = ScriptedLLM(
        narrate="Mira looks at the harbour.", classify=parse_answer("x"), state=zero_state()
    )
    engine = Engine(db, mock, Settings())
    script = f"""\
/character import {write_card(tmp_path)}
/character show mira
/you set name=Ash
/chat start host=mira greeting=1
/lore import {write_world(tmp_path)}
/lore add keys=tea,kettle content="Tea is rationed." secondary=storm logic=not_any
/lore list
/lore why mira the harbour and the lamp
/lore remove 2
/lore remove 9
/lore add content="no keys"
The harbour, Mira.
"""
    with caplog.at_level(logging.DEBUG, logger="bot.engine.lore"):
        out = await play_script(engine, script)

    assert "creator: cliffside" in out and "version: 2.1" in out
    assert "greeting=1: *{{char}} waves at {{user}}.*" in out
    assert "Mira: *Mira waves at Ash.*" in out
    assert "(the world book is now vale: 2 entries)" in out
    assert "(world-book entry #3 added)" in out
    assert "#1 Gulls steal. (keys: gull)" in out  # in insertion order
    assert "#2 ice: The harbour froze. (keys: harbour)" in out
    assert "#3 Tea is rationed. (keys: tea, kettle (not any: storm))" in out
    assert "  ice (the story's world book): key 'harbour' in the line being answered" in out
    assert "  lamp (Mira's lorebook): key 'lamp' in the line being answered" in out
    assert "(world-book entry #2 removed)" in out
    assert "error: the world book has no entry 9 (see /lore list)" in out
    assert "error: a world-info entry needs keys" in out
    narrative = next(call for call in mock.calls if call.kind == "stream")
    assert "The harbour froze." not in "\n".join(m.content for m in narrative.messages)
    assert any("world info for Mira" in record.message for record in caplog.records)


async def test_a_greeting_that_is_not_a_number_is_a_usage_error(
    db: Database, tmp_path: Path
) -> None:
    engine = Engine(db, ScriptedLLM(), Settings())
    out = await play_script(
        engine, f"/character import {write_card(tmp_path)}\n/chat start host=mira greeting=x\n"
    )
    assert "error: greeting=N takes a number" in out


async def test_the_example_world_book_imports(db: Database) -> None:
    engine = Engine(db, ScriptedLLM(), Settings())
    out = await play_script(
        engine,
        f"/character import {EXAMPLES / 'characters' / 'mira.toml'}\n"
        "/chat start host=mira\n"
        f"/lore import {EXAMPLES / 'world' / 'harbour.json'}\n"
        "/lore why mira the torn ledger page\n",
    )
    assert "(the world book is now The harbour district: 3 entries)" in out
    assert "  weather (the story's world book): constant" in out
    assert "  the ledger (the story's world book): key 'ledger' in the line being answered" in out
