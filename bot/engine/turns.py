"""The turn pipeline: one beat from the player's prose to the world updated.

Order: ``turn_started`` (so a crash mid-stream is found at the next start), the narrative
stream (its text checkpointed every few seconds), then at once the beat itself (player line,
reply, a memory per witness) in one transaction, so a reply the player has read is never
lost. Only then the JSON calls: classification of the line and one state update per present
character, written as later events of the same beat. No JSON call of a beat ever waits in
front of its reply's first token. A stopped or failed beat keeps its text but writes no
memories or state updates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Sequence
from dataclasses import dataclass, replace

from bot.engine.beat_events import TurnBatch, add_memories, clip, turn_events
from bot.engine.cardtext import persona_text
from bot.engine.clean import ReplyCleaner, name_forms, speaker_labels, stop_sequences
from bot.engine.context import Cast, StoryContext
from bot.engine.errors import BeatNotSaved
from bot.engine.lore import LORE_SHARE, books_for, lore_for, lorebook_of
from bot.engine.macros import Names
from bot.engine.parse import in_character_text, parse_turn
from bot.engine.prompts import PointOfView, build_narrative_prompt, fit_transcript
from bot.engine.recall import recall
from bot.engine.sink import BeatEnd, BeatSink, BeatStatus, GuardedSink, Speaker
from bot.engine.state import ask_state_update
from bot.engine.window import settled_window, since_anchor
from bot.llm import LLMError, Message
from bot.llm.structured import mended_text
from bot.store import YOU, Database, StoreError, append, append_events, append_then_read
from bot.store.checkpoints import save_checkpoint
from bot.store.events import Payload, TurnClassified, TurnMessagesLinked, TurnStarted
from bot.store.views import (
    NARRATION,
    Activity,
    Beat,
    Character,
    Scene,
    SpeakerView,
    player_label,
    present_entities,
    speaker_view_read,
)

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
    """A beat as plain transcript lines, the raw material of memories and state updates.

    Out-of-character asides in the line are left out: no character heard them.
    """
    lines = []
    story = in_character_text(prose) if prose else ""
    if story:
        lines.append(f"{player_label(cast.you.name, meanwhile=meanwhile)}: {story}")
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

    ``prose`` is a new player beat (written as a user_turn); ``None`` makes a beat of the
    characters' own, or, with ``answering``, a new reply to a player beat already in the
    transcript (regenerate). The beat is written the moment its stream ends; classifying the
    line and updating the world come after, as later events of the same beat.
    """
    scene = cast.meanwhile or cast.scene
    present = present_entities(scene)
    guarded = GuardedSink(sink)
    started = TurnStarted(
        chat_id=cast.chat.id,
        scene_id=cast.scene.id,
        speaker_id=speaker.id,
        prose=prose or "",
        present_set_kind=scene.present_set_kind,
        meanwhile_scene_id=cast.meanwhile.id if cast.meanwhile else None,
        author_id=author_id,
        message_id=message_id,
        answers_turn_id=answering.id if answering is not None else None,
        witnesses=list(present),
    )
    # the speaker's view is read as the turn's start commits, in the same trip to the store
    view = speaker_view_read(
        cast.chat.id,
        speaker.id,
        present,
        about=prose or "",
        window=since_anchor(ctx.settings.transcript_beats),
    )
    started_id, seen = await append_then_read(ctx.db, started, view)
    checkpoint = Checkpoint(ctx.db, started_id, cast.chat.id, ctx.settings.checkpoint_seconds)
    cleaner = ReplyCleaner(
        speaker_labels(name_forms(speaker.name, speaker.card.nickname)),
        [label for names in _others(cast, present, speaker) for label in speaker_labels(names)],
    )
    stream = _ReplyStream(ctx, cast.chat.id, cleaner, guarded, checkpoint)
    try:
        pov = await _point_of_view(ctx, cast, scene, speaker, prose or "", view=seen)
        messages = build_narrative_prompt(
            pov,
            _cue(cast, prose, speaker),
            budget_tokens=ctx.settings.prompt_token_budget,
        )
        await guarded.begin(speaker_of(speaker))
        stream.start(messages, speaker=speaker.id, stop=_stop_sequences(cast, present, speaker))
        text, status, failure = await stream.finished()
    except asyncio.CancelledError:
        # the turn itself is cancelled (a shutdown past its grace): what was shown is the
        # story's now, not an open turn a later restart would close after whatever came next
        shown = "".join(stream.parts)
        await asyncio.shield(_close_unwritten(ctx, started, started_id, shown))
        raise
    lines = beat_lines(
        cast,
        prose or (answering.text if answering else None),
        speaker,
        text,
        started.meanwhile_scene_id is not None,
    )
    beat, ids = await _write_beat(
        ctx, cast, started=started, started_id=started_id, text=text, status=status, lines=lines
    )
    beat_id = ids[beat.reply.index]
    line_id = ids[beat.line.index] if beat.line is not None else None
    error = str(failure) if failure else ""
    reason = failure.public_reason if failure else ""
    ended = BeatEnd(text=text, status=status, error=error, reason=reason)
    message_ids = tuple(await guarded.end(ended))
    if message_ids:
        linked = TurnMessagesLinked(
            chat_id=cast.chat.id, turn_id=beat_id, message_ids=list(message_ids)
        )
        await append(ctx.db, linked)
    if status == "done":
        line = (line_id, prose) if line_id is not None and prose else None
        await _after_beat(ctx, cast, pov, lines, beat_id, line=line)
    return TurnResult(
        speaker=speaker_of(speaker),
        text=text,
        status=status,
        assistant_turn_id=beat_id,
        user_turn_id=line_id,
        meanwhile_scene_id=started.meanwhile_scene_id,
        message_ids=message_ids,
        error=error,
    )


