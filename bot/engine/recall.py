"""Bounded retrieval of a character's older memories: some by relevance, the rest by recency.

Relevance: the owner's newest memories that share words with the cue (SQLite FTS5, scoped to
the owner and walked newest first, so the search stops early), ranked by how many of the cue's
words each holds. Names of the cast are left out of the cue: every memory is labelled with
them, so they would match everything.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.store.views import Beat, Memory, Views

_WORD = re.compile(r"[^\W_]{3,}", re.UNICODE)
_STOP = frozenset(
    {
        *("the", "and", "you", "your", "for", "with", "that", "this", "what", "are", "was"),
        *("were", "have", "has", "had", "not", "but", "she", "her", "his", "him", "they"),
        *("them", "their", "from", "into", "then", "than", "there", "here", "when", "where"),
        *("who", "why", "how", "all", "can", "will", "just"),
    }
)
MAX_QUERY_WORDS = 12


CANDIDATES_PER_MEMORY = 4
"""Matches fetched per memory recalled by relevance, before ranking them by shared words."""


def cue_words(text: str, *, leave_out: frozenset[str] = frozenset()) -> list[str]:
    """The distinctive words of ``text``, in order, at most MAX_QUERY_WORDS."""
    words: list[str] = []
    for word in _WORD.findall(text.lower()):
        if word not in _STOP and word not in leave_out and word not in words:
            words.append(word)
        if len(words) >= MAX_QUERY_WORDS:
            break
    return words


def name_words(names: list[str]) -> frozenset[str]:
    return frozenset(w for name in names for w in _WORD.findall(name.lower()))


def _shared(memory: Memory, words: list[str]) -> int:
    """How many of ``words`` (distinct, as ``cue_words`` gives them) the memory holds."""
    return len(_words_of(memory.text, memory.pov_summary).intersection(words))


@functools.lru_cache(maxsize=4096)
def _words_of(text: str, pov_summary: str) -> frozenset[str]:
    # the same memories come back turn after turn: their words are found once
    return frozenset(_WORD.findall((text + " " + pov_summary).lower()))


@dataclass(frozen=True, slots=True)
class Recalled:
    """Memories for a prompt, in two groups placed apart (see prompts.py).

    ``earlier``: the newest memories from before the transcript; between two jumps of the
    transcript window they are the same every turn, so they sit in the cached prefix.
    ``relevant``: what the cue brings back; they change every turn.
    """

    earlier: list[Memory] = field(default_factory=list)
    relevant: list[Memory] = field(default_factory=list)


class Shown:
    """What a prompt's transcript shows: its beats, and the scenes they belong to."""

    def __init__(self, beats: Sequence[Beat]) -> None:
        self.beats = {b.id for b in beats}
        self.scenes = {b.meanwhile_scene_id or b.scene_id for b in beats}

    def repeated_by(self, memory: Memory) -> bool:
        """A memory of a beat in the transcript, or a summary of a scene the transcript is
        still showing beats of, would say again what the prompt already says."""
        if memory.beat_id is not None and memory.beat_id in self.beats:
            return True
        return bool(memory.pov_summary) and memory.scene_id in self.scenes


async def recall(
    views: Views,
    chat_id: str,
    owner_id: str,
    *,
    query: str,
    limit: int,
    shown: Sequence[Beat],
    names: Sequence[str] = (),
) -> Recalled:
    """Up to ``limit`` of the owner's memories that repeat nothing in ``shown``, oldest first
    in each group: half the newest (``earlier``), the rest by relevance to ``query``."""
    if limit <= 0:
        return Recalled()
    recent_count = limit // 2
    seen = Shown(shown)
    words = cue_words(query, leave_out=name_words(list(names)))
    earlier, matches = await views.recall_candidates(
        chat_id,
        owner_id,
        recent=recent_count,
        beat_ids=seen.beats,
        scene_ids=seen.scenes,
        words=words,
        matching=(limit - recent_count) * CANDIDATES_PER_MEMORY + len(shown) + recent_count,
    )
    taken = {m.id for m in earlier}
    fresh = [m for m in matches if m.id not in taken and not seen.repeated_by(m)]
    relevant = sorted(fresh, key=lambda m: (-_shared(m, words), -m.id))[: limit - recent_count]
    return Recalled(
        earlier=sorted(earlier, key=lambda m: m.id), relevant=sorted(relevant, key=lambda m: m.id)
    )
