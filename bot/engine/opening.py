"""How a story opens: the host's greeting (the card's first message or an alternate one), the
next greeting shown instead on 🔄 before the player's first line, and each character's
starting view of "you" (``initial_relationship_to_you``) seeded onto its edge.
"""

from __future__ import annotations

from bot.engine.context import Cast, StoryContext
from bot.engine.errors import NoSuchGreeting
from bot.engine.macros import Names, resolve_text
from bot.engine.sink import BeatEnd, BeatSink, GuardedSink
from bot.engine.turns import TurnResult, speaker_of
from bot.store import YOU, append_events
from bot.store.events import AssistantTurn, EdgeUpdate, Payload
from bot.store.views import Beat, Character, Scene, present_entities


def greetings(host: Character, you_name: str) -> list[str]:
    """The host's greetings with macros filled in: first message, then each alternate one."""
    names = Names(char=host.name, user=you_name)
    texts = [host.card.kickoff_prose, *host.card.alternate_greetings]
    return [resolve_text(text, names) for text in texts]


def chosen_greeting(host: Character, you_name: str, choice: int) -> str:
    """Greeting ``choice`` (0: the first message), or ``NoSuchGreeting``."""
    options = greetings(host, you_name)
    if not 0 <= choice < len(options):
        raise NoSuchGreeting(host.name, len(options))
    return options[choice]


def relationship_seeds(chat_id: str, characters: list[Character], you_name: str) -> list[Payload]:
    """Each character's ``initial_relationship_to_you`` as its starting summary toward you."""
    seeds: list[Payload] = []
    for character in characters:
        text = character.card.initial_relationship_to_you.strip()
        if text:
            summary = resolve_text(text, Names(char=character.name, user=you_name))
            seeds.append(
                EdgeUpdate(
                    source_id=character.id,
                    target_id=YOU,
                    chat_id=chat_id,
                    relationship_summary=summary,
                )
            )
    return seeds


async def next_greeting(ctx: StoryContext, cast: Cast, reply: Beat) -> str | None:
    """The greeting to show instead of ``reply``, if it is the story's opening, no line of the
    player's came after it, and the host has more than one greeting; else None."""
    options = greetings(cast.host, cast.you.name)
    if len(options) < 2 or reply.speaker_id != cast.host.id or reply.answers_turn_id is not None:
        return None
    opening = await ctx.views.opening_beat(cast.chat.id)
    if opening is None or opening != (reply.id, False):
        return None
    current = options.index(reply.text) if reply.text in options else -1
    for step in range(1, len(options) + 1):
        candidate = options[(current + step) % len(options)]
        if candidate.strip() and candidate != reply.text:
            return candidate
    return None


async def show_greeting(
    ctx: StoryContext, cast: Cast, scene: Scene, text: str, sink: BeatSink
) -> TurnResult:
    """Show a greeting as the host's opening beat and write it (no LLM call)."""
    guarded = GuardedSink(sink)
    speaker = speaker_of(cast.host)
    await guarded.begin(speaker)
    await guarded.append(text)
    message_ids = tuple(await guarded.end(BeatEnd(text=text, status="done")))
    present = present_entities(scene)
    [beat_id] = await append_events(
        ctx.db,
        [
            AssistantTurn(
                chat_id=cast.chat.id,
                scene_id=scene.id,
                speaker_id=cast.host.id,
                text=text,
                present_set_kind=scene.present_set_kind,
                witnesses=list(present),
                message_ids=list(message_ids),
            )
        ],
    )
    return TurnResult(
        speaker=speaker,
        text=text,
        status="done",
        assistant_turn_id=beat_id,
        user_turn_id=None,
        meanwhile_scene_id=None,
        message_ids=message_ids,
    )
