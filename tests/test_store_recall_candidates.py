"""``Views.recall_candidates`` leaves out in SQL what the transcript shows: the same memories,
in the same order, as ``Shown.repeated_by`` filtering the owner's memories newest first."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tests.helpers.store_factories as f
from bot.engine.recall import Shown
from bot.store import append_and_apply, open_db
from bot.store.views import Views

memories = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(0, 5)),  # the beat it remembers (of six), if any
        st.integers(0, 1),  # its scene (of two)
        st.sampled_from(["", "a summary", " "]),  # its scene summary, if it is one
        st.sampled_from([f.HOST, f.GUEST]),  # its owner
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    written=memories,
    shown_beats=st.sets(st.integers(0, 5)),
    shown_scenes=st.sets(st.integers(0, 1)),
    recent=st.integers(0, 12),
)
def test_the_newest_memories_not_shown_are_those_the_python_filter_keeps(
    written: list[tuple[int | None, int, str, str]],
    shown_beats: set[int],
    shown_scenes: set[int],
    recent: int,
) -> None:
    async def check() -> None:
        async with open_db(":memory:") as db:
            seeded = await f.seed_meanwhile_chat(db)
            scene_ids = [seeded.scene_id, seeded.meanwhile_scene_id]
            beat_ids = [
                await append_and_apply(
                    db,
                    kind="assistant_turn",
                    payload=f.assistant_turn(seeded.meanwhile_scene_id, chat_id=seeded.chat_id),
                )
                for _ in range(6)
            ]
            beats = {beat_ids[b] for b in shown_beats}
            scenes = {scene_ids[s] for s in shown_scenes}
            for beat, scene, summary, owner in written:
                payload = f.memory_written(
                    owner,
                    scene_id=scene_ids[scene],
                    chat_id=seeded.chat_id,
                    beat_id=None if beat is None else beat_ids[beat],
                    pov_summary=summary,
                )
                await append_and_apply(db, kind="memory_written", payload=payload)
            views = Views(db)
            seen = Shown([])
            seen.beats, seen.scenes = beats, scenes
            earlier, _ = await views.recall_candidates(
                seeded.chat_id,
                f.HOST,
                recent=recent,
                beat_ids=beats,
                scene_ids=scenes,
                words=[],
                matching=0,
            )
            everything = await views.memories(seeded.chat_id, f.HOST, limit=1000)
            assert len(everything) == sum(owner == f.HOST for *_, owner in written)
            kept = [m for m in everything if not seen.repeated_by(m)][:recent]
            assert earlier == kept

    asyncio.run(check())
