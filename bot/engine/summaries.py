"""Scene-close writing: per-POV summaries, the meanwhile digest, and story threads."""

from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict, Field

from bot.engine.models import StoryModels
from bot.llm import Message

log = logging.getLogger(__name__)


class SceneSummary(BaseModel):
    model_config = ConfigDict(extra="ignore")
    summary: str = Field(default="", max_length=4000)
    knowledge_facts: list[str] = Field(default_factory=list)
    relationship_summary: str = Field(default="", max_length=2000)


class StoryThread(BaseModel):
    model_config = ConfigDict(extra="ignore")
    title: str = Field(max_length=200)
    summary: str = Field(default="", max_length=2000)


class StoryThreads(BaseModel):
    model_config = ConfigDict(extra="ignore")
    threads: list[StoryThread] = Field(default_factory=list, max_length=10)


async def summarize_pov(models: StoryModels, *, owner_name: str, lines: list[str]) -> SceneSummary:
    """What ``owner_name`` makes of a scene it witnessed, from its own lines only."""
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
    return await models.ask_json(prompt, SceneSummary, default=SceneSummary())


async def write_digest(models: StoryModels, *, you_name: str, lines: list[str]) -> SceneSummary:
    """The "While you were away…" digest of a meanwhile scene, for the player."""
    prompt = [
        Message(
            role="system",
            content=(
                f"Summarize, in two to four sentences of prose for {you_name} (who was not there), "
                "what happened in this scene. Start with 'While you were away'. Answer with JSON "
                'only: {"summary": "..."}'
            ),
        ),
        Message(role="user", content="\n".join(lines) or "(nothing happened)"),
    ]
    return await models.ask_json(prompt, SceneSummary, default=SceneSummary())


async def detect_threads(models: StoryModels, *, lines: list[str]) -> list[StoryThread]:
    """Plot threads a scene opened or moved on; never fails a close (the caller swallows)."""
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
    answer = await models.ask_json(prompt, StoryThreads, default=StoryThreads())
    return answer.threads
