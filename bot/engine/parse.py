"""parse_turn: the classifier model splits the player's prose into typed segments.

The narrative prompt uses the raw prose, so classification runs beside the stream and never
delays the first token; its segments are stored on the user_turn for later reading.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.engine.lenient import usable_items
from bot.engine.macros import Names, resolve_prompt
from bot.engine.models import StoryModels
from bot.llm import Message
from bot.store.events import Segment, SegmentKind

_OOC = re.compile(r"^\s*(\(\(.*\)\)|\(?ooc[:)].*)\s*$", re.IGNORECASE | re.DOTALL)
_KINDS: tuple[SegmentKind, ...] = ("dialogue", "action", "narration", "ooc")

CLASSIFY_SYSTEM = (
    "You split a role-play player's message into segments. Kinds: dialogue (words spoken "
    "aloud, usually in quotes), action (what the player's character does, often in *asterisks*), "
    "narration (description of the scene), ooc (out-of-character remarks, usually in (( )) or "
    "after 'OOC:'). Answer with JSON only: "
    '{"segments": [{"kind": "dialogue", "text": "..."}, ...]} keeping the player\'s words.'
)


class _RawSegment(BaseModel):
    model_config = ConfigDict(extra="ignore")
    kind: str
    text: str = Field(max_length=20_000)

    @field_validator("kind")
    @classmethod
    def _known(cls, value: str) -> str:
        kind = value.strip().lower().replace("-", "").replace("_", "")
        kind = "ooc" if kind in {"ooc", "outofcharacter"} else kind
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {', '.join(_KINDS)}")
        return kind


class ParsedTurn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    segments: list[_RawSegment] = Field(default_factory=list)

    @field_validator("segments", mode="before")
    @classmethod
    def _usable(cls, value: object) -> list[_RawSegment]:
        return usable_items(value, _RawSegment)


def fallback_segments(prose: str) -> list[Segment]:
    """Segments without a model: the whole prose as one segment, OOC when it looks like it."""
    kind: SegmentKind = "ooc" if _OOC.match(prose) else "narration"
    return [Segment(kind=kind, text=prose)]


async def parse_turn(models: StoryModels, prose: str, names: Names) -> list[Segment]:
    """Classify ``prose``; a malformed or failed answer falls back to one segment.

    The player may write ``{{char}}`` as SillyTavern users do; the model sees the name.
    """
    messages = [
        Message(role="system", content=CLASSIFY_SYSTEM),
        Message(role="user", content=prose),
    ]
    parsed = await models.ask_json(
        resolve_prompt(messages, names),
        ParsedTurn,
        default=ParsedTurn(),
    )
    segments = [
        Segment.model_validate({"kind": s.kind, "text": s.text})
        for s in parsed.segments
        if s.text.strip()
    ]
    return segments or fallback_segments(prose)
