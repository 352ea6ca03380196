"""SQLite's full-text indexes in two tiers: a search finds what one index would, newest first,
old rows in the archive included, across moves, rewinds and rebuilds."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import tests.helpers.store_factories as f
from bot.store import Database, append_and_apply, open_db, project, recall
from bot.store.projections.story import memory_scope
from bot.store.views import Views
from tests.helpers.stores import BACKENDS, fresh_store

SPAN = 3


@pytest.fixture
async def db() -> AsyncIterator[Database]:
    async with open_db(":memory:") as lite:
        await lite.write(lambda raw: f.small_recall_tiers(raw, SPAN))
        yield lite


async def remember(db: Database, chat_id: str, text: str) -> int:
    payload = f.memory_written(f.HOST, chat_id=chat_id, text=text)
    return await append_and_apply(db, kind="memory_written", payload=payload)


async def found(db: Database, chat_id: str, words: list[str], limit: int) -> list[int]:
    scope = memory_scope(chat_id, f.HOST)
    return [row["id"] for row in await db.read(lambda raw: recall.search(raw, scope, words, limit))]


async def holding(db: Database, word: str) -> list[int]:
    """What one index would give: the host's memories holding ``word``, newest first."""
    rows = await db.fetchall(
        "SELECT id, text FROM memories WHERE owner_id = ? ORDER BY id DESC", (f.HOST,)
    )
    return [row[0] for row in rows if word in row[1].split()]


async def test_a_search_finds_the_newest_matches_across_both_tiers(db: Database) -> None:
    seeded = await f.seed_meanwhile_chat(db)
    for n in range(40):
        await remember(db, seeded.chat_id, "the lighthouse" if n % 5 == 0 else f"harbour {n}")
    boundary = await db.read(lambda raw: f.recall_boundary(raw, "memories"))
    lighthouse = await holding(db, "lighthouse")
    assert len(lighthouse) == 8 and min(lighthouse) <= boundary < max(lighthouse)  # both tiers

    # newest first, stopping at the limit: the recent tier alone, then the archive too
    assert await found(db, seeded.chat_id, ["lighthouse"], 1) == lighthouse[:1]
    assert await found(db, seeded.chat_id, ["lighthouse"], 5) == lighthouse[:5]
    assert await found(db, seeded.chat_id, ["LIGHTHOUSE", "nothing"], 50) == lighthouse

    # a rewind reaching into the archive takes its rows out of both tiers
    cut = lighthouse[4]
    await append_and_apply(
        db, kind="beats_rewound", payload=f.beats_rewound(cut - 1, seeded.chat_id)
    )
    assert await found(db, seeded.chat_id, ["lighthouse"], 50) == lighthouse[5:]
    await remember(db, seeded.chat_id, "a lighthouse again")
    again = await holding(db, "lighthouse")
    assert await found(db, seeded.chat_id, ["lighthouse"], 50) == again
    await f.snapshot(db)  # both tiers' indexes pass their integrity-check
    await project(db)
    assert await found(db, seeded.chat_id, ["lighthouse"], 50) == again
    await f.snapshot(db)


async def test_a_fact_in_the_archive_still_matches_the_line(db: Database) -> None:
    seeded = await f.seed_meanwhile_chat(db)
    views = Views(db)

    async def learn(facts: list[str]) -> None:
        payload = f.edge_update(f.HOST, f.GUEST, seeded.chat_id, knowledge_facts=facts)
        await append_and_apply(db, kind="edge_update", payload=payload)

    await learn(["keeps the lighthouse key"])
    for n in range(20):
        await learn([f"filler fact {n}"])
    first = await db.fetchone("SELECT rowid FROM edge_facts WHERE fact_key LIKE '%lighthouse%'")
    assert first[0] <= await db.read(lambda raw: f.recall_boundary(raw, "edge_facts"))

    facts = await views.known_facts(seeded.chat_id, f.HOST, f.GUEST, about="the Lighthouse")
    assert "keeps the lighthouse key" in facts
    assert "keeps the lighthouse key" not in await views.known_facts(
        seeded.chat_id, f.HOST, f.GUEST, about="the harbour"
    )
    await project(db)
    facts = await views.known_facts(seeded.chat_id, f.HOST, f.GUEST, about="lighthouse")
    assert "keeps the lighthouse key" in facts


def test_scoped_terms_fold_case_and_accents_and_keep_words_whole() -> None:
    assert recall.plain_words("Tomás SAW the Straße, ça va? x_y") == [
        "tomas",
        "saw",
        "the",
        "strasse",
        "ca",
        "va",
        "x",
        "y",
    ]
    assert recall.scoped_terms("e1", "the Tomás and the tomas") == "e1the e1tomas e1and"
    assert recall.any_scoped("e1", ["TOMÁS", "pier"]) == '"e1tomas" OR "e1pier"'


async def test_a_fact_is_matched_whatever_the_accents_and_only_on_its_edge(db: Database) -> None:
    seeded = await f.seed_meanwhile_chat(db)
    views = Views(db)
    for source, target, fact in (
        (f.HOST, f.GUEST, "met Tomás at the pier"),
        (f.GUEST, f.HOST, "met tomas at the market"),  # the other edge: never the host's
    ):
        payload = f.edge_update(source, target, seeded.chat_id, knowledge_facts=[fact])
        await append_and_apply(db, kind="edge_update", payload=payload)

    for about in ("where is tomas?", "TOMÁS!"):
        assert await views.known_facts(seeded.chat_id, f.HOST, f.GUEST, about=about, newest=0) == (
            "met Tomás at the pier",
        )
    assert await views.known_facts(seeded.chat_id, f.HOST, f.GUEST, about="tomasz", newest=0) == ()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_line_of_words_with_nothing_to_index_still_gives_the_newest_facts(
    backend: str,
) -> None:
    # halfwidth sound marks (kaomoji) and Arabic harakat are letters to a regex, but fold to
    # nothing: a line made of them alone once sent FTS5 an empty query and failed the turn
    async with fresh_store(backend) as db:
        seeded = await f.seed_meanwhile_chat(db)
        payload = f.edge_update(f.HOST, f.GUEST, seeded.chat_id, knowledge_facts=["likes tea"])
        await append_and_apply(db, kind="edge_update", payload=payload)
        views = Views(db)
        for about in ("ﾟﾟﾟﾟ", "ﹰﹲﹴﹶ ﾞﾞﾞﾞ"):
            facts = await views.known_facts(seeded.chat_id, f.HOST, f.GUEST, about=about)
            assert facts == ("likes tea",)


async def _segments(db: Database, fts: str) -> int:
    row = await db.fetchone(f"SELECT count(DISTINCT segid) FROM {fts}_idx")
    return int(row[0])


async def test_an_index_written_a_beat_at_a_time_keeps_few_segments() -> None:
    # a search seeks each of its words in every segment; FTS5 alone merged a beat's small
    # segments only once 16 had piled up (migration 10 merges them four at a time), and the
    # setting survives a full rebuild
    async with open_db(":memory:") as db:
        seeded = await f.seed_meanwhile_chat(db)
        most = 0
        for n in range(120):
            await remember(db, seeded.chat_id, f"the lantern {n}")
            most = max(most, await _segments(db, "memories_fts_recent"))
            if n == 60:
                await project(db)
        assert most <= 4
        assert await found(db, seeded.chat_id, ["lantern"], 200) == await holding(db, "lantern")
