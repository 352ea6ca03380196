"""The console: scripted stories end to end over HTTP, and its commands one by one.

End to end, the console talks to the loopback OpenAI-compatible server (tests/llm_server.py)
through the real ``OpenAICompatibleClient``: via ``bot.cli.main`` with ``--script`` and via
``python -m bot … console`` with the script piped to stdin.
"""

from __future__ import annotations

import asyncio
import io
import re
import sys
from pathlib import Path

import pytest

from bot import cli
from bot.config import Settings, StorageSettings
from bot.console import play
from bot.engine import Engine
from bot.llm import ScriptedLLM
from bot.store import Database, open_db, open_store
from bot.store.events import AssistantTurn, BotAuthored
from bot.store.views import Views
from tests.helpers.engine_helpers import character, parse_answer, zero_state
from tests.helpers.events import log_in_file, then_events
from tests.helpers.llm_server import LoopbackLLMServer
from tests.helpers.stores import fresh_schema
from tests.helpers.story_replies import DIGEST, THREAD, story_reply

ROOT = Path(__file__).resolve().parents[1]
CHARACTERS = ROOT / "examples" / "characters"

SCRIPT = f"""\
# a whole evening at the Lantern
/character import {CHARACTERS / "mira.toml"}
/character import {CHARACTERS / "tomas.toml"}
/you set name=Ash pronouns=they/them persona="A courier who arrives late."
/chat start host=mira guest=tomas place="the Lantern" weather=rain
I shake the rain off my coat and sit at the counter.
/frobnicate the kettle
Tomás, what happened to you tonight?
/meanwhile start Mira and Tomás close up the café
They stack the chairs while the rain eases.
/meanwhile end
/status
/memories mira
/relationship mira you
/scene close
"""


@pytest.fixture
def story_server(llm_server: LoopbackLLMServer) -> LoopbackLLMServer:
    llm_server.default = story_reply
    return llm_server


def _config(tmp_path: Path, server: LoopbackLLMServer) -> Path:
    path = tmp_path / "storybot.toml"
    path.write_text(
        f"""\
[llm]
base_url = "{server.base_url}"
api_key = "sk-loopback"
max_retries = 0

[llm.timeouts]
connect = 5.0
first_token = 10.0
idle = 10.0
total = 30.0
""",
        encoding="utf-8",
    )
    return path


async def _kinds(db_path: Path) -> set[str]:
    return {event.kind for event in await log_in_file(db_path)}


def _check_story_output(out: str) -> None:
    lines = out.splitlines()
    assert "imported Mira Vale as mira" in lines
    assert "imported Tomás Reyes as tomas" in lines
    assert "you are Ash (they/them)" in lines
    assert any(re.fullmatch(r"\(story console-\w+ begins at the Lantern\)", x) for x in lines)
    assert any(x.startswith("Mira Vale: *Rain ticks against the Lantern") for x in lines)
    # replies stream after the speaker's name: the host by default, the guest when addressed
    replies = [x for x in lines if x.endswith('"Go on, I\'m listening."') and x[0] != "-"]
    assert replies == [
        'Mira Vale: *Mira nods slowly.* "Go on, I\'m listening."',
        'Tomás Reyes: *Tomás nods slowly.* "Go on, I\'m listening."',
        'Mira Vale: *Mira nods slowly.* "Go on, I\'m listening."',  # the meanwhile beat
    ]
    assert "error: unknown command /frobnicate; try /help" in lines
    assert "(meanwhile… your lines now steer the scene without you)" in lines
    assert DIGEST in lines
    # of the meanwhile scene's end you read the digest only; its threads are the characters'
    assert lines.count(f"(story thread: {THREAD})") == 1
    closes = next(i for i, x in enumerate(lines) if re.fullmatch(r"\(scene \d+ closes.*", x))
    assert lines.index(f"(story thread: {THREAD})") == closes + 1
    assert any(x.startswith("Day 1, ") and x.endswith("— the Lantern, rain") for x in lines)
    assert "  Ash" in lines and "  Mira Vale" in lines and "  Tomás Reyes" in lines
    assert "- A long, wet evening." in lines  # mira's memory of the meanwhile scene
    assert "mira → you: affinity 56, trust 52" in lines  # two beats with Ash, +3/+1 each
    assert any(re.fullmatch(r"\(scene \d+ closes; scene \d+ begins\)", x) for x in lines)
    # the error in the middle did not stop the story: everything after it ran
    assert lines.index("error: unknown command /frobnicate; try /help") < lines.index(DIGEST)


async def _check_story_log(db_path: Path) -> None:
    assert {
        "bot_authored",
        "you_authored",
        "chat_created",
        "scene_opened",
        "turn_started",
        "user_turn",
        "assistant_turn",
        "memory_written",
        "edge_update",
        "meanwhile_scene_started",
        "meanwhile_scene_closed",
        "digest_written",
        "manual_edit",
        "story_thread_detected",
        "scene_closed",
    } <= await _kinds(db_path)
    async with open_db(db_path, read_only=True) as db:
        open_turns = await Views(db).open_turns()
        replies = await then_events(db, AssistantTurn)
    assert open_turns == []
    assert len(replies) == 4  # the kickoff and three streamed beats


