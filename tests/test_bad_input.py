"""Any text a player can send is either played or refused with a message; nothing crashes.

Lone surrogates (which Discord's JSON can carry, and a terminal decoding with surrogateescape
produces) through both adapters; bytes that are not UTF-8 through the console.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import discord.ext.test as dpytest
import pytest

from bot.config import Settings
from bot.console import play
from bot.engine import Engine, StoryError
from bot.llm import ScriptedLLM
from bot.store import Database
from tests.helpers.bot_process import ROOT, start_bot
from tests.helpers.discord_fakes import StoryWorld, channel_texts
from tests.helpers.engine_helpers import character, parse_answer, zero_state

BROKEN = "I pick up the \ud83d letter"  # half of an emoji's surrogate pair
REFUSED = "holds a broken character (a lone surrogate, U+D83D, at position 15)"


async def test_discord_answers_a_line_with_a_lone_surrogate(
    world: StoryWorld, llm: ScriptedLLM
) -> None:
    chat_id = await world.story()
    before = len(await world.engine.queries.beats(chat_id))

    await dpytest.message(BROKEN, channel=world.channel, member=world.owner)

    assert REFUSED in channel_texts(world.channel.id)[-1]
    assert llm.calls == []
    assert len(await world.engine.queries.beats(chat_id)) == before
    # and the story goes on with the next line
    llm.script(narrate="BotA nods.", classify=parse_answer("fine"), state=zero_state())
    await dpytest.message("fine", channel=world.channel, member=world.owner)
    assert (await world.engine.queries.beats(chat_id))[-1].text == "BotA nods."


async def test_the_console_answers_a_line_with_a_lone_surrogate(db: Database) -> None:
    mock = ScriptedLLM(narrate="Evening.", classify=parse_answer("hello"), state=zero_state())
    engine = Engine(db, mock, Settings())
    await engine.characters.author(character("mira", "Mira Vale", kickoff_prose=""))
    out = io.StringIO()

    await play(
        engine, io.StringIO(f"/chat start host=mira\n{BROKEN}\nhello\n"), out, interactive=False
    )

    lines = out.getvalue().splitlines()
    assert (
        lines[1]
        == f"error: that message {REFUSED} that cannot be saved; retype that part and send it again"
    )
    assert lines[2] == "Mira Vale: Evening."


async def _piped_console(tmp_path: Path, data: bytes, *argv: str) -> tuple[int, str, str]:
    process = await start_bot(
        "--db",
        str(tmp_path / "story.db"),
        "console",
        *argv,
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "PYTHONPATH": str(ROOT)},
    )
    out, err = await asyncio.wait_for(process.communicate(data), 20)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


BAD_BYTES = b"/character list\n/you set name=Ash\xff\xfe\n/you set name=Ash\n\xed\xa0\xbd\n/quit\n"


async def test_the_console_refuses_a_line_that_is_not_utf8_and_goes_on(tmp_path: Path) -> None:
    code, out, err = await _piped_console(tmp_path, BAD_BYTES)

    assert code == 0, err
    assert out.splitlines() == [
        "(no characters yet)",
        "error: line 2 is not UTF-8 text (byte 0xff at position 18); it was skipped: set your "
        "terminal or file to UTF-8",
        "you are Ash (they/them)",
        "error: line 4 is not UTF-8 text (byte 0xed at position 1); it was skipped: set your "
        "terminal or file to UTF-8",
    ]
    assert "Traceback" not in err


async def test_a_script_that_is_not_utf8_is_played_line_by_line(tmp_path: Path) -> None:
    script = tmp_path / "script.txt"
    script.write_bytes(BAD_BYTES)

    code, out, err = await _piped_console(tmp_path, b"", "--script", str(script))

    assert code == 0, err
    assert out.count("error: line ") == 2 and "you are Ash (they/them)" in out


async def test_a_lone_surrogate_anywhere_in_a_command_is_refused_not_raised(db: Database) -> None:
    engine = Engine(db, ScriptedLLM(), Settings())
    await engine.characters.author(character("mira", "Mira Vale", kickoff_prose=""))
    out = io.StringIO()
    script = (
        "/chat start host=mira\n"
        "/chat set place=\ud800\n"
        "/you set name=A\udfff\n"
        "/meanwhile start a \ud800 walk\n"
        "/status\n"
    )

    await play(engine, io.StringIO(script), out, interactive=False)

    lines = out.getvalue().splitlines()
    assert [x.startswith("error: ") for x in lines[1:4]] == [True] * 3, lines
    assert all("broken character" in x or "unicode" in x for x in lines[1:4]), lines
    assert lines[4].startswith("Day 1")  # and the story is as it was


async def test_an_edit_with_a_lone_surrogate_is_refused_before_any_lookup(db: Database) -> None:
    engine = Engine(db, ScriptedLLM(), Settings())

    with pytest.raises(StoryError, match="the edited line holds a broken character"):
        await engine.history.edit_message("any-chat", 1, BROKEN)
