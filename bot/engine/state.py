"""After a beat: each present character's view of every other present entity moves.

One structured call per present character (not one per pair) returns its deltas toward each
other present entity and, when the beat changed it, what it is now doing. Every directed pair
gets exactly one ``edge_update``, clamped here to a per-beat step and by the projection to 0..100.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.engine.lenient import usable_items
from bot.engine.macros import Names, resolve_prompt
from bot.engine.models import StoryModels
from bot.llm import Message, Purpose, Task
from bot.store.events import ActivityAction, ActivityChange, EdgeUpdate, Payload
from bot.store.views import Activity, Relationship

log = logging.getLogger(__name__)

MAX_STEP = 10
"""The most one beat may move affinity or trust, so one odd answer cannot upend a relationship."""


def _to_int(value: object) -> int:
    try:
        return round(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0


class PairUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    target: str = ""
    target_id: str = ""
    affinity_delta: int = 0
    trust_delta: int = 0
    knowledge_facts: list[str] = Field(default_factory=list)

    @field_validator("affinity_delta", "trust_delta", mode="before")
    @classmethod
    def _number(cls, value: object) -> int:
        return _to_int(value)

    @field_validator("knowledge_facts", mode="before")
    @classmethod
    def _facts(cls, value: object) -> list[str]:
        if isinstance(value, str):
            return [value] if value.strip() else []
        if isinstance(value, list):
            return [str(v)[:300] for v in value if str(v).strip()][:5]
        return []


class ActivityUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    posture: str = Field(default="", max_length=200)
    verb: str = Field(default="", max_length=200)
    attention: str = Field(default="", max_length=200)
    holding: list[str] = Field(default_factory=list, max_length=10)


class StateUpdate(BaseModel):
    """Tolerant of extra keys and of the flat form that names one pair (its deltas at the top)."""

    model_config = ConfigDict(extra="ignore")
    relationships: list[PairUpdate] = Field(default_factory=list)
    affinity_delta: int | None = None
    trust_delta: int | None = None
    knowledge_facts: list[str] = Field(default_factory=list)
    activity: ActivityUpdate | None = None

    @field_validator("affinity_delta", "trust_delta", mode="before")
    @classmethod
    def _number(cls, value: object) -> int | None:
        return None if value is None else _to_int(value)

    @model_validator(mode="before")
    @classmethod
    def _named_pairs(cls, value: object) -> object:
        """Small models key pairs by name ({"MiraVale": {...}}), at the top level or under
        "relationships"; both become the list form, the key as the target."""
        if not isinstance(value, dict):
            return value
        data = dict(value)
        pairs = data.get("relationships")
        if isinstance(pairs, dict):
            data["relationships"] = _keyed_pairs(pairs)
        elif pairs is None:
            known = set(cls.model_fields)
            keyed = {k: v for k, v in data.items() if k not in known and isinstance(v, dict)}
            if keyed:
                data["relationships"] = _keyed_pairs(keyed)
        return data

    @field_validator("relationships", mode="before")
    @classmethod
    def _usable(cls, value: object) -> list[PairUpdate]:
        return usable_items(value, PairUpdate)

    @field_validator("activity", mode="before")
    @classmethod
    def _activity(cls, value: object) -> ActivityUpdate | None:
        usable = usable_items([value], ActivityUpdate) if isinstance(value, dict) else []
        return usable[0] if usable else None


def _keyed_pairs(pairs: Mapping[str, object]) -> list[object]:
    return [
        {"target": str(key), **value} if isinstance(value, dict) else value
        for key, value in pairs.items()
    ]


def _step(delta: int) -> int:
    return max(-MAX_STEP, min(MAX_STEP, delta))


STATE_ANSWER = (
    "Answer with JSON only: "
    '{"relationships": [{"target_id": "...", "affinity_delta": 0, "trust_delta": 0, '
    '"knowledge_facts": []}], "activity": null or {"posture": "...", "verb": "...", '
    '"attention": "...", "holding": []}} (activity: what they are doing at the end of this '
    "moment, or null if it does not show)."
)


def state_prompt(
    *,
    source_name: str,
    user_name: str,
    persona: str,
    beat_text: str,
    targets: list[tuple[str, str, Relationship]],
) -> list[Message]:
    """The state-update request for one character: its own view, nobody else's.

    What stays the same for this character (who it is, the rules, the answer's shape) comes
    first, so a server's prefix cache reuses it; the beat and today's numbers come last. What
    the character was doing is not told: an answer drawn from this beat alone can be derived
    again from it alone when its words are edited (nothing older is carried on).
    """
    stable = (
        f"You track the inner life of {source_name}. {persona}"[:2000]
        + f"\nAfter each moment of the story, say from {source_name}'s point of view only how "
        f"their feelings moved toward each person named. Deltas are small integers from "
        f"-{MAX_STEP} to {MAX_STEP}, 0 when nothing changed. knowledge_facts are new facts "
        f"{source_name} learned about that person.\n" + STATE_ANSWER
    )
    lines = [
        f"{source_name} just lived this moment of a story:",
        beat_text,
        "",
        "Feelings now toward: "
        + "; ".join(
            f"{name} (id {tid}, affinity {rel.affinity}/100, trust {rel.trust}/100)"
            for tid, name, rel in targets
        )
        + ".",
    ]
    messages = [
        Message(role="system", content=stable),
        Message(role="user", content="\n".join(lines)),
    ]
    return resolve_prompt(messages, Names(char=source_name, user=user_name))


async def ask_state_update(
    models: StoryModels,
    *,
    chat_id: str,
    source_id: str,
    source_name: str,
    user_name: str,
    persona: str,
    beat_text: str,
    targets: list[tuple[str, str, Relationship]],
    activity: Activity | None,
    beat_id: int,
    aliases: Mapping[str, Sequence[str]] | None = None,
) -> list[Payload]:
    """One call for ``source_id``; returns one edge_update per target, plus an activity change."""
    answer = await models.ask_json(
        state_prompt(
            source_name=source_name,
            user_name=user_name,
            persona=persona,
            beat_text=beat_text,
            targets=targets,
        ),
        StateUpdate,
        default=StateUpdate(),
        purpose=Purpose(Task.STATE, source_id),
    )
    by_target = _match_targets(answer, targets, aliases)
    events: list[Payload] = []
    for target_id, _name, _rel in targets:
        pair = by_target.get(target_id, PairUpdate())
        events.append(
            EdgeUpdate(
                source_id=source_id,
                target_id=target_id,
                chat_id=chat_id,
                affinity_delta=_step(pair.affinity_delta),
                trust_delta=_step(pair.trust_delta),
                knowledge_facts=pair.knowledge_facts,
                beat_id=beat_id,
            )
        )
    change = answer.activity
    if change is not None and change.verb and (activity is None or change.verb != activity.verb):
        events.append(
            ActivityChange(
                chat_id=chat_id,
                entity_id=source_id,
                posture=change.posture,
                action=ActivityAction(verb=change.verb),
                attention=change.attention,
                holding=change.holding,
                beat_id=beat_id,
            )
        )
    return events


_SUFFIXES = ("deltas", "delta", "updates", "update", "relationship", "feelings")
"""Words small models glue to a name when they key an answer by it ("AlexDeltas")."""


@functools.lru_cache(maxsize=1024)
def entity_key(text: str) -> str:
    """A reference to someone, folded: case, accents, spaces and punctuation do not count
    ("Tomas_Reyes" is "Tomás Reyes"). Every state update folds the same names and ids again
    (each target's, and each name the answer gives): each is folded once."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return re.sub(r"[\W_]+", "", plain.casefold())


def _aliases(tid: str, name: str, extra: Sequence[str]) -> set[str]:
    first = name.split(maxsplit=1)[0] if name.split() else name
    return {k for k in map(entity_key, (tid, name, first, *extra)) if k}


def _match_targets(
    answer: StateUpdate,
    targets: list[tuple[str, str, Relationship]],
    aliases: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, PairUpdate]:
    """Map the answer onto target ids by id, name, first name or nickname, whatever the case
    and spacing ("MiraVale", "mira vale"); the flat form fits a lone target. A pair naming
    nobody present is logged and skipped."""
    if not answer.relationships and answer.affinity_delta is not None and len(targets) == 1:
        flat = PairUpdate(
            affinity_delta=answer.affinity_delta,
            trust_delta=answer.trust_delta or 0,
            knowledge_facts=answer.knowledge_facts,
        )
        return {targets[0][0]: flat}
    keys: dict[str, str] = {}
    for tid, name, _rel in targets:
        for key in _aliases(tid, name, (aliases or {}).get(tid, ())):
            keys.setdefault(key, tid)
    matched: dict[str, PairUpdate] = {}
    for pair in answer.relationships:
        found = _find(keys, (pair.target_id, pair.target))
        if found is None:
            log.info(
                "a state answer names %r, nobody in the scene; skipped",
                pair.target_id or pair.target,
            )
        elif found not in matched:
            matched[found] = pair
    return matched


def _find(keys: Mapping[str, str], references: Sequence[str]) -> str | None:
    for reference in references:
        key = entity_key(reference)
        if key in keys:
            return keys[key]
        for suffix in _SUFFIXES:
            if key.endswith(suffix) and key[: -len(suffix)] in keys:
                return keys[key[: -len(suffix)]]
    return None
