"""World-info activation (bot/engine/worldinfo.py): given books and scanned text, what fires."""

from __future__ import annotations

from typing import Any

import pytest

from bot.cards.lorebook import Lorebook, read_character_book, read_world_info
from bot.engine.cardtext import DepthPrompt, insert_at_depth
from bot.engine.worldinfo import Activation, Scanned, activate, lore_tokens
from bot.llm import Message
from bot.store.events import LoreEntry


def entry(*keys: str, content: str = "", **fields: Any) -> LoreEntry:
    return LoreEntry(keys=list(keys), content=content or f"lore of {keys[0]}", **fields)


def book(*entries: LoreEntry, **settings: Any) -> Lorebook:
    return Lorebook(name="book", entries=entries, **settings)


def lines(*texts: str) -> list[Scanned]:
    return [Scanned(f"line {i}", text) for i, text in enumerate(texts)]


def fire(
    books: list[Lorebook] | Lorebook,
    recent: list[str] = (),  # type: ignore[assignment]
    current: str | None = None,
    *,
    max_tokens: int = 10_000,
) -> Activation:
    shelf = books if isinstance(books, list) else [books]
    now = Scanned("the line being answered", current) if current is not None else None
    return activate(shelf, lines(*recent), now, max_tokens=max_tokens)


def contents(activation: Activation) -> list[str]:
    return [f.entry.content for f in activation.fired]


# --- keys --------------------------------------------------------------------------------


def test_a_key_in_the_current_line_fires_and_says_where() -> None:
    activation = fire(book(entry("lighthouse")), current="We reach the Lighthouse.")
    assert contents(activation) == ["lore of lighthouse"]
    assert activation.fired[0].reason == "key 'lighthouse' in the line being answered"


def test_no_key_no_fire_and_an_entry_without_keys_never_fires() -> None:
    assert fire(book(entry("dragon"), LoreEntry(content="orphan")), current="a cat").fired == ()


def test_any_of_several_keys_fires() -> None:
    assert contents(fire(book(entry("lamp", "beacon")), current="the beacon")) == ["lore of lamp"]


def test_disabled_entries_never_fire_even_when_constant() -> None:
    off = book(entry("lamp", enabled=False), entry("x", constant=True, enabled=False))
    assert fire(off, current="lamp").fired == ()


def test_constant_entries_fire_without_keys_in_the_text() -> None:
    activation = fire(book(entry("never", constant=True)), current="nothing here")
    assert contents(activation) == ["lore of never"]
    assert activation.fired[0].reason == "constant"


# --- case, whole words, regex --------------------------------------------------------------


def test_keys_ignore_case_unless_the_entry_is_case_sensitive() -> None:
    assert fire(book(entry("Mira")), current="mira waves").fired
    assert not fire(book(entry("Mira", case_sensitive=True)), current="mira waves").fired
    assert fire(book(entry("Mira", case_sensitive=True)), current="Mira waves").fired


def test_keys_match_inside_words_unless_whole_words_are_asked_for() -> None:
    assert fire(book(entry("art")), current="the start").fired
    assert not fire(book(entry("art", match_whole_words=True)), current="the start").fired
    assert fire(book(entry("art", match_whole_words=True)), current="fine art.").fired


def test_v3_use_regex_treats_keys_as_patterns() -> None:
    regex_entry = entry(r"wreck(s|age)?\b", use_regex=True)
    assert fire(book(regex_entry), current="the wreckage").fired
    assert not fire(book(entry(r"wreck(s|age)?\b")), current="the wreckage").fired


def test_sillytavern_slash_keys_are_regexes_with_flags() -> None:
    assert fire(book(entry("/^the (red|blue) door$/i")), current="The Red Door").fired
    assert not fire(book(entry("/^the (red|blue) door$/")), current="The Red Door").fired


def test_a_broken_regex_key_is_skipped_not_fatal() -> None:
    broken = book(entry("(unclosed", use_regex=True), entry("ok"))
    assert contents(fire(broken, current="(unclosed ok")) == ["lore of ok"]


def test_a_catastrophic_regex_times_out_instead_of_stalling() -> None:
    evil = entry("(a+)+$", use_regex=True)
    assert not fire(book(evil), current="a" * 40 + "!").fired


def test_macros_in_keys_are_resolved_before_matching() -> None:
    shelf = [book(entry("{{char}}'s lamp"))]
    activation = activate(
        shelf,
        [],
        Scanned("now", "Mira's lamp"),
        max_tokens=1000,
        resolve=lambda text: text.replace("{{char}}", "Mira"),
    )
    assert activation.fired


