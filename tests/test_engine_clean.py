"""Replies as a player should see them: no speaker label, no lines for someone else, and
structured answers that keep what is usable."""

from __future__ import annotations

import json

import pytest

from bot.engine.clean import LeadingLabel, speaker_labels
from bot.engine.parse import ParsedTurn
from bot.engine.state import StateUpdate
from bot.engine.summaries import SceneSummary, StoryThreads
from bot.store import Database
from tests.engine_helpers import HOST, RecordingSink, make_engine, parse_answer, seed_story


def _run(chunks: list[str], name: str = "Mira Vale") -> str:
    label = LeadingLabel(speaker_labels(name))
    return "".join(label.feed(c) for c in chunks) + label.flush()


@pytest.mark.parametrize(
    "chunks",
    [
        ["Mira Vale: She smiles."],
        ["Mi", "ra V", "ale", ":", " She smiles."],
        ["  mira:", " She smiles."],
        ["**Mira Vale:**", " She smiles."],
    ],
)
def test_the_speakers_own_label_is_dropped_however_it_arrives(chunks: list[str]) -> None:
    assert _run(chunks) == "She smiles."


@pytest.mark.parametrize(
    "chunks, expected",
    [
        (["Mir", "acles happen."], "Miracles happen."),
        (["Tomás: hey"], "Tomás: hey"),
        (["Mi"], "Mi"),
        (["She says: Mira Vale: no"], "She says: Mira Vale: no"),
    ],
)
def test_other_text_comes_through_unchanged(chunks: list[str], expected: str) -> None:
    assert _run(chunks) == expected


def test_one_broken_item_costs_that_item_not_the_answer() -> None:
    parsed = ParsedTurn.model_validate(
        {"segments": [{"kind": "dialogue", "text": "hi"}, {"oops": 1}, "x"]}
    )
    assert [(s.kind, s.text) for s in parsed.segments] == [("dialogue", "hi")]
    state = StateUpdate.model_validate(
        {"relationships": [{"target_id": "you", "affinity_delta": "3"}, 7], "activity": "sitting"}
    )
    assert [(p.target_id, p.affinity_delta) for p in state.relationships] == [("you", 3)]
    assert state.activity is None
    threads = StoryThreads.model_validate({"threads": [{"title": "t" * 500}, {"no": "title"}]})
    assert [len(t.title) for t in threads.threads] == [200]
    summary = SceneSummary.model_validate({"summary": "s" * 9000, "knowledge_facts": "not a list"})
    assert len(summary.summary) == 4000 and summary.knowledge_facts == []


async def test_a_reply_stops_where_the_model_speaks_for_someone_else(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine)
    mock.add("BotA: Hello there.", parse_answer("hi"), json.dumps({}), json.dumps({}))
    sink = RecordingSink()

    result = await engine.take_turn(chat_id, "hi", sink)

    assert result.text == "Hello there." and "".join(sink.chunks) == "Hello there."
    narrative = next(call for call in mock.calls if call.kind == "stream")
    assert narrative.params["stop"] == ["\nMe:", "\nBotB:"]
    assert result.speaker.id == HOST
