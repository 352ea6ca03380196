"""The player's line, labelled: dialogue, action, narration and out-of-character spans.

The player's words are never replaced. The classifier model only labels spans of the prose:
a segment whose text is not in the prose (invented, paraphrased) is dropped, and whatever no
kept segment covers is labelled by the rules here (quotes, *asterisks*, OOC markers), so the
segments always spell out exactly what the player wrote. Out-of-character text (``(( … ))``,
``OOC: …``, ``// …``) is recognised by those rules, without the model.

The narrative prompt uses the raw prose, so classification never delays the first token;
its segments are stored on the user_turn for later reading.
"""

from __future__ import annotations

import functools
import logging
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.engine.lenient import usable_items
from bot.engine.macros import Names, resolve_prompt
from bot.engine.models import StoryModels
from bot.llm import Message, Purpose, Task
from bot.store.events import Segment, SegmentKind

log = logging.getLogger(__name__)

_KINDS: tuple[SegmentKind, ...] = ("dialogue", "action", "narration", "ooc")

OOC_PATTERN = re.compile(
    r"\(\(.*?(?:\)\)|\Z)"  # (( … )), or (( to the end when never closed
    r"|^[ \t]*[(\[]\s*ooc\s*[)\]].*?$"  # [OOC] or (OOC) tagging the rest of its line
    r"|^[ \t]*[(\[]\s*ooc\b.*?(?:[)\]]|$)"  # (OOC: …) or [OOC …] opening a line
    r"|^[ \t]*ooc\s*[:\-].*?$"  # OOC: … to the end of its line
    r"|^[ \t]*//.*?$",  # // … to the end of its line
    re.IGNORECASE | re.DOTALL | re.MULTILINE,
)
"""Out-of-character spans. Line-anchored markers only count at a line's start, so a URL's
``//`` or a character named Ooc mid-sentence stays in the story."""

_IN_CHARACTER = re.compile(
    r"\*[^*\n]+\*"  # *an action*
    r'|"[^"\n]*"|“[^”\n]*”|«[^»\n]*»',  # "spoken", “spoken”, «spoken»
)

CLASSIFY_SYSTEM = (
    "You split a role-play player's message into segments. Kinds: dialogue (words spoken "
    "aloud, usually in quotes), action (what the player's character does, often in *asterisks*), "
    "narration (description of the scene), ooc (out-of-character remarks, usually in (( )) or "
    "after 'OOC:'). Copy each segment's text exactly from the message, never reword it. "
    'Answer with JSON only: {"segments": [{"kind": "dialogue", "text": "..."}, ...]}'
)


def out_of_character_spans(prose: str) -> list[tuple[int, int]]:
    """Where ``prose`` speaks out of character, as (start, end) offsets in order."""
    return list(_ooc_spans(prose))


@functools.lru_cache(maxsize=4096)
def _ooc_spans(prose: str) -> tuple[tuple[int, int], ...]:
    # every turn measures each beat of its transcript window again: the same lines each time
    return tuple(m.span() for m in OOC_PATTERN.finditer(prose) if m.group().strip())


def is_out_of_character(prose: str) -> bool:
    """True when all of ``prose`` is out of character (nothing of it belongs in the story)."""
    rest = in_character_text(prose)
    return not rest.strip() and bool(prose.strip())


@functools.lru_cache(maxsize=4096)
def in_character_text(prose: str) -> str:
    """``prose`` without its out-of-character spans (an OOC aside inside a story line)."""
    kept, at = [], 0
    for start, end in _ooc_spans(prose):
        kept.append(prose[at:start])
        at = end
    kept.append(prose[at:])
    return "".join(kept).strip()


def _rule_segments(text: str) -> list[Segment]:
    """Label ``text`` by its markers: quotes are dialogue, *asterisks* action, the rest
    narration (OOC spans are found before, on the whole line)."""
    segments: list[Segment] = []
    at = 0
    for match in _IN_CHARACTER.finditer(text):
        _add(segments, "narration", text[at : match.start()])
        _add(segments, "action" if match.group().startswith("*") else "dialogue", match.group())
        at = match.end()
    _add(segments, "narration", text[at:])
    return segments


def _add(segments: list[Segment], kind: SegmentKind, text: str) -> None:
    if text.strip():
        segments.append(Segment(kind=kind, text=text.strip()))


def fallback_segments(prose: str) -> list[Segment]:
    """Segments without a model, by the rules: OOC markers, quotes, asterisks, narration."""
    segments: list[Segment] = []
    at = 0
    for start, end in out_of_character_spans(prose):
        segments += _rule_segments(prose[at:start])
        _add(segments, "ooc", prose[start:end])
        at = end
    segments += _rule_segments(prose[at:])
    return segments or [Segment(kind="narration", text=prose)]


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


def label_spans(prose: str, answer: ParsedTurn) -> list[Segment]:
    """The classifier's labels on spans of ``prose``; what they do not cover, by the rules.

    A segment counts only if its text is found in the prose after the segments before it
    and does not overlap an OOC span (those are the rules', whatever the model said).
    """
    ooc = out_of_character_spans(prose)
    labelled: list[tuple[int, int, SegmentKind]] = []
    at = 0
    dropped = 0
    for raw in answer.segments:
        text = raw.text.strip()
        start = prose.find(text, at) if text else -1
        if start < 0:
            dropped += 1
            continue
        end = start + len(text)
        if any(s < end and start < e for s, e in ooc):
            continue  # OOC spans are the rules' to label, whatever the model said
        kind: SegmentKind = raw.kind  # type: ignore[assignment]  # validated against _KINDS
        labelled.append((start, end, kind))
        at = end
    if dropped:
        log.info("the classifier gave %d segment(s) not in the player's words; dropped", dropped)
    segments: list[Segment] = []
    at = 0
    for start, end, kind in labelled:
        segments += fallback_segments(prose[at:start]) if prose[at:start].strip() else []
        _add(segments, kind, prose[start:end])
        at = end
    if prose[at:].strip():
        segments += fallback_segments(prose[at:])
    return segments or fallback_segments(prose)


async def parse_turn(models: StoryModels, prose: str, names: Names) -> list[Segment]:
    """Label ``prose``; a malformed or failed answer falls back to the rules.

    The player may write ``{{char}}`` as SillyTavern users do; the model sees the name, and
    the labels are spans of the line as the model saw it.
    """
    if is_out_of_character(prose):
        return fallback_segments(prose)  # no model call: nothing in it is the story's
    messages = resolve_prompt(
        [Message(role="system", content=CLASSIFY_SYSTEM), Message(role="user", content=prose)],
        names,
    )
    parsed = await models.ask_json(
        messages, ParsedTurn, default=ParsedTurn(), purpose=Purpose(Task.CLASSIFY)
    )
    return label_spans(messages[-1].content, parsed)
