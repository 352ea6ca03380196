"""Bounded retrieval of a character's older memories: some by relevance, the rest by recency.

Relevance is SQLite FTS5 (bm25) over the owner's own memories, so recall costs the same at
ten beats as at ten thousand.
"""

from __future__ import annotations

import re

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


def fts_query(text: str) -> str:
    """An FTS5 OR-query of the distinctive words of ``text`` (quoted, so nothing is syntax)."""
    words: list[str] = []
    for word in _WORD.findall(text.lower()):
        if word not in _STOP and word not in words:
            words.append(word)
        if len(words) >= MAX_QUERY_WORDS:
            break
    return " OR ".join(f'"{w}"' for w in words)


async def recall(
    views: Views,
    chat_id: str,
    owner_id: str,
    *,
    query: str,
    limit: int,
    exclude_beats: set[int],
) -> list[Memory]:
    """Up to ``limit`` of the owner's memories not already shown, oldest first."""
    if limit <= 0:
        return []
    relevant = await views.search_memories(chat_id, owner_id, fts_query(query), limit)
    recent = await views.memories(chat_id, owner_id, limit=limit + len(exclude_beats))
    chosen: dict[int, Memory] = {}
    for memory in relevant[: (limit + 1) // 2] + recent:
        if memory.beat_id in exclude_beats or memory.id in chosen:
            continue
        chosen[memory.id] = memory
        if len(chosen) >= limit:
            break
    return sorted(chosen.values(), key=lambda m: m.id)
