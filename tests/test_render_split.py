"""split_for_discord: Discord-sized pieces cut where a reader would pause."""

from __future__ import annotations

import random
import re

import pytest

from cogs._render import MESSAGE_LIMIT, split_for_discord


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_short_text_is_one_piece() -> None:
    assert split_for_discord("Hello there.") == ["Hello there."]
    assert split_for_discord("") == []


def test_exactly_the_limit_is_one_piece() -> None:
    text = "a" * MESSAGE_LIMIT
    assert split_for_discord(text) == [text]


def test_prefers_the_end_of_a_sentence() -> None:
    text = "One two three. Four five six seven"
    assert split_for_discord(text, limit=24) == ["One two three.", "Four five six seven"]


def test_sentence_end_may_close_quotes_and_markdown() -> None:
    text = '*She nods.* "Fine then." And she walks away slowly'
    assert split_for_discord(text, limit=30)[0] == '*She nods.* "Fine then."'


def test_then_a_newline() -> None:
    text = "a line without a stop\nand another line going on"
    assert split_for_discord(text, limit=30) == [
        "a line without a stop",
        "and another line going on",
    ]


def test_then_a_space() -> None:
    text = "words and words and words and words"
    pieces = split_for_discord(text, limit=12)
    assert all(len(p) <= 12 for p in pieces)
    assert pieces == ["words and", "words and", "words and", "words"]


def test_a_huge_word_is_cut_hard_without_losing_characters() -> None:
    text = "x" * 25
    assert split_for_discord(text, limit=10) == ["x" * 10, "x" * 10, "x" * 5]


def test_an_early_sentence_end_does_not_make_a_tiny_piece() -> None:
    text = "Hi. " + "word " * 10
    first = split_for_discord(text, limit=30)[0]
    assert first != "Hi."
    assert len(first) > 15


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        split_for_discord("x", limit=0)


@pytest.mark.parametrize("seed", range(30))
def test_never_loses_or_duplicates_characters(seed: int) -> None:
    rng = random.Random(seed)
    words = ["Mira", "smiled.", "The", "rain", "kept", "falling!", "\n\n", "Really?", "x" * 60, "…"]
    text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 700)))
    limit = rng.choice([40, 100, 2000])
    pieces = split_for_discord(text, limit=limit)
    assert all(0 < len(p) <= limit for p in pieces)
    assert squash("".join(pieces)) == squash(text)
    position = 0  # each piece is the next stretch of the text; only whitespace between them
    for piece in pieces:
        while not text.startswith(piece, position):
            assert text[position].isspace()
            position += 1
        position += len(piece)
    assert not text[position:].strip()


def test_earlier_pieces_never_change_as_a_reply_grows() -> None:
    """Streaming relies on this: once a message is full, its text is final."""
    rng = random.Random(7)
    words = ["She", "laughed.", "Then", "the", "door", "opened", "wide", "and", "then?", "\n"]
    text = " ".join(rng.choice(words) for _ in range(600))
    limit = 200
    final = split_for_discord(text, limit=limit)
    for end in range(1, len(text), 37):
        partial = split_for_discord(text[:end].strip(), limit=limit)
        assert partial[:-1] == final[: len(partial) - 1]
