"""Scenes: close with per-POV summaries and story threads; guest join/leave; meanwhile.

A closing scene gives every witness its own summary (a ``manual_edit`` of its memory's
``pov_summary``), written only from the lines that witness saw. Thread detection may fail; it is
logged and swallowed and never fails the close.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from pydantic import ValidationError

from bot.engine.context import Cast, StoryContext
from bot.engine.errors import (
    AlreadyInScene,
    GuestNotInScene,
    Invalid,
    MeanwhileAlreadyOpen,
    MeanwhileOpen,
    NeedsGuest,
    NoGuestToJoin,
    NoMeanwhile,
    NoSuchCharacter,
    NotTheGuest,
)
from bot.engine.macros import Names
from bot.engine.opening import relationship_seeds
from bot.engine.summaries import detect_threads, summarize_pov, write_digest
from bot.store import YOU, Batch, StoreError, append, append_events
from bot.store.events import (
    CastChanged,
    DerivationsReplaced,
    DigestWritten,
    EdgeUpdate,
    ManualEdit,
    MeanwhileSceneClosed,
    MeanwhileSceneStarted,
    Payload,
    SceneClosed,
    SceneOpened,
    StoryThreadDetected,
)
from bot.store.views import Memory, Scene, present_entities, speaker_label
from bot.validation import all_problems

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SceneClose:
    scene_id: int
    summaries: dict[str, str]
    threads: tuple[str, ...]
    new_scene_id: int | None = None
    digest: str = ""
    thread_id: int = 0


async def scene_names(ctx: StoryContext, cast: Cast, scene: Scene) -> dict[str, str]:
    """Names of everyone in ``scene``, also of a guest who has since left the story's cast."""
    names = cast.names()
    for entity in scene.participants:
        if entity not in names:
            character = await ctx.views.character(cast.chat.guild_id, entity)
            names[entity] = character.name if character is not None else entity
    return names


async def _scene_lines(ctx: StoryContext, cast: Cast, scene: Scene) -> list[str]:
    names = await scene_names(ctx, cast, scene)
    lines = []
    for beat in await ctx.views.scene_beats(scene.id):
        if not beat.text.strip():
            continue
        lines.append(f"{speaker_label(beat, cast.you.name, names)}: {beat.text}")
    return lines


async def write_pov_summaries(ctx: StoryContext, cast: Cast, scene: Scene) -> dict[str, str]:
    """One summary per witness that has memories in ``scene``, from its own memories only."""
    by_owner: dict[str, list[Memory]] = {}
    for memory in await ctx.views.scene_memories(scene.id):
        by_owner.setdefault(memory.owner_id, []).append(memory)
    names = await scene_names(ctx, cast, scene)
    owners = [o for o in present_entities(scene) if o in by_owner]
    answers = await asyncio.gather(
        *(
            summarize_pov(
                ctx.models,
                owner_id=owner,
                owner_name=names.get(owner, owner),
                you_name=cast.you.name,
                lines=[m.text for m in by_owner[owner]],
                budget_tokens=ctx.settings.prompt_token_budget,
            )
            for owner in owners
        )
    )
    events: list[Payload] = []
    summaries: dict[str, str] = {}
    for owner, answer in zip(owners, answers, strict=True):
        text = answer.summary.strip() or " ".join(m.text for m in by_owner[owner])[:1500]
        summaries[owner] = text
        events.append(
            ManualEdit(
                target_kind="memory_pov_summary",
                target_id=by_owner[owner][0].id,
                new_value=text,
                chat_id=cast.chat.id,
                scene_id=scene.id,
            )
        )
        others = [e for e in present_entities(scene) if e not in {owner, YOU}]
        learned = answer.knowledge_facts or answer.relationship_summary
        if learned and owner != YOU and len(others) + (YOU in scene.participants) == 1:
            target = others[0] if others else YOU
            events.append(
                EdgeUpdate(
                    source_id=owner,
                    target_id=target,
                    chat_id=cast.chat.id,
                    knowledge_facts=answer.knowledge_facts[:10],
                    relationship_summary=answer.relationship_summary or None,
                    scene_id=scene.id,
                )
            )
    if events:
        await append_events(ctx.db, events)
    return summaries


async def record_threads(
    ctx: StoryContext, cast: Cast, scene: Scene, lines: list[str]
) -> tuple[str, ...]:
    """Detect story threads; any failure is logged and swallowed."""
    try:
        threads = await detect_threads(
            ctx.models,
            names=_names(cast),
            lines=lines,
            budget_tokens=ctx.settings.prompt_token_budget,
        )
        if threads:
            await append_events(
                ctx.db,
                [
                    StoryThreadDetected(
                        chat_id=cast.chat.id, scene_id=scene.id, title=t.title, summary=t.summary
                    )
                    for t in threads
                ],
            )
        return tuple(t.title for t in threads)
    except (asyncio.CancelledError, StoreError):
        raise
    except Exception:
        log.warning(
            "story thread detection failed for scene %d; the close goes on", scene.id, exc_info=True
        )
        return ()


def _names(cast: Cast) -> Names:
    """Whole-scene prompts (digest, threads) read ``{{char}}`` as the host, whose story it is."""
    return Names(char=cast.host.name, user=cast.you.name)


def _no_meanwhile(cast: Cast) -> None:
    if cast.meanwhile is not None:
        raise MeanwhileOpen(cast.meanwhile)


