"""The turn pipeline: one beat from the player's prose to the world updated.

Per you-turn the LLM budget is one classification call (run beside the stream, so the first
token never waits on it), one narrative stream, and one state-update call per present
character. The beat's events (user_turn, assistant_turn, a memory per witness) commit in one
transaction; a stopped or failed beat keeps its text but writes no memories or state updates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from bot.engine.clean import LeadingLabel, speaker_labels
from bot.engine.context import Cast, StoryContext
from bot.engine.errors import StoryError
from bot.engine.parse import fallback_segments, parse_turn
from bot.engine.prompts import PointOfView, build_narrative_prompt
from bot.engine.recall import recall
from bot.engine.sink import BeatEnd, BeatSink, BeatStatus, GuardedSink, Speaker
from bot.engine.state import ask_state_update
from bot.engine.views import (
    NARRATION,
    Beat,
    Character,
    Scene,
    player_label,
    present_entities,
)
from bot.llm import LLMError, Message
from bot.store import YOU, EventSpec, append_and_apply, append_events
from bot.store.events import MAX_TEXT, Segment

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
        lines.append(f"{player_label(cast.you.name, meanwhile=meanwhile)}: {prose}")
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
    answering: Beat | None = None,
) -> TurnResult:
    """Stream one beat by ``speaker`` and write it; the caller holds the chat's turn lock.

    ``prose`` is a new player beat (classified and written as a user_turn); ``None`` makes a
    beat of the characters' own, or, with ``answering``, a new reply to a player beat already
    in the transcript (regenerate).
    """
    scene = cast.meanwhile or cast.scene
    present = present_entities(scene)
    guarded = GuardedSink(sink)
    turn = _Turn(
        cast, scene, speaker, prose, answering=answering, author_id=author_id, message_id=message_id
    )
    started_id = await append_and_apply(ctx.db, kind="turn_started", payload=turn.started())
    pov = await _point_of_view(ctx, cast, scene, speaker, prose or "")
    messages = build_narrative_prompt(
        pov,
        _cue(cast, prose, speaker),
        budget_tokens=ctx.settings.prompt_token_budget,
    )
    await guarded.begin(speaker_of(speaker))
    stream = _ReplyStream(ctx, cast.chat.id, speaker, guarded)
    stream.start(messages, stop=_stop_sequences(cast, present, speaker))
    # Asked for after the stream, so the narrative request is first in line for an LLM slot:
    # the classification never delays the first token, whatever the concurrency limit.
    classify = (
        asyncio.create_task(parse_turn(ctx.models, prose), name=f"classify {cast.chat.id}")
        if prose
        else None
    )
    text, status, failure = await stream.finished()
    error = str(failure) if failure else ""
    reason = failure.public_reason if failure else ""
    ended = BeatEnd(text=text, status=status, error=error, reason=reason)
    message_ids = tuple(await guarded.end(ended))
    segments = await _segments(classify, prose, wait=status == "done")

    events = turn.events(started_id, text, status, segments, message_ids)
    lines = beat_lines(
        cast,
        prose or (answering.text if answering else None),
        speaker,
        text,
        turn.meanwhile_id is not None,
    )
    if status == "done":
        events.extend(_memories(cast, scene, present, lines, turn.beat_index))
    try:
        ids = await append_events(ctx.db, events)
    except Exception:
        log.exception(
            "could not write the beat of chat %s; closing it as interrupted", cast.chat.id
        )
        await _close_unwritten(ctx, turn, started_id, text)
        raise StoryError("that beat could not be saved; it is kept as interrupted") from None
    beat_id = ids[turn.beat_index]
    if status == "done":
        await _update_state(ctx, cast, pov, lines, beat_id)
    return TurnResult(
        speaker=speaker_of(speaker),
        text=text,
        status=status,
        assistant_turn_id=beat_id,
        user_turn_id=ids[0] if prose is not None else None,
        meanwhile_scene_id=turn.meanwhile_id,
        message_ids=message_ids,
        error=error,
    )


def _stop_sequences(cast: Cast, present: tuple[str, ...], speaker: Character) -> list[str]:
    """A model that starts speaking for someone else present stops there."""
    names = cast.names()
    return [f"\n{names[e]}:" for e in present if e != speaker.id and e in names][:4]


def _clip(text: str) -> str:
    """Keep text within what an event may hold; a runaway reply must not lose the whole beat."""
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


class _Turn:
    """The events of one beat, built from what the turn knows at each step."""

    def __init__(
        self,
        cast: Cast,
        scene: Scene,
        speaker: Character,
        prose: str | None,
        *,
        answering: Beat | None,
        author_id: int,
        message_id: int,
    ) -> None:
        self.chat_id = cast.chat.id
        self.scene_id = cast.scene.id
        self.meanwhile_id = cast.meanwhile.id if cast.meanwhile else None
        self.present_set_kind = scene.present_set_kind
        self.witnesses = list(present_entities(scene))
        self.speaker_id = speaker.id
        self.prose = prose
        self.answering_id = answering.id if answering is not None else None
        self.author_id = author_id
        self.message_id = message_id
        self.beat_index = 0 if prose is None else 1

    def _where(self) -> dict[str, object]:
        return {
            "chat_id": self.chat_id,
            "scene_id": self.scene_id,
            "present_set_kind": self.present_set_kind,
            "meanwhile_scene_id": self.meanwhile_id,
        }

    def started(self) -> dict[str, object]:
        return {
            **self._where(),
            "speaker_id": self.speaker_id,
            "prose": self.prose or "",
            "author_id": self.author_id,
            "message_id": self.message_id,
            "answers_turn_id": self.answering_id,
        }

    def events(
        self,
        started_id: int,
        text: str,
        status: BeatStatus,
        segments: list[Segment],
        message_ids: tuple[int, ...],
    ) -> list[EventSpec]:
        events: list[EventSpec] = []
        if self.prose is not None:
            events.append(
                (
                    "user_turn",
                    {
                        **self._where(),
                        "prose": self.prose,
                        "segments": [s.model_dump() for s in segments],
                        "witnesses": self.witnesses,
                        "turn_started_id": started_id,
                        "author_id": self.author_id,
                        "message_id": self.message_id,
                    },
                )
            )
        reply = {
            **self._where(),
            "speaker_id": self.speaker_id,
            "text": _clip(text),
            "witnesses": self.witnesses,
            "cancelled": status == "stopped",
            "interrupted": status == "failed",
            "turn_started_id": started_id,
            "message_ids": list(message_ids),
        }
        if self.prose is not None:
            events.append(("assistant_turn", lambda ids: {**reply, "answers_turn_id": ids[0]}))
        else:
            events.append(("assistant_turn", {**reply, "answers_turn_id": self.answering_id}))
        return events


async def _close_unwritten(ctx: StoryContext, turn: _Turn, started_id: int, text: str) -> None:
    """Best effort: close a beat whose events could not be written, as the restart would."""
    try:
        events = turn.events(started_id, text, "failed", [], ())
        await append_events(ctx.db, events)
    except Exception:
        log.exception("closing the unwritten beat failed too; the next start will close it")


class _ReplyStream:
    """The streaming reply, in a task registered per chat so ``cancel`` can stop it."""

    def __init__(self, ctx: StoryContext, chat_id: str, speaker: Character, sink: BeatSink) -> None:
        self.ctx = ctx
        self.chat_id = chat_id
        self.sink = sink
        self.parts: list[str] = []
        self.label = LeadingLabel(speaker_labels(speaker.name))
        self.task: asyncio.Task[None] | None = None

    def start(self, messages: Sequence[Message], *, stop: list[str]) -> None:
        self.task = asyncio.create_task(self._run(messages, stop), name=f"stream {self.chat_id}")

    async def _show(self, text: str) -> None:
        if text:
            self.parts.append(text)
            await self.sink.append(text)

    async def _run(self, messages: Sequence[Message], stop: list[str]) -> None:
        async for chunk in self.ctx.models.narrate(messages, stop=stop):
            await self._show(self.label.feed(chunk))
        await self._show(self.label.flush())

    async def finished(self) -> tuple[str, BeatStatus, LLMError | None]:
        """The text shown, and how the reply ended: done, stopped (cancel) or failed (why)."""
        task = self.task
        assert task is not None
        async with self.ctx.in_flight.registered(self.chat_id, task):
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if not task.cancelled() or (current is not None and current.cancelling()):
                    raise
                return "".join(self.parts), "stopped", None
            except LLMError as exc:
                log.warning("the reply in chat %s failed: %s", self.chat_id, exc)
                return "".join(self.parts), "failed", exc
        return "".join(self.parts), "done", None


def _cue(cast: Cast, prose: str | None, speaker: Character) -> str:
    if prose is None:
        return f"(Continue the scene as {speaker.name}.)"
    if cast.meanwhile is not None:
        return f"{NARRATION}: {prose}"
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


async def _segments(
    classify: asyncio.Task[list[Segment]] | None, prose: str | None, *, wait: bool
) -> list[Segment]:
    """The classifier's segments; a stopped or failed beat does not wait for them."""
    if classify is None or prose is None:
        return []
    if not wait:
        classify.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await classify
        return fallback_segments(prose)
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
    ctx: StoryContext,
    cast: Cast,
    pov: PointOfView,
    lines: list[str],
    beat_id: int,
) -> None:
    """One state-update call per present character, concurrently within the LLM limit.

    Nothing this beat wrote touches activities, so the point of view's reading still holds.
    """
    names = cast.names()
    present = pov.present
    sources = [c for c in (cast.character(e) for e in present) if c is not None]
    activities = pov.activities
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