def _check_requests(server: LoopbackLLMServer) -> None:
    streamed = [r for r in server.requests if r.stream]
    assert len(streamed) == 3
    assert all(r.headers.get("authorization") == "Bearer sk-loopback" for r in server.requests)
    structured = [r for r in server.requests if not r.stream]
    assert all(r.json.get("response_format") == {"type": "json_object"} for r in structured)


async def test_cli_main_plays_a_script_end_to_end(
    story_server: LoopbackLLMServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "evening.txt"
    script.write_text(SCRIPT, encoding="utf-8")
    db_path = tmp_path / "story.db"
    argv = ["--config", str(_config(tmp_path, story_server)), "--db", str(db_path)]

    # main() runs its own event loop, so it runs in a thread while this loop serves the LLM
    code = await asyncio.wait_for(
        asyncio.to_thread(cli.main, [*argv, "console", "--script", str(script)]), 30
    )

    captured = capsys.readouterr()
    assert code == 0, captured.err
    _check_story_output(captured.out)
    await _check_story_log(db_path)
    _check_requests(story_server)


async def test_python_m_bot_console_plays_piped_stdin(
    story_server: LoopbackLLMServer, tmp_path: Path
) -> None:
    db_path = tmp_path / "story.db"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "--config",
        str(_config(tmp_path, story_server)),
        "--db",
        str(db_path),
        "console",
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(SCRIPT.encode()), 30)

    assert process.returncode == 0, stderr.decode()
    out = stdout.decode()
    assert "storybot console" not in out  # a pipe is not a terminal: no banner, no prompts
    _check_story_output(out)
    await _check_story_log(db_path)
    _check_requests(story_server)


async def test_quit_ends_the_console_while_stdin_stays_open(tmp_path: Path) -> None:
    """/quit leaves at once, even though the input pipe is still open (a waiting terminal)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "--db",
        str(tmp_path / "story.db"),
        "console",
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    process.stdin.write(b"/quit\n")
    await process.stdin.drain()
    try:
        code = await asyncio.wait_for(process.wait(), 10)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        process.stdin.close()
    assert code == 0


# -- commands, with the scripted mock ---------------------------------------------------------


async def _play(engine: Engine, script: str, *, interactive: bool = False) -> str:
    out = io.StringIO()
    assert await play(engine, io.StringIO(script), out, interactive=interactive) == 0
    return out.getvalue()


async def _engine_with_cast(db: Database, **script: str) -> tuple[Engine, ScriptedLLM]:
    mock = ScriptedLLM(**script)
    engine = Engine(db, mock, Settings())
    await engine.characters.author(character("mira", "Mira Vale", kickoff_prose=""))
    return engine, mock


async def test_an_unknown_command_is_an_error_and_play_goes_on(db: Database) -> None:
    engine, _ = await _engine_with_cast(db)

    out = await _play(engine, "/dance wildly\n/character list\n")

    assert out.splitlines() == ["error: unknown command /dance; try /help", "mira: Mira Vale"]


async def test_chat_start_without_a_host_is_a_usage_error(db: Database) -> None:
    engine, _ = await _engine_with_cast(db)

    out = await _play(engine, '/chat start place="the Lantern"\n/chat start host\n')

    assert out.splitlines() == [
        "error: /chat start needs host=ID",
        "error: expected key=value with key one of anchor, greeting, guest, host, place, time, "
        "weather; got 'host'",
    ]
    assert await engine.queries.chat_in_channel(0) is None


async def test_a_turn_before_any_story_is_an_error(db: Database) -> None:
    engine, mock = await _engine_with_cast(db)

    out = await _play(engine, "I wave at the barkeep.\n/status\n")

    assert out.splitlines() == ["error: no story yet: /chat start host=ID first"] * 2
    assert mock.calls == []


async def test_a_turn_streams_after_the_speakers_name(db: Database) -> None:
    engine, mock = await _engine_with_cast(
        db, narrate="Evening. What'll it be?", classify=parse_answer("hello"), state=zero_state()
    )

    out = await _play(engine, "/chat start host=mira\nhello\n")

    assert out.splitlines()[1:] == ["Mira Vale: Evening. What'll it be?"]
    assert [c.kind for c in mock.calls] == ["stream", "complete", "complete"]
    assert mock.unused == {}


async def test_quit_stops_reading_further_lines(db: Database) -> None:
    engine, mock = await _engine_with_cast(db)

    out = await _play(engine, "/chat start host=mira\n/quit\n/help\nhello there\n")

    assert "Commands:" not in out and "error" not in out
    assert mock.calls == []  # the turn after /quit never ran
    assert out.splitlines() == [
        next(x for x in out.splitlines() if x.startswith("(story console-"))
    ]


async def test_an_interactive_console_greets_prompts_and_resumes_its_story(db: Database) -> None:
    engine, _ = await _engine_with_cast(db)
    await _play(engine, "/chat start host=mira\n")

    out = await _play(engine, "/quit\n", interactive=True)

    first, second = out.splitlines()[:2]
    assert re.fullmatch(r"\(resuming story console-\w+ at somewhere\)", first)
    assert second.startswith("storybot console")
    assert out.endswith("> ")


# -- whose characters: the console's own, or a server's ----------------------------------------


async def test_console_characters_are_its_own_and_it_says_so(db: Database) -> None:
    engine = Engine(db, ScriptedLLM(), Settings())

    out = await _play(engine, f"/character import {CHARACTERS / 'mira.toml'}\n")

    assert "the console's own: no Discord server sees them" in out
    assert "--guild SERVER_ID" in out
    assert [c.id for c in await engine.characters.all(0)] == ["mira"]


def test_console_guild_prepares_characters_for_that_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "prepare.txt"
    script.write_text(
        f"/character import {CHARACTERS / 'mira.toml'}\n/you set name=Ash\n/character list\n"
    )
    db_path = tmp_path / "story.db"
    code = cli.main(["--db", str(db_path), "console", "--guild", "4242", "--script", str(script)])
    out = capsys.readouterr().out
    assert code == 0
    assert "console's own" not in out
    assert out.splitlines()[-1] == "mira: Mira Vale"
    authored = asyncio.run(_authored(db_path))
    assert [(c.guild_id, c.id) for c in authored] == [(4242, "mira")]


async def _authored(db_path: Path) -> list[BotAuthored]:
    async with open_db(db_path, read_only=True) as db:
        return await then_events(db, BotAuthored)


def _readme_console_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### The console", 1)[1]
    return section.split("```text\n", 1)[1].split("```", 1)[0]


async def _play_the_readmes_example(
    server: LoopbackLLMServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], db: str
) -> None:
    """The README's console script, whole: characters, turns, meanwhile, regenerate, status,
    rewind, export; it ends well, with no error line and the story exported."""
    script = tmp_path / "readme.txt"
    example = _readme_console_example()
    script.write_text(example.replace("examples/", f"{ROOT}/examples/"), encoding="utf-8")
    argv = ["--config", str(_config(tmp_path, server)), "--db", db]

    code = await asyncio.wait_for(
        asyncio.to_thread(cli.main, [*argv, "console", "--script", str(script)]), 60
    )

    out = capsys.readouterr().out
    assert code == 0
    assert [line for line in out.splitlines() if line.startswith("error")] == []
    assert "/rewind" in example and "(rewound " in out
    assert (tmp_path / "my-story.md").exists()


async def test_the_readmes_console_example_plays_without_an_error(
    story_server: LoopbackLLMServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 13: its /rewind, after a meanwhile scene, was refused."""
    monkeypatch.chdir(tmp_path)  # /export writes beside the script
    await _play_the_readmes_example(story_server, tmp_path, capsys, str(tmp_path / "s.db"))


