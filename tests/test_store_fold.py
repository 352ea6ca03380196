"""A SQLite rebuild's fast path (``bot.store.fold``) against the handlers and against
incremental application, on stories the replay generator (``test_store_replay``) never draws:
witnesses written on a beat (repeated ones too) in every present set, memories and edge
updates of a player's line, of no beat and of a scene (what a scene's close teaches), facts
that differ only in case and spacing, across the bounds of the fold's known facts and of the
bulk queue."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

import tests.helpers.store_factories as f
from bot.store import append_and_apply, bulk, fold, project, projector
from tests.helpers.stores import fresh_store
from tests.test_store_replay import CHARACTERS, WORDS, Chat, Story, actions

PEOPLE = ("you", *CHARACTERS)
FACTS = ("Likes  TEA", "likes tea", " owes money ", "OWES MONEY", "saw the letter", "")
PRESENT_SETS = ("you_host", "you_host_guest", "host_guest")


class WideStory(Story):
    """``Story`` with beats, memories and edge updates of every shape a fold reads."""

    def _turn(self, chat: Chat, b: int, delta: tuple[int, int], word: int) -> None:
        scene = self._any_scene(chat, b, delta, word)
        shape: dict[str, Any] = {
            "meanwhile_scene_id": scene if scene in chat.meanwhiles else None,
            "present_set_kind": PRESENT_SETS[b % 3],
        }
        if b % 4 == 1:  # witnesses written on the beat, each twice
            shape["witnesses"] = [PEOPLE[(b + i) % 4] for i in range(1 + b % 3)] * 2
        started = None
        if b % 3:
            started = self.emit("turn_started", f.turn_started(scene, chat.id, **shape), chat)
        if b % 2:
            prose = f"line {self.next_id}"
            line = f.user_turn(scene, chat.id, prose=prose, turn_started_id=started, **shape)
            chat.user_turns.append(self.emit("user_turn", line, chat))
        reply = f.assistant_turn(
            scene,
            chat.id,
            text=f"reply {self.next_id} about the {WORDS[word]}",
            speaker_id=CHARACTERS[b % 3],
            cancelled=b % 5 == 0,
            turn_started_id=started,
            message_ids=[b, b + 1] if b % 2 else [],
            **shape,
        )
        if b % 7:
            chat.assistant_turns.append(self.emit("assistant_turn", reply, chat))

    def _beat(self, chat: Chat, b: int) -> int | None:
        beats = chat.user_turns + chat.assistant_turns
        return None if not beats or b % 6 == 0 else beats[b % len(beats)]

    def _memory(self, chat: Chat, b: int, delta: tuple[int, int], word: int) -> None:
        payload = f.memory_written(
            PEOPLE[b % 4],
            self._any_scene(chat, b, delta, word),
            chat.id,
            witness=(b % 2, 1, (b // 2) % 2),
            text=f"memory {self.next_id} of the {WORDS[word]}",
            beat_id=self._beat(chat, b),
        )
        chat.memories.append(self.emit("memory_written", payload, chat))

    def _edge(self, chat: Chat, b: int, delta: tuple[int, int], word: int) -> None:
        beat = self._beat(chat, b)
        of_scene = (beat is None or b % 5 == 0) and b % 11 != 0
        payload = f.edge_update(
            PEOPLE[b % 4],
            PEOPLE[(b + 1 + word) % 4],
            chat.id,
            affinity_delta=delta[0],
            trust_delta=delta[1],
            knowledge_facts=[FACTS[word], FACTS[(b + word) % 6], FACTS[b % 6]],
            relationship_summary=None if b % 2 else f"summary {self.next_id}",
            beat_id=beat,
            scene_id=self._any_scene(chat, b, delta, word) if of_scene else None,
        )
        self.emit("edge_update", payload, chat)


async def folds_match(events: list[tuple[str, dict[str, Any]]]) -> None:
    defaults = {kind: copy.deepcopy(k.defaults) for kind, k in fold.FAST_KINDS.items()}
    async with fresh_store("sqlite") as db:
        for kind, payload in events:
            await append_and_apply(db, kind=kind, payload=payload)
        incremental = await f.snapshot(db, WORDS)
        await project(db)
        assert await f.snapshot(db, WORDS) == incremental
        fast_kinds, projector.FAST_KINDS = projector.FAST_KINDS, {}
        try:
            await project(db)  # the handlers alone
        finally:
            projector.FAST_KINDS = fast_kinds
        assert await f.snapshot(db, WORDS) == incremental
    # the defaults every payload written before a field shares are never changed by a fold
    assert {kind: k.defaults for kind, k in fold.FAST_KINDS.items()} == defaults


@pytest.mark.parametrize("bounded", [False, True], ids=["as-shipped", "tiny-bounds"])
def test_a_fast_rebuild_gives_the_incremental_rows_on_wide_stories(
    bounded: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if bounded:  # the known facts forgotten, and the queue sent, every few writes
        monkeypatch.setattr(fold, "KNOWN_FACTS", 2)
        monkeypatch.setattr(bulk, "FLUSH_AT", 3)

    @settings(
        max_examples=50,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(drawn=actions)
    def check(drawn: list[tuple[str, int, int, tuple[int, int], int]]) -> None:
        story = WideStory()
        for op, a, b, delta, word in drawn:
            story.act(op, a, b, delta, word)
        asyncio.run(folds_match(story.events))

    check()
