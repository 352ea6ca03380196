"""``run_discord`` stopped just before Discord: what it would serve with (issue 16 tests)."""

from __future__ import annotations

import pytest

from bot import app
from bot.config import Settings
from bot.engine import Engine
from bot.llm import OpenAICompatibleClient


def capture_serving(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Filled by ``await app.run_discord(settings)``: its LLM ``gate``, the engine's ``lock``."""
    seen: dict[str, object] = {}

    async def serve(settings: Settings, engine: Engine, token: str) -> int:
        llm = engine.ctx.models.llm
        assert isinstance(llm, OpenAICompatibleClient)
        seen["gate"], seen["lock"] = llm.gate, engine.ctx.queues._across
        return 0

    monkeypatch.setattr(app, "_serve", serve)
    return seen
