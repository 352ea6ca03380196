"""Export a chat (Markdown + log), restore the log into a new database: the same chat."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot.cli import main
from bot.engine import Engine
from bot.llm import ScriptedLLM
from bot.store import Database, EventError, open_db
from bot.store.backup import import_log
from tests.helpers.engine_helpers import (
    RecordingSink,
    make_engine,
    parse_answer,
    seed_story,
    summary_answer,
    threads_answer,
    zero_state,
)
from tests.helpers.events import count_events
from tests.helpers.store_factories import portable, snapshot
from tests.helpers.stores import fresh_store


async def _played_story(path: Path) -> tuple[str, str, str]:
    async with open_db(path) as db:
        engine, mock = make_engine(db)
        await engine.characters.author({"id": "other", "name": "Unrelated", "persona": "p"})
        chat_id = await seed_story(engine)
        mock.script(
            narrate="BotA greets you.",
            classify=parse_answer("hi"),
            state=[zero_state(), zero_state()],
        )
        await engine.turns.take(chat_id, "hi", RecordingSink())
        await _meanwhile_whisper(engine, mock, chat_id)
        markdown, log = await engine.queries.export(chat_id)
        return chat_id, markdown, log


async def test_markdown_has_names_scenes_and_meanwhile_sections(tmp_path: Path) -> None:
    _, markdown, _ = await _played_story(tmp_path / "a.db")

    assert "## Scene 1" in markdown
    assert "**Me:** hi" in markdown and "**BotA:** BotA greets you." in markdown
    assert "### Meanwhile: alone at last" in markdown
    assert "**Narration:** they whisper" in markdown
    assert "> While you were away, secrets." in markdown


async def test_export_then_import_gives_an_identical_chat(tmp_path: Path) -> None:
    chat_id, _, log = await _played_story(tmp_path / "a.db")
    assert all(json.loads(line)["payload"].get("id") != "other" for line in log.splitlines())

    async with open_db(tmp_path / "b.db") as restored:
        result = await import_log(restored, log.splitlines())
        assert result.chat_ids == (chat_id,)
        copy = await snapshot(restored)
    async with open_db(tmp_path / "a.db") as original:
        whole = await snapshot(original)
    # the original, less what the export rightly leaves out (another character)
    assert any("other" in row for rows in whole.values() for row in rows)
    expected = {table: [r for r in rows if "other" not in r] for table, rows in whole.items()}
    assert expected == copy


async def test_an_invalid_log_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    _, _, log = await _played_story(tmp_path / "a.db")
    lines = log.splitlines()
    broken = json.loads(lines[3])
    broken["payload"]["unexpected"] = 1
    lines[3] = json.dumps(broken)

    async with open_db(tmp_path / "b.db") as db:
        with pytest.raises(EventError, match="line 4"):
            await import_log(db, lines)
        assert await count_events(db) == 0
        await import_log(db, log.splitlines())
        with pytest.raises(EventError, match="already used"):
            await import_log(db, log.splitlines())


def test_import_log_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chat_id, _, log = asyncio.run(_played_story(tmp_path / "a.db"))
    (tmp_path / "story.jsonl").write_text(log)
    (tmp_path / "bad.jsonl").write_text("{not json\n")

    ok = main(["--db", str(tmp_path / "c.db"), "import-log", str(tmp_path / "story.jsonl")])
    bad = main(["--db", str(tmp_path / "d.db"), "import-log", str(tmp_path / "bad.jsonl")])

    out = capsys.readouterr()
    assert ok == 0 and chat_id in out.out
    assert bad == 1 and "line 1" in out.err and "Traceback" not in out.err


async def _meanwhile_whisper(engine: Engine, mock: ScriptedLLM, chat_id: str) -> None:
    """A meanwhile scene of one beat ("BotA whispers to BotB."), ended with its digest."""
    await engine.scenes.start_meanwhile(chat_id, thread_id=7, premise="alone at last")
    mock.script(
        narrate="BotA whispers to BotB.",
        classify=parse_answer("n"),
        state=[zero_state(), zero_state()],
    )
    await engine.turns.take(chat_id, "they whisper", RecordingSink())
    mock.script(
        summary=[summary_answer("a"), summary_answer("b")],
        digest=summary_answer("While you were away, secrets."),
        threads=threads_answer(),
    )
    await engine.scenes.end_meanwhile(chat_id)


async def _whole_story(db: Database) -> tuple[str, str, str]:
    """Turns, a meanwhile scene, a regenerate and a rewind, then the export (Markdown, log)."""
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine)
    for line in ("hello", "the lighthouse", "a storm"):
        mock.script(
            narrate=f"BotA answers {line}.",
            classify=parse_answer(line),
            state=[zero_state(), zero_state()],
        )
        await engine.turns.take(chat_id, line, RecordingSink())
    mock.script(narrate="BotA answers again.", state=[zero_state(), zero_state()])
    await engine.history.regenerate(chat_id, RecordingSink())
    kept = [b for b in await engine.queries.beats(chat_id) if b.text == "BotA answers hello."]
    await engine.history.rewind_to_turn(chat_id, kept[0].id)
    await _meanwhile_whisper(engine, mock, chat_id)
    assert mock.unused == {}
    markdown, log = await engine.queries.export(chat_id)
    assert "the lighthouse" not in markdown  # rewound
    return chat_id, markdown, log


@pytest.mark.postgres
@pytest.mark.parametrize("there", [("sqlite", "postgres"), ("postgres", "sqlite")], ids=str)
async def test_a_story_restores_identically_into_the_other_store_and_back(
    there: tuple[str, str],
) -> None:
    source, target = there
    async with fresh_store(source) as original:
        chat_id, markdown, log = await _whole_story(original)
        played = portable(await snapshot(original, ("storm", "whispers")))
    # When the export is restored into the other store
    async with fresh_store(target) as other:
        restored = await import_log(other, log.splitlines())
        assert restored.chat_ids == (chat_id,)
        # Then its tables, recall and export are the original's
        assert portable(await snapshot(other, ("storm", "whispers"))) == played
        engine, _ = make_engine(other)
        assert await engine.queries.export(chat_id) == (markdown, log)
        hits = await engine.queries.own_memories(chat_id, "bot_a", query="whispers")
        assert hits and all("whispers" in m.text.lower() for m in hits)
    # and restored back into the first store, it is the same story again
    async with fresh_store(source) as back:
        await import_log(back, log.splitlines())
        assert portable(await snapshot(back, ("storm", "whispers"))) == played
