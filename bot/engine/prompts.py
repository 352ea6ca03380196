"""Point-of-view prompt assembly, bounded by a token budget and laid out for prefix caches.

A character's prompt holds only what that character witnessed: the caller hands in its own
memories, the beats it was present for and its own edges, and nothing here reaches for more.

Servers (llama.cpp, vLLM, Ollama, hosted APIs) reuse the work for a prompt's longest unchanged
prefix, so the prompt goes from what changes least to what changes most:

1. the character (identity, persona, card text, voice): the same every turn;
2. what it remembers from before the transcript: changes only when the window jumps;
3. the transcript, a window whose start stays put until it overflows and then moves on by a
   chunk (``settle_window``), so between jumps each prompt is the previous one with the new
   beats appended;
4. the changing context (``changing_context``: now, place, weather, who is present and doing
   what, feelings, memories the cue brings back), one short message just before the cue.

The budget gives each part a fixed share, so what changes turn to turn never moves the
transcript window, and the prompt's size does not grow with the length of the story.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.engine.cardtext import depth_notes, depth_prompt, insert_at_depth, persona_text
from bot.engine.macros import Names, replacing, resolve_prompt
from bot.engine.parse import in_character_text
from bot.engine.worldinfo import Activation
from bot.llm import Message
from bot.store import YOU
from bot.store.views import (
    Activity,
    Beat,
    Character,
    Chat,
    Memory,
    Relationship,
    You,
    speaker_label,
)

CHARS_PER_TOKEN = 4
STABLE_SHARE = 0.35
"""Most of the budget the character's own part may take (a huge persona is clipped)."""
EARLIER_SHARE = 0.12
"""Reserved for memories from before the transcript (stable between window jumps)."""
CONTEXT_SHARE = 0.08
"""Reserved for the changing context message (world, feelings, memories the cue recalls).
It is what a prefix cache cannot reuse, so it is kept short."""
RECALLED_SHARE = 0.03
"""The part of CONTEXT_SHARE for memories the cue brings back."""
RECALLED_LINE_TOKENS = 40
"""Each memory the cue brings back is a short reminder, not the whole beat again."""
CUE_SHARE = 0.04
"""Reserved for the cue, so an ordinary player line never moves the transcript window."""
KEEP_AFTER_JUMP = 0.6
"""When the transcript overflows, old beats leave until it fills at most this share of its
room (and of ``transcript_beats``): a jump every few turns, not one beat every turn."""
FACT_TOKENS = 40
"""Each fact the relationship brings (views.known_facts chooses them) is clipped to this."""
SUMMARY_TOKENS = 60
"""A relationship's summary, clipped: the whole of it is in the scene summaries."""


def estimate_tokens(text: str) -> int:
    """A cheap, conservative token estimate (about four characters a token)."""
    return len(text) // CHARS_PER_TOKEN + 1


def prompt_tokens(messages: Sequence[Message]) -> int:
    return sum(estimate_tokens(m.content) + 4 for m in messages)


def _clip(text: str, max_tokens: int) -> str:
    limit = max(0, max_tokens * CHARS_PER_TOKEN)
    return text if len(text) <= limit else text[: max(0, limit - 1)].rstrip() + "…"


@dataclass(frozen=True, slots=True)
class PointOfView:
    """Everything one character may know when it speaks, gathered by the caller.

    ``earlier`` are memories from before the transcript (recency); ``recalled`` are the ones
    the cue brings back (relevance). Neither holds a beat of ``transcript``.
    """

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
    earlier: list[Memory] = field(default_factory=list)
    lore: Activation = field(default_factory=Activation)
    lore_reserve: int = 0
    """Tokens kept for world info whenever the speaker has books to read (what fires changes
    every turn; keeping room for it keeps the transcript window where it is)."""


def _name(pov: PointOfView, entity_id: str) -> str:
    if entity_id == YOU:
        return pov.you.name
    return pov.names.get(entity_id, entity_id)


# -- 1. the character: the same every turn ---------------------------------------------------


