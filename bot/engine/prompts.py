"""Point-of-view prompt assembly, bounded by a token budget.

A character's prompt holds only what that character witnessed: the caller hands in its own
memories, the beats it was present for and its own edges, and nothing here reaches for more.
The budget is split so the prompt's size does not grow with the length of the story.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.engine.cardtext import depth_notes, insert_at_depth, persona_text
from bot.engine.macros import Names, replacing, resolve_prompt
from bot.engine.views import (
    Activity,
    Beat,
    Character,
    Chat,
    Memory,
    Relationship,
    You,
    speaker_label,
)
from bot.engine.worldinfo import Activation
from bot.llm import Message
from bot.store import YOU

CHARS_PER_TOKEN = 4
SYSTEM_SHARE = 0.40
MEMORY_SHARE = 0.20


def estimate_tokens(text: str) -> int:
    """A cheap, conservative token estimate (about four characters a token)."""
    return len(text) // CHARS_PER_TOKEN + 1


def prompt_tokens(messages: list[Message]) -> int:
    return sum(estimate_tokens(m.content) + 4 for m in messages)


def _clip(text: str, max_tokens: int) -> str:
    limit = max(0, max_tokens * CHARS_PER_TOKEN)
    return text if len(text) <= limit else text[: max(0, limit - 1)].rstrip() + "…"


@dataclass(frozen=True, slots=True)
class PointOfView:
    """Everything one character may know when it speaks, gathered by the caller."""

    speaker: Character
    you: You
    chat: Chat
    present: tuple[str, ...]
    names: dict[str, str]
    relationships: list[Relationship] = field(default_factory=list)
    activities: dict[str, Activity] = field(default_factory=dict)
    recalled: list[Memory] = field(default_factory=list)
    transcript: list[Beat] = field(default_factory=list)
    premise: str = ""
    lore: Activation = field(default_factory=Activation)


def _name(pov: PointOfView, entity_id: str) -> str:
    if entity_id == YOU:
        return pov.you.name
    return pov.names.get(entity_id, entity_id)


def _system_text(pov: PointOfView) -> str:
    card = pov.speaker.card
    others = [_name(pov, e) for e in pov.present if e != card.id]
    instruction = (
        f"You are {card.name}, a character in an ongoing role-play story. Write only as "
        f"{card.name}: speech, actions and thoughts in character, in prose, one to three short "
        "paragraphs. Never write words or actions for anyone else"
        + (f", and never for {pov.you.name}." if YOU in pov.present else ".")
    )
    lines = [replacing(card.system_prompt, instruction), f"Persona: {persona_text(card)}"]
    if card.traits:
        lines.append("Traits: " + ", ".join(card.traits))
    if card.backstory:
        lines.append(f"Backstory: {card.backstory}")
    if card.scenario:
        lines.append(f"Scenario: {card.scenario}")
    if card.voice_samples:
        lines.append("How you talk:\n" + "\n".join(f"- {s}" for s in card.voice_samples[:5]))
    if YOU in pov.present:
        you = pov.you
        lines.append(
            f"{you.name} ({you.pronouns}) is the player's character."
            + (f" {you.persona}" if you.persona else "")
        )
    return "\n".join(lines) + "\n" + _world_text(pov, others)


def _world_text(pov: PointOfView, others: list[str]) -> str:
    chat = pov.chat
    world = [
        f"Now: {chat.narrative_anchor}, {chat.world_time}. Place: {chat.place or 'unspecified'}."
        + (f" Weather: {chat.weather}." if chat.weather else ""),
        "Present with you: " + (", ".join(others) if others else "no one") + ".",
    ]
    if pov.premise:
        world.append(f"This scene: {pov.premise}")
    for entity, activity in pov.activities.items():
        doing = ", ".join(x for x in (activity.posture, activity.verb) if x)
        if doing:
            world.append(f"{_name(pov, entity)} is {doing}.")
    for rel in pov.relationships:
        line = (
            f"How you feel about {_name(pov, rel.target_id)}: affinity {rel.affinity}/100, "
            f"trust {rel.trust}/100."
        )
        if rel.summary:
            line += f" {rel.summary}"
        if rel.knowledge_facts:
            line += " You know: " + "; ".join(rel.knowledge_facts[-8:]) + "."
        world.append(line)
    return "\n".join(world)


def _memory_text(pov: PointOfView, budget: int) -> str:
    if not pov.recalled:
        return ""
    lines: list[str] = []
    used = 0
    for memory in pov.recalled:
        line = f"- {memory.pov_summary or memory.text}"
        cost = estimate_tokens(line)
        if used + cost > budget:
            continue  # one long summary must not crowd out the shorter memories after it
        lines.append(line)
        used += cost
    return ("Things you remember from earlier:\n" + "\n".join(lines)) if lines else ""


def _beat_message(pov: PointOfView, beat: Beat) -> Message:
    if beat.speaker_id == pov.speaker.id and beat.role == "assistant":
        return Message(role="assistant", content=beat.text)
    label = speaker_label(beat, pov.you.name, pov.names)
    return Message(role="user", content=f"{label}: {beat.text}")


def _lore_message(lore: Activation) -> list[Message]:
    """Activated world info, as changing context just before the cue (before-char first)."""
    texts = [t for t in (*lore.texts("before_char"), *lore.texts("after_char")) if t.strip()]
    if not texts:
        return []
    return [Message(role="system", content="World info:\n" + "\n".join(texts))]


def build_narrative_prompt(pov: PointOfView, cue: str, *, budget_tokens: int) -> list[Message]:
    """Messages for ``pov.speaker``'s next beat: system, what it witnessed, then the cue."""
    card = pov.speaker.card
    system = _clip(_system_text(pov), int(budget_tokens * SYSTEM_SHARE))
    memories = _memory_text(pov, int(budget_tokens * MEMORY_SHARE))
    head = [Message(role="system", content=system + ("\n\n" + memories if memories else ""))]
    lore = _lore_message(pov.lore)
    cue_message = Message(
        role="user", content=cue or f"(Continue the scene as {pov.speaker.name}.)"
    )
    instructions = replacing(card.post_history_instructions, "")
    after = [Message(role="system", content=instructions)] if instructions.strip() else []
    notes = depth_notes(card, pov.lore)
    extra = [Message(role=n.role, content=n.text) for n in notes]
    room = budget_tokens - prompt_tokens([*head, *lore, cue_message, *after, *extra])
    history: list[Message] = []
    for beat in reversed(pov.transcript):
        if not beat.text.strip():
            continue
        message = _beat_message(pov, beat)
        cost = prompt_tokens([message])
        if cost > room:
            break
        history.append(message)
        room -= cost
    history.reverse()
    chat = insert_at_depth([*history, cue_message], notes)
    cue_at = max(i for i, m in enumerate(chat) if m is cue_message)
    messages = [*head, *chat[:cue_at], *lore, *chat[cue_at:], *after]
    return resolve_prompt(messages, Names(char=pov.speaker.name, user=pov.you.name))
