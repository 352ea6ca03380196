"""State answers name people loosely; each reference still reaches the right id (issue 13)."""

from __future__ import annotations

import json
import logging

import pytest

from bot.engine.state import StateUpdate, _match_targets
from bot.store import YOU, Database
from bot.store.views import Relationship
from tests.helpers.engine_helpers import GUEST, HOST, RecordingSink, make_engine, seed_story

TARGETS = [
    (YOU, "Alex", Relationship("mira", YOU)),
    ("tomas", "Tomás Reyes", Relationship("mira", "tomas")),
]
NICKNAMES = {"tomas": ["Tom"]}


def _matched(answer: object) -> dict[str, int]:
    update = StateUpdate.model_validate(answer)
    return {t: p.affinity_delta for t, p in _match_targets(update, TARGETS, NICKNAMES).items()}


@pytest.mark.parametrize(
    "reference",
    ["tomas", "Tomás Reyes", "TomásReyes", "tomás reyes", " TOMÁS ", "Tom", "tomas_reyes"],
)
def test_a_reference_by_id_name_first_name_or_nickname_finds_the_id(reference: str) -> None:
    assert _matched({"relationships": [{"target": reference, "affinity_delta": 2}]}) == {"tomas": 2}
    assert _matched({"relationships": [{"target_id": reference, "affinity_delta": 2}]}) == {
        "tomas": 2
    }


def test_answers_keyed_by_name_are_read_at_the_top_level_and_under_relationships() -> None:
    assert _matched(
        {"AlexDeltas": {"affinity_delta": 3}, "TomásReyes": {"affinity_delta": -1}}
    ) == {
        YOU: 3,
        "tomas": -1,
    }
    assert _matched({"relationships": {"you": {"affinity_delta": 1}}}) == {YOU: 1}


def test_a_pair_naming_nobody_present_is_logged_and_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="bot.engine.state"):
        matched = _matched(
            {
                "relationships": [
                    {"target": "Captain Ahab", "affinity_delta": 9},
                    {"target": "alex", "affinity_delta": 1},
                ]
            }
        )
    assert matched == {YOU: 1}
    assert "Captain Ahab" in caplog.text


async def test_loosely_named_feelings_change_the_relationship(db: Database) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine)
    classify = json.dumps({"segments": []})
    # BotA answers for "Me" spaced and cased oddly and for BotB by a glued name
    host = json.dumps({"relationships": {"ME": {"affinity_delta": 4}, "Bot B": {"trust_delta": 2}}})
    guest = json.dumps({"MeDeltas": {"affinity_delta": -3}, "bota": {"trust_delta": 5}})
    mock.script(narrate="BotA nods.", classify=classify, state={HOST: host, GUEST: guest})

    await engine.turns.take(chat_id, "hello both", RecordingSink())

    assert (await engine.queries.relationship(chat_id, HOST, YOU)).affinity == 54
    assert (await engine.queries.relationship(chat_id, HOST, GUEST)).trust == 52
    assert (await engine.queries.relationship(chat_id, GUEST, YOU)).affinity == 47
    assert (await engine.queries.relationship(chat_id, GUEST, HOST)).trust == 55
