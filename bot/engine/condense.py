"""Long scenes made to fit a prompt: chunks condensed into summaries, as often as it takes.

A scene-close summary, a digest or the story threads read a scene's lines. When those fit the
prompt budget they are sent as they are (one call, as ever). When they do not, the lines are cut
into chunks that each fit, every chunk is condensed into a short summary (each one a prompt
within the budget), and the summaries take the lines' place, again until they fit: the largest
prompt a 10,000-beat scene sends is no bigger than a 20-beat one's. Whose lines go in is the
caller's choice, so a witness's summary still reads only what that witness saw.
"""

from __future__ import annotations

import asyncio
import logging

from pydantic import BaseModel, ConfigDict

from bot.engine.macros import Names, resolve_prompt
from bot.engine.models import StoryModels
from bot.engine.prompts import estimate_tokens
from bot.llm import Message, Purpose, Task

log = logging.getLogger(__name__)

PROMPT_OVERHEAD_TOKENS = 200
"""Room left in the budget for the system message and the JSON answer's framing."""
MAX_ROUNDS = 6
"""Condensing rounds before the lines are clipped to fit (an LLM that will not shorten)."""


class Condensed(BaseModel):
    model_config = ConfigDict(extra="ignore")
    summary: str = ""


def tokens_of(lines: list[str]) -> int:
    return sum(estimate_tokens(line) + 1 for line in lines)


def chunks_of(lines: list[str], budget: int) -> list[list[str]]:
    """Consecutive runs of ``lines`` of at most ``budget`` tokens each (a longer line alone)."""
    chunks: list[list[str]] = []
    current: list[str] = []
    size = 0
    for line in lines:
        cost = estimate_tokens(line) + 1
        if current and size + cost > budget:
            chunks.append(current)
            current, size = [], 0
        current.append(_clip(line, budget))
        size += min(cost, budget)
    if current:
        chunks.append(current)
    return chunks


def _clip(line: str, budget: int) -> str:
    limit = max(1, budget - 1) * 4
    return line if len(line) <= limit else line[: limit - 1] + "…"


async def fit_lines(
    models: StoryModels, lines: list[str], *, budget_tokens: int, whose: str, names: Names
) -> list[str]:
    """``lines`` as they are if they fit ``budget_tokens``, else condensed until they do.

    ``whose`` says from whose point of view a part is condensed ("Mira's memories", "a scene").
    """
    budget = max(100, budget_tokens - PROMPT_OVERHEAD_TOKENS)
    for _ in range(MAX_ROUNDS):
        if tokens_of(lines) <= budget:
            return lines
        chunks = chunks_of(lines, budget)
        condensed = list(
            await asyncio.gather(*(_condense(models, c, whose=whose, names=names) for c in chunks))
        )
        if tokens_of(condensed) >= tokens_of(lines):
            break  # the summaries are no shorter: stop asking
        lines = condensed
    if tokens_of(lines) <= budget:
        return lines
    log.warning("condensed lines still exceed the prompt budget; keeping the latest that fit")
    return chunks_of(lines, budget)[-1]


async def _condense(models: StoryModels, lines: list[str], *, whose: str, names: Names) -> str:
    prompt = [
        Message(
            role="system",
            content=(
                f"These lines are one part of a long scene, from {whose}. Condense them into a "
                "short paragraph that keeps who did and said what, what was learned, promised "
                'or left open. Answer with JSON only: {"summary": "..."}'
            ),
        ),
        Message(role="user", content="\n".join(lines)),
    ]
    answer = await models.ask_json(
        resolve_prompt(prompt, names),
        Condensed,
        default=Condensed(),
        purpose=Purpose(Task.CONDENSE),
    )
    return answer.summary.strip()[:2000] or _clip(" ".join(lines), 300)