@pytest.mark.postgres
async def test_the_readmes_console_example_plays_on_postgresql(
    story_server: LoopbackLLMServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    postgres_url: str,
) -> None:
    """Issue 16: the whole story in the console with the story kept in PostgreSQL."""
    monkeypatch.chdir(tmp_path)
    async with fresh_schema(postgres_url) as schema:
        store = f"{postgres_url}?search_path={schema}"
        await _play_the_readmes_example(story_server, tmp_path, capsys, store)
        async with open_store(StorageSettings(url=store)) as db:
            assert len(await then_events(db, AssistantTurn)) >= 3  # the story is in PostgreSQL


async def test_a_rewind_count_past_the_stores_integers_is_refused_and_play_goes_on(
    db: Database,
) -> None:
    engine, _ = await _engine_with_cast(db)

    out = await _play(
        engine, "/chat start host=mira\n/rewind 99999999999999999999\n/character list\n"
    )

    assert out.splitlines()[1:] == ["error: use /rewind [N] with N ≥ 1", "mira: Mira Vale"]


async def test_a_rewind_count_that_is_no_plain_number_is_a_usage_error(db: Database) -> None:
    """``"²".isdigit()`` is true, but ``int("²")`` raises: it must not end the console."""
    engine, _ = await _engine_with_cast(db)

    out = await _play(engine, "/chat start host=mira\n/rewind ²\n/character list\n")

    assert out.splitlines()[1:] == ["error: use /rewind [N] with N ≥ 1", "mira: Mira Vale"]


async def test_counts_that_are_no_plain_number_are_usage_errors_everywhere(db: Database) -> None:
    """The same ``isdigit`` trap in every console command that takes a count."""
    engine, _ = await _engine_with_cast(db)
    script = (
        "/chat start host=mira greeting=²\n"
        "/chat start host=mira\n"
        "/lore remove ²\n"
        "/lore remove 99999999999999999999\n"
        "/character list\n"
    )

    out = await _play(engine, script)

    lines = out.splitlines()
    assert lines[0].startswith("error: greeting=N takes a number")
    assert len([line for line in lines if line.startswith("error: use /lore")]) == 2
    assert lines[-1] == "mira: Mira Vale"
    assert not any("Traceback" in line or "Overflow" in line for line in lines)