async def _write_beat(
    ctx: StoryContext,
    cast: Cast,
    *,
    started: TurnStarted,
    started_id: int,
    text: str,
    status: BeatStatus,
    lines: list[str],
) -> tuple[TurnBatch, list[int]]:
    """The player's line, the reply and (for a finished beat) every witness's memory, at once."""
    beat = turn_events(started, started_id, text=text, status=status)
    if status == "done":
        add_memories(
            beat.batch,
            chat_id=started.chat_id,
            scene_id=started.meanwhile_scene_id or started.scene_id,
            witnesses=started.witnesses,
            cast=(cast.host.id, cast.guest.id if cast.guest else None),
            text="\n".join(lines),
            beat=beat.reply,
        )
    try:
        return beat, await append_events(ctx.db, beat.batch)
    except StoreError:
        raise  # the store is unusable (gone, full): stop; the next start closes the beat
    except Exception:
        log.exception(
            "could not write the beat of chat %s; closing it as interrupted", cast.chat.id
        )
        await _close_unwritten(ctx, started, started_id, text)
        raise BeatNotSaved() from None


def _stop_sequences(cast: Cast, present: tuple[str, ...], speaker: Character) -> list[str]:
    """A model that starts speaking for someone else stops there: everyone else, present or
    not, by every name (StoryModels keeps as many as the server takes)."""
    return stop_sequences(_others(cast, present, speaker))


def _others(cast: Cast, present: tuple[str, ...], speaker: Character) -> list[list[str]]:
    """The name forms of everyone a reply must not speak for: those present first, then the
    player, then the rest of the cast; the player's lines read "Narration" in a meanwhile."""
    people: dict[str, list[str]] = {}
    for entity in (*present, YOU, cast.host.id, cast.guest.id if cast.guest else ""):
        character = cast.character(entity)
        if entity == YOU:
            people[YOU] = name_forms(cast.you.name)
        elif character is not None and entity != speaker.id:
            people[entity] = name_forms(character.name, character.card.nickname)
    return [*people.values(), [NARRATION]]