# --- secondary keys ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("logic", "text", "fires"),
    [
        ("and_any", "lamp storm", True),
        ("and_any", "lamp", False),
        ("and_all", "lamp storm night", True),
        ("and_all", "lamp storm", False),
        ("not_any", "lamp", True),
        ("not_any", "lamp night", False),
        ("not_all", "lamp storm", True),
        ("not_all", "lamp storm night", False),
    ],
)
def test_secondary_keys_follow_the_selective_logic(logic: str, text: str, fires: bool) -> None:
    selective = entry(
        "lamp", secondary_keys=["storm", "night"], selective=True, selective_logic=logic
    )
    assert bool(fire(book(selective), current=text).fired) is fires


def test_secondary_keys_are_ignored_when_the_entry_is_not_selective() -> None:
    loose = entry("lamp", secondary_keys=["storm"], selective=False)
    assert fire(book(loose), current="lamp").fired


def test_secondary_keys_never_fire_an_entry_alone() -> None:
    selective = entry("lamp", secondary_keys=["storm"], selective=True)
    assert not fire(book(selective), current="storm").fired


# --- scan depth ----------------------------------------------------------------------------


def test_scan_depth_reaches_only_the_newest_beats() -> None:
    recent = ["the dragon sleeps", "tea", "more tea"]
    assert not fire(book(entry("dragon")), recent).fired  # default depth: the last two
    assert fire(book(entry("dragon"), scan_depth=3), recent).fired
    assert fire(book(entry("dragon", scan_depth=3)), recent).fired  # the entry's own depth wins
    assert not fire(book(entry("dragon", scan_depth=1), scan_depth=3), recent).fired


def test_scan_depth_zero_scans_only_the_current_line() -> None:
    assert not fire(book(entry("dragon"), scan_depth=0), ["dragon"], "tea").fired
    assert fire(book(entry("dragon"), scan_depth=0), ["tea"], "dragon").fired


def test_the_reason_names_the_beat_that_fired_it() -> None:
    activation = fire(book(entry("dragon")), ["a dragon", "tea"])
    assert activation.fired[0].reason == "key 'dragon' in line 0"


# --- budget and order ----------------------------------------------------------------------


def test_entries_are_inserted_in_insertion_order() -> None:
    shelf = book(
        entry("a", content="third", insertion_order=30),
        entry("a", content="first", insertion_order=10),
        entry("a", content="second", insertion_order=20),
    )
    assert contents(fire(shelf, current="a")) == ["first", "second", "third"]


def test_the_book_budget_drops_the_lowest_priority_first() -> None:
    big = "x" * 400  # about 101 tokens each
    shelf = book(
        entry("a", content=big + "1", priority=1, insertion_order=1),
        entry("a", content=big + "2", priority=9, insertion_order=2),
        entry("a", content=big + "3", priority=5, insertion_order=3),
        token_budget=2 * lore_tokens(big + "1"),
    )
    activation = fire(shelf, current="a")
    assert contents(activation) == [big + "2", big + "3"]
    assert [f.entry.content for f in activation.over_budget] == [big + "1"]
    assert "over budget" in activation.describe()


def test_the_prompt_cap_applies_across_books() -> None:
    text = "y" * 200
    cost = lore_tokens(text)
    shelf = [book(entry("a", content=text)), book(entry("a", content=text + "!"))]
    assert len(fire(shelf, current="a", max_tokens=cost + 2).fired) == 1
    assert len(fire(shelf, current="a", max_tokens=3 * cost).fired) == 2


# --- recursion -----------------------------------------------------------------------------


def test_recursive_books_fire_entries_named_by_other_entries() -> None:
    chain = [
        entry("castle", content="The castle has a dragon."),
        entry("dragon", content="The dragon hoards gold."),
        entry("gold", content="Gold is cursed."),
    ]
    assert contents(fire(book(*chain), current="castle")) == ["The castle has a dragon."]
    fired = fire(book(*chain, recursive_scanning=True), current="castle").fired
    assert [f.entry.content for f in fired] == [e.content for e in chain]
    assert fired[1].reason == "recursion: key 'dragon' in entry 'castle'"


def test_recursion_respects_exclude_and_prevent() -> None:
    excluded = [
        entry("castle", content="The castle has a dragon."),
        entry("dragon", content="hoard", exclude_recursion=True),
    ]
    assert len(fire(book(*excluded, recursive_scanning=True), current="castle").fired) == 1
    prevented = [
        entry("castle", content="The castle has a dragon.", prevent_recursion=True),
        entry("dragon", content="hoard"),
    ]
    assert len(fire(book(*prevented, recursive_scanning=True), current="castle").fired) == 1


def test_recursion_ends_on_a_cycle() -> None:
    cycle = [entry("a", content="see b"), entry("b", content="see a")]
    assert len(fire(book(*cycle, recursive_scanning=True), current="a").fired) == 2