async def close_you_scene(
    ctx: StoryContext,
    cast: Cast,
    *,
    participants: list[str] | None = None,
    cast_change: str | None = None,
    seeds: list[Payload] | None = None,
) -> SceneClose:
    """Close the open you-scene and open the next one (with ``participants``, default the same).

    The close, the cast change and the next scene commit together before any LLM call, so a
    close cut short (shutdown, a failed call) never leaves the story without an open scene;
    the summaries and story threads of the closed scene follow.
    """
    _no_meanwhile(cast)
    scene = cast.scene
    batch = Batch()
    if cast_change is not None:
        batch.add(CastChanged(chat_id=cast.chat.id, guest_bot_id=cast_change))
    batch.add(SceneClosed(scene_id=scene.id, closed_at=cast.chat.world_time, chat_id=cast.chat.id))
    opened = batch.add(
        SceneOpened(
            chat_id=cast.chat.id,
            container_id=await ctx.views.place_of(scene.id),
            started_at=cast.chat.world_time,
            participants=participants or list(scene.participants),
        )
    )
    batch.extend(seeds or [])
    ids = await append_events(ctx.db, batch)
    summaries = await write_pov_summaries(ctx, cast, scene)
    threads = await record_threads(ctx, cast, scene, await _scene_lines(ctx, cast, scene))
    return SceneClose(scene.id, summaries, threads, new_scene_id=ids[opened.index])


async def guest_joins(ctx: StoryContext, cast: Cast, guest_id: str | None) -> SceneClose:
    chosen = guest_id or cast.chat.guest_id
    if not chosen:
        raise NoGuestToJoin()
    if chosen == cast.host.id:
        raise AlreadyInScene(chosen, host=True)
    if chosen in cast.scene.participants:
        raise AlreadyInScene(chosen)
    guest = await ctx.views.character(cast.chat.guild_id, chosen)
    if guest is None:
        raise NoSuchCharacter(chosen)
    seen = await ctx.views.relationship(cast.chat.id, chosen, YOU)
    seeds = []
    if not seen.summary and not seen.knowledge_facts:  # a first meeting
        try:
            # a card's view of you, its macros filled in, may outgrow the edge's summary
            seeds = relationship_seeds(cast.chat.id, [guest], cast.you.name)
        except ValidationError as exc:
            raise Invalid("guest", all_problems(exc, root="(payload)")) from None
    return await close_you_scene(
        ctx,
        cast,
        participants=[YOU, cast.host.id, chosen],
        cast_change=chosen if chosen != cast.chat.guest_id else None,
        seeds=seeds,
    )


async def guest_leaves(ctx: StoryContext, cast: Cast, guest_id: str | None) -> SceneClose:
    guest = cast.guest
    if guest is None or guest.id not in cast.scene.participants:
        raise GuestNotInScene()
    if guest_id and guest_id != guest.id:
        raise NotTheGuest(guest_id)
    return await close_you_scene(ctx, cast, participants=[YOU, cast.host.id])


async def start_meanwhile(ctx: StoryContext, cast: Cast, *, thread_id: int, premise: str) -> int:
    if cast.meanwhile is not None:
        raise MeanwhileAlreadyOpen(cast.meanwhile)
    if cast.guest is None:
        raise NeedsGuest()
    started = MeanwhileSceneStarted(
        chat_id=cast.chat.id,
        parent_scene_id=cast.scene.id,
        host_bot_id=cast.host.id,
        guest_bot_id=cast.guest.id,
        started_at=cast.chat.world_time,
        thread_id=thread_id,
        premise=premise,
    )
    return await append(ctx.db, started)


async def end_meanwhile(ctx: StoryContext, cast: Cast) -> SceneClose:
    """Close the meanwhile scene: summaries for host and guest only, then the player's digest."""
    scene = cast.meanwhile
    if scene is None:
        raise NoMeanwhile()
    closed = MeanwhileSceneClosed(
        scene_id=scene.id, closed_at=cast.chat.world_time, chat_id=cast.chat.id
    )
    await append(ctx.db, closed)
    summaries = await write_pov_summaries(ctx, cast, scene)
    lines = await _scene_lines(ctx, cast, scene)
    digest = await _write_digest(ctx, cast, scene, lines)
    threads = await record_threads(ctx, cast, scene, lines)
    return SceneClose(scene.id, summaries, threads, digest=digest, thread_id=scene.thread_id)


async def _write_digest(ctx: StoryContext, cast: Cast, scene: Scene, lines: list[str]) -> str:
    answer = await write_digest(
        ctx.models, names=_names(cast), lines=lines, budget_tokens=ctx.settings.prompt_token_budget
    )
    names = " and ".join(
        n for k, n in (await scene_names(ctx, cast, scene)).items() if k in scene.participants
    )
    digest = answer.summary.strip() or f"While you were away, {names} spent some time together."
    await append(
        ctx.db, DigestWritten(chat_id=cast.chat.id, meanwhile_scene_id=scene.id, text=digest)
    )
    return digest


def scene_replaced(chat_id: str, scene_id: int) -> DerivationsReplaced:
    """What a scene's close derived (summaries, threads, digest) leaves the story."""
    return DerivationsReplaced(chat_id=chat_id, scene_id=scene_id, reason="edit")


async def summarize_again(ctx: StoryContext, cast: Cast, scene: Scene) -> None:
    """A closed scene's summaries, threads (and a meanwhile's digest) from its lines as they
    read now. The caller has written ``scene_replaced`` first, in the edit's own batch, so no
    old words remain even if this is cut short."""
    await write_pov_summaries(ctx, cast, scene)
    lines = await _scene_lines(ctx, cast, scene)
    if scene.kind == "meanwhile":
        await _write_digest(ctx, cast, scene, lines)
    await record_threads(ctx, cast, scene, lines)