async def _close_unwritten(
    ctx: StoryContext, started: TurnStarted, started_id: int, text: str
) -> None:
    """Best effort: close a beat whose events could not be written, as the restart would."""
    beat = turn_events(started, started_id, text=text, status="failed")
    try:
        await append_events(ctx.db, beat.batch)
    except Exception:
        log.exception("closing the unwritten beat failed too; the next start will close it")


class Checkpoint:
    """Saves a streaming reply's text at most every ``every`` seconds, so a crash mid-stream
    keeps what the player saw; writing the beat deletes it."""

    def __init__(self, db: Database, started_id: int, chat_id: str, every: float) -> None:
        self.db, self.started_id, self.chat_id, self.every = db, started_id, chat_id, every
        self.last = time.monotonic()

    async def maybe_save(self, text: str) -> None:
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            await save_checkpoint(self.db, self.started_id, self.chat_id, clip(text))


class _ReplyStream:
    """The streaming reply, in a task registered per chat so ``cancel`` can stop it."""

    def __init__(
        self,
        ctx: StoryContext,
        chat_id: str,
        cleaner: ReplyCleaner,
        sink: BeatSink,
        checkpoint: Checkpoint,
    ) -> None:
        self.ctx = ctx
        self.chat_id = chat_id
        self.sink = sink
        self.checkpoint = checkpoint
        self.parts: list[str] = []
        self.label = cleaner
        self.task: asyncio.Task[None] | None = None

    def start(self, messages: Sequence[Message], *, speaker: str, stop: list[str]) -> None:
        self.task = asyncio.create_task(
            self._run(messages, speaker, stop), name=f"stream {self.chat_id}"
        )

    async def _show(self, text: str) -> None:
        text = mended_text(text)  # what is shown is what can be kept
        if text:
            self.parts.append(text)
            await self.sink.append(text)
            await self.checkpoint.maybe_save("".join(self.parts))

    async def _run(self, messages: Sequence[Message], speaker: str, stop: list[str]) -> None:
        chunks = self.ctx.models.narrate(messages, speaker=speaker, stop=stop)
        try:
            async for chunk in chunks:
                await self._show(self.label.feed(chunk))
                if self.label.cut:
                    break  # it started writing for someone else (a stop the server ignored)
        finally:
            if isinstance(chunks, AsyncGenerator):
                await chunks.aclose()  # closing the request stops generation on the server
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
    if prose is not None:
        prose = in_character_text(prose)
    if not prose:
        return f"(Continue the scene as {speaker.name}.)"
    if cast.meanwhile is not None:
        return f"{NARRATION}: {prose}"
    return f"{cast.you.name}: {prose}"


async def _point_of_view(
    ctx: StoryContext,
    cast: Cast,
    scene: Scene,
    speaker: Character,
    prose: str,
    *,
    view: SpeakerView,
) -> PointOfView:
    """Gather only what ``speaker`` witnessed: its beats, its memories, its own edges, and what
    it last saw the others doing (``view``, read by ``speaker_view_read``).

    The transcript is a window that only grows between jumps (window.py); memories repeat
    nothing the prompt's transcript shows.
    """
    present = present_entities(scene)
    max_beats = ctx.settings.transcript_beats
    chat_book = lorebook_of(view.world_book)
    pov = PointOfView(
        speaker=speaker,
        you=cast.you,
        chat=cast.chat,
        present=present,
        names=cast.names(),
        relationships=view.relationships,
        activities=view.activities,
        premise=scene.premise,
    )
    budget = ctx.settings.prompt_token_budget
    if books_for(speaker, chat_book):
        pov = replace(pov, lore_reserve=int(budget * LORE_SHARE))
    window = settled_window(pov, view.beats, budget_tokens=budget, max_beats=max_beats)
    lore = await lore_for(ctx, cast, speaker, window, prose, chat_book=chat_book)
    pov = replace(pov, transcript=window, lore=lore)
    shown = fit_transcript(pov, _cue(cast, prose or None, speaker), budget_tokens=budget)
    memories = await recall(
        ctx.views,
        cast.chat.id,
        speaker.id,
        query=prose,
        limit=ctx.settings.recalled_memories,
        shown=shown,
        names=list(cast.names().values()),
    )
    return replace(pov, earlier=memories.earlier, recalled=memories.relevant)