def stable_text(pov: PointOfView) -> str:
    """Who the speaker is and how it writes. Nothing here depends on the scene, the present
    set or the turn, so a meanwhile scene or a guest joining keeps the cached prefix."""
    card = pov.speaker.card
    you = pov.you
    instruction = (
        f"You are {card.name}, a character in an ongoing role-play story. Write only as "
        f"{card.name}: speech, actions and thoughts in character, in prose, one to three short "
        f"paragraphs. Never write words or actions for anyone else, and never for {you.name}."
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
    lines.append(
        f"{you.name} ({you.pronouns}) is the player's character."
        + (f" {you.persona}" if you.persona else "")
    )
    return "\n".join(lines)


def _memory_lines(
    memories: Sequence[Memory], budget: int, *, line_tokens: int | None = None
) -> list[str]:
    lines: list[str] = []
    used = 0
    for memory in memories:
        text = " / ".join((memory.pov_summary or memory.text).splitlines())
        line = "- " + (text if line_tokens is None else _clip(text, line_tokens))
        cost = estimate_tokens(line)
        if used + cost > budget:
            continue  # one long summary must not crowd out the shorter memories after it
        lines.append(line)
        used += cost
    return lines


EARLIER_HEADER = "Things you remember from earlier:"


def _earlier_text(pov: PointOfView, budget: int) -> str:
    room = budget - estimate_tokens(EARLIER_HEADER)
    # a long scene summary is clipped to half the room rather than left out
    lines = _memory_lines(pov.earlier, room, line_tokens=room // 2)
    return (EARLIER_HEADER + "\n" + "\n".join(lines)) if lines else ""


def _head(pov: PointOfView, budget_tokens: int) -> list[Message]:
    stable = _clip(stable_text(pov), int(budget_tokens * STABLE_SHARE))
    earlier = _earlier_text(pov, int(budget_tokens * EARLIER_SHARE))
    return [Message(role="system", content=stable + ("\n\n" + earlier if earlier else ""))]


# -- 3. the transcript: append-only between jumps --------------------------------------------


def settle_window(costs: Sequence[int], room: int, max_beats: int) -> int:
    """Where the transcript starts, given the token cost of each beat in order.

    Played forward like the story: the start stays put while the window fits ``room`` tokens
    and ``max_beats`` beats; when a beat overflows it, the oldest beats leave until the window
    holds at most KEEP_AFTER_JUMP of both. So the window only grows between two jumps, and the
    answer for a story one beat longer is the same start or a later one.
    """
    start = used = 0
    keep_tokens, keep_beats = room * KEEP_AFTER_JUMP, max(1, int(max_beats * KEEP_AFTER_JUMP))
    for end, cost in enumerate(costs, start=1):
        used += cost
        if used > room or end - start > max_beats:
            while start < end and (used > keep_tokens or end - start > keep_beats):
                used -= costs[start]
                start += 1
    return start


def _beat_message(pov: PointOfView, beat: Beat) -> Message:
    own = beat.speaker_id == pov.speaker.id and beat.role == "assistant"
    label = None if own else speaker_label(beat, pov.you.name, pov.names)
    return _line(beat.role, beat.text, label)


@functools.lru_cache(maxsize=8192)
def _line(role: str, text: str, label: str | None) -> Message:
    # every turn reads its window again (and costs each beat) before building the prompt:
    # the same beat, seen by the same speaker, is the same message (label None: its own reply)
    if label is None:
        return Message(role="assistant", content=text)
    return Message(role="user", content=f"{label}: {_story_text(role, text)}")


def beat_cost(pov: PointOfView, beat: Beat) -> int:
    """Tokens ``beat`` takes in ``pov.speaker``'s transcript (0 for a beat with no text)."""
    own = beat.speaker_id == pov.speaker.id and beat.role == "assistant"
    label = None if own else speaker_label(beat, pov.you.name, pov.names)
    return _line_cost(beat.role, beat.text, label)


@functools.lru_cache(maxsize=8192)
def _line_cost(role: str, text: str, label: str | None) -> int:
    # a turn costs each beat of its window three or four times (placing the window, fitting
    # it twice), and the next turn the same beats again: a beat's cost is its line's, found
    # once (building the message and measuring it each time was a tenth of a turn's Python)
    if not _story_text(role, text).strip():
        return 0
    return prompt_tokens([_line(role, text, label)])


@functools.lru_cache(maxsize=8192)
def _story_text(role: str, text: str) -> str:
    """What of a beat is in the story (a player's out-of-character asides are not)."""
    return in_character_text(text) if role == "user" else text


def _cue_message(pov: PointOfView, cue: str) -> Message:
    return Message(role="user", content=cue or f"(Continue the scene as {pov.speaker.name}.)")


def _after_cue(pov: PointOfView) -> list[Message]:
    """The card's post-history instructions: after the cue, the same every turn."""
    text = replacing(pov.speaker.card.post_history_instructions, "")
    return [Message(role="system", content=text)] if text.strip() else []


def transcript_room(pov: PointOfView, budget_tokens: int, cue: str = "") -> int:
    """Tokens the transcript may use: what the stable part and the fixed shares leave.

    Only the stable part is measured; the changing parts have reserved shares, so a turn's
    feelings or memories never move the window. A cue longer than its share takes the rest
    from the transcript, for that turn only.
    """
    reserved = int(budget_tokens * (CONTEXT_SHARE + EARLIER_SHARE))
    cue_cost = max(int(budget_tokens * CUE_SHARE), prompt_tokens([_cue_message(pov, cue)]))
    cue_cost += prompt_tokens(_after_cue(pov)) + pov.lore_reserve
    if (note := depth_prompt(pov.speaker.card)) is not None:  # the card's own, every turn
        cue_cost += estimate_tokens(note.text) + 4
    stable = _clip(stable_text(pov), int(budget_tokens * STABLE_SHARE))
    stable_cost = prompt_tokens([Message(role="system", content=stable)])
    return budget_tokens - stable_cost - reserved - cue_cost


def fit_transcript(pov: PointOfView, cue: str, *, budget_tokens: int) -> list[Beat]:
    """The beats of ``pov.transcript`` the prompt shows: all of them unless this cue is too
    long for its share, then the newest that fit."""
    beats = [b for b in pov.transcript if b.text.strip()]
    room = transcript_room(pov, budget_tokens, cue)
    costs = [beat_cost(pov, b) for b in beats]
    start, used = 0, sum(costs)
    while start < len(beats) and used > room:
        used -= costs[start]
        start += 1
    return beats[start:]


# -- 4. the changing context: just before the cue --------------------------------------------


def _world_lines(pov: PointOfView) -> list[str]:
    chat = pov.chat
    lines = [
        f"Now: {chat.narrative_anchor}, {chat.world_time}. Place: {chat.place or 'unspecified'}."
        + (f" Weather: {chat.weather}." if chat.weather else "")
    ]
    if pov.premise:
        lines.append(f"This scene: {pov.premise}")
    others = [_name(pov, e) + _doing(pov, e) for e in pov.present if e != pov.speaker.id]
    lines.append("Present with you: " + ("; ".join(others) if others else "no one") + ".")
    if own := _doing(pov, pov.speaker.id):
        lines.append(f"You are{own[1:]}.")
    return lines


def _doing(pov: PointOfView, entity_id: str) -> str:
    activity = pov.activities.get(entity_id)
    if activity is None:
        return ""
    doing = ", ".join(x for x in (activity.posture, activity.verb) if x)
    return f", {doing}" if doing else ""


def _feeling_lines(pov: PointOfView, budget: int) -> list[str]:
    """How the speaker feels toward each present person, then what it knows of each: the
    facts share what ``budget`` leaves, so a long list never crowds out anyone's feelings."""
    feelings = []
    for rel in pov.relationships:
        line = (
            f"You feel toward {_name(pov, rel.target_id)}: affinity {rel.affinity}/100, "
            f"trust {rel.trust}/100."
        )
        feelings.append(line + (" " + _clip(rel.summary, SUMMARY_TOKENS) if rel.summary else ""))
    knowing = [rel for rel in pov.relationships if rel.knowledge_facts]
    left = budget - sum(estimate_tokens(line) for line in feelings)
    each = left // max(1, len(knowing))
    facts = [
        _clip(
            f"What you know of {_name(pov, rel.target_id)}: "
            + "; ".join(_clip(f, FACT_TOKENS) for f in rel.knowledge_facts)
            + ".",
            each,
        )
        for rel in knowing
        if each > 0
    ]
    return feelings + facts


RECALLED_HEADER = "This brings back:"


def _lore_message(lore: Activation) -> list[Message]:
    """World info that fired (before-char entries first), bounded by its own budget (lore.py):
    it changes turn to turn, so it goes with the changing context, just before it."""
    texts = [t for t in (*lore.texts("before_char"), *lore.texts("after_char")) if t.strip()]
    return [Message(role="system", content="World info:\n" + "\n".join(texts))] if texts else []


def changing_context(pov: PointOfView, budget_tokens: int) -> str:
    """What changes from turn to turn, as one short message placed just before the cue.

    Everything that may change between two turns goes here (and only here), so the prefix
    before it stays the same; a new section (world info, say) is one more line list here.
    """
    budget = int(budget_tokens * CONTEXT_SHARE) - 4
    recalled_budget = int(budget_tokens * RECALLED_SHARE)
    world = _world_lines(pov)
    room = budget - recalled_budget - sum(estimate_tokens(line) for line in world)
    text = _clip("\n".join(world + _feeling_lines(pov, room)), budget - recalled_budget)
    left = min(recalled_budget, budget - estimate_tokens(text)) - estimate_tokens(RECALLED_HEADER)
    recalled = _memory_lines(pov.recalled, left, line_tokens=RECALLED_LINE_TOKENS)
    if recalled:
        text += "\n" + RECALLED_HEADER + "\n" + "\n".join(recalled)
    return text


def build_narrative_prompt(pov: PointOfView, cue: str, *, budget_tokens: int) -> list[Message]:
    """Messages for ``pov.speaker``'s next beat, most stable first: the character, what it
    remembers from earlier, the transcript it witnessed, the changing context, the cue."""
    beats = fit_transcript(pov, cue, budget_tokens=budget_tokens)
    cue_message = _cue_message(pov, cue)
    # notes at a depth (SillyTavern's character note, world info placed there) count back
    # from the cue, so they move as the transcript grows: only cards that ask for them pay
    chat = insert_at_depth(
        [*(_beat_message(pov, b) for b in beats), cue_message],
        depth_notes(pov.speaker.card, pov.lore),
    )
    cue_at = max(i for i, m in enumerate(chat) if m is cue_message)
    messages = [
        *_head(pov, budget_tokens),
        *chat[:cue_at],
        *_lore_message(pov.lore),
        Message(role="system", content=changing_context(pov, budget_tokens)),
        *chat[cue_at:],
        *_after_cue(pov),
    ]
    return resolve_prompt(messages, Names(char=pov.speaker.name, user=pov.you.name))
