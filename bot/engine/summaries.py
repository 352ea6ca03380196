"""Scene-close writing: per-POV summaries, the meanwhile digest, and story threads."""

from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.engine.condense import fit_lines
from bot.engine.lenient import usable_items
from bot.engine.macros import Names, resolve_prompt
from bot.engine.models import StoryModels
from bot.llm import Message, Purpose, Task

log = logging.getLogger(__name__)


class SceneSummary(BaseModel):
    model_config = ConfigDict(extra="ignore")
    summary: str = ""
    knowledge_facts: list[str] = Field(default_factory=list)
    relationship_summary: str = ""

    @field_validator("summary", "relationship_summary", mode="after")
    @classmethod
    def _bounded(cls, value: str) -> str:
        return value.strip()[:4000]

    @field_validator("knowledge_facts", mode="before")
    @classmethod
    def _facts(cls, value: object) -> list[str]:
        items = value if isinstance(value, list) else []
        return [str(item).strip()[:300] for item in items if str(item).strip()][:10]


class StoryThread(BaseModel):
    model_config = ConfigDict(extra="ignore")
    title: str = Field(min_length=1)
    summary: str = ""

    @field_validator("title", mode="after")
    @classmethod
    def _short_title(cls, value: str) -> str:
        return value.strip()[:200]

    @field_validator("summary", mode="after")
    @classmethod
    def _short_summary(cls, value: str) -> str:
        return value.strip()[:2000]


class StoryThreads(BaseModel):
    model_config = ConfigDict(extra="ignore")
    threads: list[StoryThread] = Field(default_factory=list)

    @field_validator("threads", mode="before")
    @classmethod
    def _usable(cls, value: object) -> list[StoryThread]:
        return usable_items(value, StoryThread)[:10]


async def summarize_pov(
    models: StoryModels,
    *,
    owner_id: str,
    owner_name: str,
    you_name: str,
    lines: list[str],
    budget_tokens: int,
) -> SceneSummary:
    """What ``owner_name`` makes of a scene it witnessed, from its own lines only (condensed
    first, from those same lines, when they do not fit ``budget_tokens``)."""
    names = Names(char=owner_name, user=you_name)
    lines = await fit_lines(
        models, lines, budget_tokens=budget_tokens, whose=f"{owner_name}'s memories", names=names
    )
    prompt = [
        Message(
            role="system",
            content=(
                f"You write {owner_name}'s own memory of a scene, in the third person, from "
                f"{owner_name}'s point of view only: what they saw, heard, felt and now believe. "
                'Answer with JSON only: {"summary": "...", "knowledge_facts": ["..."], '
                '"relationship_summary": "..."}'
            ),
        ),
        Message(role="user", content="\n".join(lines) or "(nothing happened)"),
    ]
    return await models.ask_json(
        resolve_prompt(prompt, names),
        SceneSummary,
        default=SceneSummary(),
        purpose=Purpose(Task.SUMMARY, owner_id),
    )


async def write_digest(
    models: StoryModels, *, names: Names, lines: list[str], budget_tokens: int
) -> SceneSummary:
    """The "While you were away…" digest of a meanwhile scene, for the player."""
    lines = await fit_lines(
        models, lines, budget_tokens=budget_tokens, whose="a scene", names=names
    )
    prompt = [
        Message(
            role="system",
            content=(
                f"Summarize, in two to four sentences of prose for {names.user} (who was not "
                "there), what happened in this scene. Start with 'While you were away'. Answer "
                'with JSON only: {"summary": "..."}'
            ),
        ),
        Message(role="user", content="\n".join(lines) or "(nothing happened)"),
    ]
    return await models.ask_json(
        resolve_prompt(prompt, names),
        SceneSummary,
        default=SceneSummary(),
        purpose=Purpose(Task.DIGEST),
    )


async def detect_threads(
    models: StoryModels, *, names: Names, lines: list[str], budget_tokens: int
) -> list[StoryThread]:
    """Plot threads a scene opened or moved on; never fails a close (the caller swallows)."""
    lines = await fit_lines(
        models, lines, budget_tokens=budget_tokens, whose="a scene", names=names
    )
    prompt = [
        Message(
            role="system",
            content=(
                "List the open plot threads (unresolved questions, promises, conflicts) in this "
                'scene. Answer with JSON only: {"threads": [{"title": "...", "summary": "..."}]}'
            ),
        ),
        Message(role="user", content="\n".join(lines) or "(nothing happened)"),
    ]
    answer = await models.ask_json(
        resolve_prompt(prompt, names),
        StoryThreads,
        default=StoryThreads(),
        purpose=Purpose(Task.THREADS),
    )
    return answer.threads
