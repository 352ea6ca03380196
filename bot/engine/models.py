"""Which model, sampling and priority each kind of LLM call uses, from settings, in one place."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TypeVar

from pydantic import BaseModel

from bot.config import LLMSettings, SamplingSettings
from bot.llm import LLMClient, Message, Priority, Purpose, Task, complete_json

M = TypeVar("M", bound=BaseModel)


def _sampling(s: SamplingSettings) -> dict[str, object]:
    return {"temperature": s.temperature, "top_p": s.top_p, "max_tokens": s.max_tokens}


class StoryModels:
    """The engine's only door to the LLM: narration streams, everything else asks for JSON."""

    def __init__(self, llm: LLMClient, settings: LLMSettings) -> None:
        self.llm = llm
        self.settings = settings

    def narrate(
        self, messages: Sequence[Message], *, speaker: str, stop: list[str] | None = None
    ) -> AsyncIterator[str]:
        """``speaker``'s streamed reply; ``stop`` (most important first) ends it where the model
        starts speaking for another, as many of them as the server takes (``max_stop_sequences``).
        """
        params = _sampling(self.settings.narrative_sampling)
        if stop and self.settings.max_stop_sequences:
            params["stop"] = stop[: self.settings.max_stop_sequences]
        return self.llm.stream(
            messages,
            model=self.settings.narrative_model,
            priority=Priority.NARRATIVE,
            purpose=Purpose(Task.NARRATE, speaker),
            **params,
        )

    async def ask_json(
        self, messages: Sequence[Message], schema: type[M], *, default: M, purpose: Purpose
    ) -> M:
        """A background structured call for ``purpose``: a malformed answer or a failure gives
        ``default``."""
        return await complete_json(
            self.llm,
            messages,
            schema,
            model=self.settings.classifier_model,
            default=default,
            use_response_format=self.settings.use_response_format,
            priority=Priority.BACKGROUND,
            purpose=purpose,
            **_sampling(self.settings.classifier_sampling),
        )
