"""The turn pipeline: one beat from the player's prose to the world updated.

Per you-turn the LLM budget is one classification call (run beside the stream, so the first
token never waits on it), one narrative stream, and one state-update call per present
character. The beat's events (user_turn, assistant_turn, a memory per witness) commit in one
transaction; a stopped or failed beat keeps its text but writes no memories or state updates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from bot.engine.clean import LeadingLabel, speaker_labels
from bot.engine.context import Cast, StoryContext
from bot.engine.parse import fallback_segments, parse_turn
from bot.engine.prompts import PointOfView, build_narrative_prompt
from bot.engine.recall import recall
from bot.engine.sink import BeatEnd, BeatSink, BeatStatus, GuardedSink, Speaker
from bot.engine.state import ask_state_update
from bot.engine.views import Character, Scene, present_entities
from bot.llm import LLMError, Message
from bot.store import YOU, EventSpec, append_and_apply, append_events
from bot.store.events import Segment

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TurnResult:
    speaker: Speaker
    text: str
    status: BeatStatus
    assistant_turn_id: int
    user_turn_id: int | None
    meanwhile_scene_id: int | None
    message_ids: tuple[int, ...] = ()
    error: str = ""


def speaker_of(character: Character) -> Speaker:
    return Speaker(id=character.id, name=character.name, avatar=character.card.avatar)


def beat_lines(
    cast: Cast, prose: str | None, speaker: Character, reply: str, meanwhile: bool
) -> list[str]:
    """A beat as plain transcript lines, the raw material of memories and state updates."""
    lines = []
    if prose:
        lines.append(f"{'Narration' if meanwhile else cast.you.name}: {prose}")
    lines.append(f"{speaker.name}: {reply}")
    return lines


async def play_beat(
    ctx: StoryContext,
    cast: Cast,
    speaker: Character,
    prose: str | None,
    sink: BeatSink,
    *,
    author_id: int = 0,
    message_id: int = 0,
    answering: str | None = None,
) -> TurnResult:
    """Stream one beat by ``speaker`` and write it; the caller holds the chat's turn lock.

    ``prose`` is a new player beat (classified and written as a user_turn); ``None`` makes a
    beat of the characters' own, or, with ``answering``, a new reply to a player beat already
    in the transcript (regenerate).
    """
    scene = cast.meanwhile or cast.scene
    meanwhile_id = cast.meanwhile.id if cast.meanwhile else None
    present = present_entities(scene)
    guarded = GuardedSink(sink)
    started_id = await append_and_apply(
        ctx.db,
        kind="turn_started",
        payload={
            "chat_id": cast.chat.id,
            "scene_id": cast.scene.id,
            "speaker_id": speaker.id,
            "prose": prose or "",
            "present_set_kind": scene.present_set_kind,
            "meanwhile_scene_id": meanwhile_id,
            "author_id": author_id,
            "message_id": message_id,
        },
    )
    classify = (
        asyncio.create_task(parse_turn(ctx.models, prose), name=f"classify {cast.chat.id}")
        if prose
        else None
    )
    messages = build_narrative_prompt(
        await _point_of_view(ctx, cast, scene, speaker, prose or ""),
        _cue(cast, prose, speaker),
        budget_tokens=ctx.settings.prompt_token_budget,
    )
    await guarded.begin(speaker_of(speaker))
    others = [
        name for entity, name in cast.names().items() if entity in present and entity != speaker.id
    ]
    # a model that starts speaking for someone else stops there
    stop = [f"\n{name}:" for name in others][:4]
    text, status, error = await _stream(
        ctx, cast.chat.id, messages, guarded, speaker=speaker, stop=stop
    )
    segments = await _segments(classify, prose)
    message_ids = tuple(await guarded.end(BeatEnd(text=text, status=status, error=error)))

    witnesses = list(present)
    events: list[EventSpec] = []
    if prose is not None:
        events.append(
            (
                "user_turn",
                {
                    "chat_id": cast.chat.id,
                    "scene_id": cast.scene.id,
                    "prose": prose,
                    "segments": [s.model_dump() for s in segments],
                    "present_set_kind": scene.present_set_kind,
                    "witnesses": witnesses,
                    "meanwhile_scene_id": meanwhile_id,
                    "turn_started_id": started_id,
                    "author_id": author_id,
                    "message_id": message_id,
                },
            )
        )
    beat_index = len(events)
    events.append(
        (
            "assistant_turn",
            {
                "chat_id": cast.chat.id,
                "scene_id": cast.scene.id,
                "speaker_id": speaker.id,
                "text": text,
                "present_set_kind": scene.present_set_kind,
                "witnesses": witnesses,
                "meanwhile_scene_id": meanwhile_id,
                "cancelled": status == "stopped",
                "interrupted": status == "failed",
                "turn_started_id": started_id,
                "message_ids": list(message_ids),
            },
        )
    )
    lines = beat_lines(cast, prose or answering, speaker, text, meanwhile_id is not None)
    if status == "done":
        events.extend(_memories(cast, scene, present, lines, beat_index))
    ids = await append_events(ctx.db, events)
    beat_id = ids[beat_index]
    if status == "done":
        await _update_state(ctx, cast, present, lines, beat_id)
    return TurnResult(
        speaker=speaker_of(speaker),
        text=text,
        status=status,
        assistant_turn_id=beat_id,
        user_turn_id=ids[0] if prose is not None else None,
        meanwhile_scene_id=meanwhile_id,
        message_ids=message_ids,
        error=error,
    )


def _cue(cast: Cast, prose: str | None, speaker: Character) -> str:
    if prose is None:
        return f"(Continue the scene as {speaker.name}.)"
    if cast.meanwhile is not None:
        return f"Narration: {prose}"
    return f"{cast.you.name}: {prose}"


async def _point_of_view(
    ctx: StoryContext, cast: Cast, scene: Scene, speaker: Character, prose: str
) -> PointOfView:
    """Gather only what ``speaker`` witnessed: its beats, its memories, its own edges."""
    present = present_entities(scene)
    transcript = await ctx.views.witnessed_beats(
        cast.chat.id, speaker.id, ctx.settings.transcript_beats
    )
    shown = {beat.id for beat in transcript}
    memories = await recall(
        ctx.views,
        cast.chat.id,
        speaker.id,
        query=prose,
        limit=ctx.settings.recalled_memories,
        exclude_beats=shown,
        names=list(cast.names().values()),
    )
    relationships = [
        await ctx.views.relationship(cast.chat.id, speaker.id, other)
        for other in present
        if other != speaker.id
    ]
    return PointOfView(
        speaker=speaker,
        you=cast.you,
        chat=cast.chat,
        present=present,
        names=cast.names(),
        relationships=relationships,
        activities=await ctx.views.activities(cast.chat.id, present),
        recalled=memories,
        transcript=transcript,
        premise=scene.premise,
    )


async def _stream(
    ctx: StoryContext,
    chat_id: str,
    messages: Sequence[Message],
    sink: BeatSink,
    *,
    speaker: Character,
    stop: list[str],
) -> tuple[str, BeatStatus, str]:
    """Stream the reply in a registered task; a cancel keeps the text shown so far."""
    parts: list[str] = []
    label = LeadingLabel(speaker_labels(speaker.name))

    async def show(text: str) -> None:
        if text:
            parts.append(text)
            await sink.append(text)

    async def stream_reply() -> None:
        async for chunk in ctx.models.narrate(messages, stop=stop):
            await show(label.feed(chunk))
        await show(label.flush())

    task: asyncio.Task[object] = asyncio.create_task(stream_reply(), name=f"stream {chat_id}")
    async with ctx.in_flight.registered(chat_id, task):
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not task.cancelled() or (current is not None and current.cancelling()):
                raise
            return "".join(parts), "stopped", ""
        except LLMError as exc:
            log.warning("the reply in chat %s failed: %s", chat_id, exc)
            return "".join(parts), "failed", str(exc)
    return "".join(parts), "done", ""


async def _segments(
    classify: asyncio.Task[list[Segment]] | None, prose: str | None
) -> list[Segment]:
    if classify is None or prose is None:
        return []
    try:
        return await classify
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("classifying a turn failed; keeping the prose as one segment")
        return fallback_segments(prose)


def _memories(
    cast: Cast, scene: Scene, present: tuple[str, ...], lines: list[str], beat_index: int
) -> list[EventSpec]:
    """One memory per present witness, each pointing at the beat written in the same batch."""
    flags = {
        "witness_you": int(YOU in present),
        "witness_host": int(cast.host.id in present),
        "witness_guest": int(cast.guest is not None and cast.guest.id in present),
    }
    text = "\n".join(lines)

    def memory(owner: str) -> EventSpec:
        return (
            "memory_written",
            lambda ids: {
                "owner_id": owner,
                "chat_id": cast.chat.id,
                "scene_id": scene.id,
                "text": text,
                "beat_id": ids[beat_index],
                **flags,
            },
        )

    return [memory(owner) for owner in present]


async def _update_state(
    ctx: StoryContext, cast: Cast, present: tuple[str, ...], lines: list[str], beat_id: int
) -> None:
    """One state-update call per present character, concurrently within the LLM limit."""
    names = cast.names()
    sources = [c for c in (cast.character(e) for e in present) if c is not None]
    activities = await ctx.views.activities(cast.chat.id, present)
    requests = []
    for source in sources:
        targets = [
            (t, names.get(t, t), await ctx.views.relationship(cast.chat.id, source.id, t))
            for t in present
            if t != source.id
        ]
        requests.append(
            ask_state_update(
                ctx.models,
                chat_id=cast.chat.id,
                source_id=source.id,
                source_name=source.name,
                persona=source.card.persona,
                beat_text="\n".join(lines),
                targets=targets,
                activity=activities.get(source.id),
                beat_id=beat_id,
            )
        )
    for events in await asyncio.gather(*requests):
        await append_events(ctx.db, events)