async def _after_beat(
    ctx: StoryContext,
    cast: Cast,
    pov: PointOfView,
    lines: list[str],
    beat_id: int,
    *,
    line: tuple[int, str] | None,
) -> None:
    """The world after a written beat: the line classified, every present character's state."""
    async with ctx.busy.during(cast.chat.id, showing_place(cast)):
        events = await derive_world(ctx, cast, pov.present, lines, beat_id, line=line)
        if events:
            await append_events(ctx.db, events)


def showing_place(cast: Cast) -> int:
    """Where the scene being played shows: the meanwhile thread, or the story's channel."""
    return cast.meanwhile.thread_id if cast.meanwhile is not None else cast.chat.channel_id


async def derive_world(
    ctx: StoryContext,
    cast: Cast,
    present: tuple[str, ...],
    lines: list[str],
    beat_id: int,
    *,
    line: tuple[int, str] | None = None,
) -> list[Payload]:
    """What a beat changes beyond itself, asked of the LLM (concurrently, within its limit):
    the labels of the player's line (``line``: its turn id and words) and, per present
    character, feelings, facts learned and activity. Edits call it again with new words."""
    names = cast.names()
    requests: list[Awaitable[list[Payload]]] = []
    if line is not None:
        macros = Names(char=cast.host.name, user=cast.you.name)
        requests.append(_classified(ctx, cast.chat.id, *line, macros))
    sources = []
    for entity in present:
        character = cast.character(entity) or (
            None if entity == YOU else await ctx.views.character(cast.chat.guild_id, entity)
        )
        if character is not None:
            sources.append(character)
            names.setdefault(character.id, character.name)
    nicknames = {c.id: [c.card.nickname] for c in sources if c.card.nickname}
    inputs = await ctx.views.state_inputs(
        cast.chat.id, tuple(s.id for s in sources), present, before=beat_id
    )
    for source, known in zip(sources, inputs, strict=True):
        targets = [
            (rel.target_id, names.get(rel.target_id, rel.target_id), rel)
            for rel in known.relationships
        ]
        requests.append(
            ask_state_update(
                ctx.models,
                chat_id=cast.chat.id,
                source_id=source.id,
                source_name=source.name,
                user_name=cast.you.name,
                persona=persona_text(source.card),
                beat_text="\n".join(lines),
                targets=targets,
                activity=all_saw(known.seen_doing),
                beat_id=beat_id,
                aliases=nicknames,
            )
        )
    return [event for events in await asyncio.gather(*requests) for event in events]


def all_saw(seen_doing: dict[str, Activity | None]) -> Activity | None:
    """What everyone present at a beat had last seen a character doing (``seen_doing``: per
    viewer, from ``Views.state_inputs``), if they all had seen the same; else None.

    A state update's activity is written only if it changed; it changed for every witness only
    if all of them last saw the same thing (one who missed a change must see the new one too).
    Nothing seen at or after the beat counts: an edit derives old beats again.
    """
    seen = list(seen_doing.values())
    return seen[0] if all(view == seen[0] for view in seen) else None


async def _classified(
    ctx: StoryContext, chat_id: str, turn_id: int, prose: str, names: Names
) -> list[Payload]:
    """The line's labels; an LLM failure gives the plain labels it was written with."""
    labels = await parse_turn(ctx.models, prose, names)
    return [TurnClassified(chat_id=chat_id, turn_id=turn_id, segments=labels)]