# --- position ------------------------------------------------------------------------------


def test_position_splits_before_and_after_the_character() -> None:
    shelf = book(
        entry("a", content="world", position="before_char"),
        entry("a", content="about her", position="after_char"),
    )
    activation = fire(shelf, current="a")
    assert activation.texts("before_char") == ["world"]
    assert activation.texts("after_char") == ["about her"]


# --- the witness rule ----------------------------------------------------------------------


def test_only_what_is_handed_in_is_scanned() -> None:
    """The caller hands in the beats the speaker witnessed: a word said elsewhere cannot fire."""
    witnessed_by_tomas = ["Mira: good evening", "You: a quiet night"]
    shelf = book(entry("letter"), scan_depth=10)
    assert not fire(shelf, witnessed_by_tomas, current="").fired
    assert fire(shelf, [*witnessed_by_tomas, "Mira: the letter"]).fired


# --- reading books -------------------------------------------------------------------------


def test_a_v2_character_book_is_read_with_sillytavern_extensions() -> None:
    raw = {
        "scan_depth": 4,
        "token_budget": 300,
        "recursive_scanning": True,
        "entries": [
            {
                "keys": ["lamp"],
                "secondary_keys": ["storm"],
                "selective": True,
                "content": "c",
                "insertion_order": 7,
                "priority": 3,
                "position": "after_char",
                "case_sensitive": True,
                "use_regex": True,
                "constant": True,
                "enabled": False,
                "comment": "the lamp",
                "extensions": {
                    "selectiveLogic": 3,
                    "scan_depth": 1,
                    "match_whole_words": True,
                    "exclude_recursion": True,
                    "prevent_recursion": True,
                },
            },
            "not an entry",
            {"keys": "a, b", "content": "comma keys"},
        ],
    }
    lorebook = read_character_book(raw)
    assert (lorebook.scan_depth, lorebook.token_budget, lorebook.recursive_scanning) == (
        4,
        300,
        True,
    )
    first, second = lorebook.entries
    assert first == LoreEntry(
        keys=["lamp"],
        secondary_keys=["storm"],
        selective=True,
        selective_logic="and_all",
        content="c",
        comment="the lamp",
        constant=True,
        enabled=False,
        insertion_order=7,
        priority=3,
        position="after_char",
        case_sensitive=True,
        use_regex=True,
        match_whole_words=True,
        scan_depth=1,
        exclude_recursion=True,
        prevent_recursion=True,
    )
    assert second.keys == ["a", "b"] and second.position == "before_char"


def test_a_sillytavern_world_info_file_is_read() -> None:
    raw = {
        "name": "Vale",
        "entries": {
            "1": {
                "uid": 1,
                "key": ["storm"],
                "keysecondary": ["night"],
                "selectiveLogic": 2,
                "content": "Storms come at night.",
                "comment": "storms",
                "order": 50,
                "position": 1,
                "disable": False,
                "caseSensitive": None,
                "scanDepth": 5,
            },
            "0": {"uid": 0, "key": ["lamp"], "content": "A lamp.", "order": 10, "position": 0},
        },
    }
    lorebook = read_world_info(raw, "vale.json")
    assert lorebook.name == "Vale"
    assert [e.content for e in lorebook.entries] == ["A lamp.", "Storms come at night."]
    storms = lorebook.entries[1]
    assert storms.selective_logic == "not_any" and storms.position == "after_char"
    assert storms.scan_depth == 5 and storms.selective and storms.enabled


def test_sillytavern_at_depth_entries_keep_their_depth_and_role() -> None:
    raw = {
        "entries": {
            "0": {"key": ["a"], "content": "deep", "position": 4, "depth": 0, "role": 2},
            "1": {"key": ["a"], "content": "note", "position": 2},
        }
    }
    deep, note = read_world_info(raw, "w.json").entries
    assert (deep.position, deep.depth, deep.role) == ("at_depth", 0, "assistant")
    assert (note.position, note.depth, note.role) == ("after_char", 4, "system")
    activation = fire(book(deep, note), current="a")
    assert [e.content for e in activation.at_depth()] == ["deep"]
    assert activation.texts("after_char") == ["note"]


def test_notes_go_in_at_their_depths_in_order() -> None:
    chat = [Message(role="user", content=str(i)) for i in range(3)]
    notes = [
        DepthPrompt("a", 1, "system"),
        DepthPrompt("b", 1, "user"),
        DepthPrompt("c", 9, "system"),
    ]
    placed = insert_at_depth(chat, notes)
    assert [m.content for m in placed] == ["c", "0", "1", "a", "b", "2"]
    assert insert_at_depth(chat, []) == chat
