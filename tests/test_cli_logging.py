"""Log lines never land inside the story: WARNING and worse by default, kept off the console."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.helpers.bot_process import ROOT, start_bot
from tests.helpers.llm_server import LoopbackLLMServer, RecordedRequest, Reply

MIRA = ROOT / "examples" / "characters" / "mira.toml"


async def test_a_console_sharing_its_terminal_logs_to_a_file(
    llm_server: LoopbackLLMServer, tmp_path: Path
) -> None:
    """stderr is stdout (as in a terminal): a retry warning mid-story goes to storybot.log."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'[llm]\nbase_url = "{llm_server.base_url}"\nmax_retries = 1\n', encoding="utf-8"
    )
    streams: list[RecordedRequest] = []

    def answer(request: RecordedRequest) -> Reply:
        if not request.stream:
            return Reply.text("{}")
        streams.append(request)
        return Reply.status(500) if len(streams) == 1 else Reply.text("Evening, stranger.")

    llm_server.default = answer
    process = await start_bot(
        "--config", str(config), "--db", str(tmp_path / "story.db"), "console", merge_stderr=True
    )
    script = f"/character import {MIRA}\n/chat start host=mira\nHello.\n"
    out, _ = await asyncio.wait_for(process.communicate(script.encode()), 30)

    text = out.decode()
    assert process.returncode == 0, text
    assert "Mira Vale: Evening, stranger." in text.splitlines()
    assert "WARNING" not in text and "retry" not in text
    log = (tmp_path / "storybot.log").read_text(encoding="utf-8")
    assert "WARNING bot.llm.client: LLM call failed" in log


async def test_a_fresh_start_logs_nothing_below_warning(tmp_path: Path) -> None:
    """No "applying schema migration" lines at every start (a subprocess: pytest owns logging)."""
    process = await start_bot("--db", str(tmp_path / "new.db"), "rebuild")
    out, err = await asyncio.wait_for(process.communicate(), 20)

    assert process.returncode == 0
    assert out.decode().startswith("rebuilt projections")
    assert err.decode() == ""
