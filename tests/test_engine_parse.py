"""The player's words are stored as written; the classifier only labels spans of them, and
out-of-character text is recognised without it (issue 13, item 3)."""

from __future__ import annotations

import json

import pytest

from bot.engine import OutOfCharacter
from bot.engine.parse import (
    ParsedTurn,
    fallback_segments,
    in_character_text,
    is_out_of_character,
    label_spans,
)
from bot.llm import Task
from bot.store import Database
from bot.store.events import UserTurn
from tests.helpers.engine_helpers import (
    RecordingSink,
    make_engine,
    seed_story,
    zero_state,
)
from tests.helpers.events import then_events


def _spans(prose: str, *segments: tuple[str, str]) -> list[tuple[str, str]]:
    answer = ParsedTurn.model_validate(
        {"segments": [{"kind": kind, "text": text} for kind, text in segments]}
    )
    return [(s.kind, s.text) for s in label_spans(prose, answer)]


def _words(prose: str) -> list[str]:
    return prose.split()


@pytest.mark.parametrize(
    "prose",
    [
        "(( brb, dinner ))",
        "((sorry, I have to go))",
        "OOC: can we skip to the morning?",
        "ooc - typo above",
        "(OOC: that was a typo)",
        "[OOC] back in five",
        "// pausing here",
        "  (( unclosed aside",
    ],
)
def test_out_of_character_lines_are_recognised_by_their_markers(prose: str) -> None:
    assert is_out_of_character(prose)
    assert [s.kind for s in fallback_segments(prose)] == ["ooc"]


@pytest.mark.parametrize(
    "prose",
    [
        "I sit down by the window.",
        'She said "OOC" and laughed.',
        "The sign reads http://harbour.example",
        "Ooc is the name of my dog.",
        "*I wave.* (( back in 5 ))",
    ],
)
def test_story_lines_are_not_out_of_character(prose: str) -> None:
    assert not is_out_of_character(prose)


def test_an_aside_inside_a_story_line_is_its_only_ooc_part() -> None:
    prose = '*I wave.* "Hi, Mira!" (( back in 5 ))'
    assert [(s.kind, s.text) for s in fallback_segments(prose)] == [
        ("action", "*I wave.*"),
        ("dialogue", '"Hi, Mira!"'),
        ("ooc", "(( back in 5 ))"),
    ]
    assert in_character_text(prose) == '*I wave.* "Hi, Mira!"'


def test_invented_or_reworded_segments_are_dropped_and_the_rules_label_the_rest() -> None:
    prose = '*I lean in.* "Who tore the page out?" The rain gets louder.'
    labelled = _spans(
        prose,
        ("action", "*I lean in.*"),
        ("dialogue", "Who ripped out the page?"),  # reworded: not the player's words
        ("narration", "Alex looks worried."),  # invented
    )
    assert labelled == [
        ("action", "*I lean in.*"),
        ("dialogue", '"Who tore the page out?"'),
        ("narration", "The rain gets louder."),
    ]
    # whatever the answer, the segments spell out exactly what the player wrote
    assert _words(" ".join(text for _kind, text in labelled)) == _words(prose)


def test_the_classifier_labels_cannot_turn_an_ooc_aside_into_dialogue() -> None:
    prose = "I nod. (( OOC: I have to leave soon ))"
    labelled = _spans(prose, ("narration", "I nod."), ("dialogue", "OOC: I have to leave soon"))
    assert labelled == [("narration", "I nod."), ("ooc", "(( OOC: I have to leave soon ))")]


def test_a_segment_found_out_of_order_does_not_reorder_the_line() -> None:
    prose = "I stand. I sit."
    assert _spans(prose, ("action", "I sit."), ("action", "I stand.")) == [
        ("narration", "I stand."),
        ("action", "I sit."),
    ]


async def test_the_stored_line_is_the_players_and_ooc_costs_no_classifier_call(
    db: Database,
) -> None:
    engine, mock = make_engine(db)
    chat_id = await seed_story(engine, guest=False)
    invented = json.dumps({"segments": [{"kind": "dialogue", "text": "I never said this."}]})
    mock.script(narrate="BotA nods.", classify=invented, state=zero_state())
    await engine.turns.take(chat_id, "I shrug.", RecordingSink())
    with pytest.raises(OutOfCharacter):  # no beat at all, so no classification either
        await engine.turns.take(chat_id, "(( OOC: brb ))", RecordingSink())

    stored = await then_events(db, UserTurn)
    assert [t.prose for t in stored] == ["I shrug."]
    lines = [b for b in await engine.queries.beats(chat_id) if b.role == "user"]
    assert [(b.text, [s.model_dump(mode="json") for s in b.segments]) for b in lines] == [
        ("I shrug.", [{"kind": "narration", "text": "I shrug."}]),
    ]
    classify = mock.calls_for(Task.CLASSIFY)
    assert len(classify) == 1
