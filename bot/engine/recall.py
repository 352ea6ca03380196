"""Bounded retrieval of a character's older memories: some by relevance, the rest by recency.

Relevance: the owner's newest memories that share words with the cue (SQLite FTS5, scoped to
the owner and walked newest first, so the search stops early), ranked by how many of the cue's
words each holds. Names of the cast are left out of the cue: every memory is labelled with
them, so they would match everything.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.engine.views import Memory, Views

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


def any_of(words: list[str]) -> str:
    """An FTS5 OR-query of ``words`` (each quoted, so nothing in them is FTS syntax)."""
    return " OR ".join(f'"{w}"' for w in words)


def fts_query(text: str) -> str:
    """An FTS5 OR-query of the distinctive words of ``text``."""
    return any_of(cue_words(text))


def name_words(names: list[str]) -> frozenset[str]:
    return frozenset(w for name in names for w in _WORD.findall(name.lower()))


def _shared(memory: Memory, words: list[str]) -> int:
    found = set(_WORD.findall((memory.text + " " + memory.pov_summary).lower()))
    return sum(word in found for word in words)


async def recall(
    views: Views,
    chat_id: str,
    owner_id: str,
    *,
    query: str,
    limit: int,
    exclude_beats: set[int],
    names: Sequence[str] = (),
) -> list[Memory]:
    """Up to ``limit`` of the owner's memories not already shown, oldest first."""
    if limit <= 0:
        return []
    words = cue_words(query, leave_out=name_words(list(names)))
    matches = await views.search_memories(
        chat_id,
        owner_id,
        any_of(words),
        limit * CANDIDATES_PER_MEMORY + len(exclude_beats),
    )
    fresh = [m for m in matches if m.beat_id not in exclude_beats]
    relevant = sorted(fresh, key=lambda m: (-_shared(m, words), -m.id))[: (limit + 1) // 2]
    recent = await views.memories(chat_id, owner_id, limit=limit + len(exclude_beats))
    chosen: dict[int, Memory] = {}
    for memory in relevant + recent:
        if memory.beat_id in exclude_beats or memory.id in chosen:
            continue
        chosen[memory.id] = memory
        if len(chosen) >= limit:
            break
    return sorted(chosen.values(), key=lambda m: m.id)
