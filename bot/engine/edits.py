"""An edited line changes what was learned from it.

The line's words change, and everything derived from the old words leaves the story and is
derived again from the new ones: the beat's memories (one per witness, as at first), each
present character's feelings, facts and activity, the line's labels, and, when its scene has
closed, that scene's summaries, threads and digest. The reply itself stays as the player saw
it. Like a regenerate, nothing is erased from the log: ``derivations_replaced`` says what
leaves, and a replay of the chat leaves it out.
"""

from __future__ import annotations

from bot.engine.beat_events import add_memories
from bot.engine.context import Cast, StoryContext, load_cast
from bot.engine.errors import AnswererDeleted, NotOwnLine
from bot.engine.scenes import scene_replaced, summarize_again
from bot.engine.turns import beat_lines, derive_world
from bot.store import Batch, append_events
from bot.store.events import DerivationsReplaced, ManualEdit
from bot.store.views import Beat


async def edit_player_line(ctx: StoryContext, chat_id: str, beat: Beat, new_prose: str) -> None:
    """Give ``beat`` (a player's line) new words, and derive from them what the old ones gave."""
    if beat.role != "user":
        raise NotOwnLine("edited")
    cast = await load_cast(ctx, chat_id)
    edit = ManualEdit(
        target_kind="user_turn_prose", target_id=beat.id, new_value=new_prose, chat_id=chat_id
    )
    reply = await ctx.views.latest_reply_to(chat_id, beat.id)
    scene = await ctx.views.scene(beat.meanwhile_scene_id or beat.scene_id)
    closed = scene if scene is not None and scene.status == "closed" else None
    # a closed scene's summaries, threads and digest leave with the old words at once: an
    # edit cut short (Ctrl-C, a restart) while its LLM calls run must not leave them behind
    again = [scene_replaced(chat_id, closed.id)] if closed is not None else []
    if reply is None or reply.cancelled or reply.interrupted:
        # nothing was remembered of a beat that did not finish: only the labels follow (and
        # the closed scene's threads and digest, which read every line)
        await append_events(ctx.db, [edit, *again])
        await _derive_again(ctx, cast, beat, None, new_prose)
        if closed is not None:
            await summarize_again(ctx, cast, closed)
        return
    witnesses = await ctx.views.witnesses(reply.id)
    lines = await _lines(ctx, cast, beat, reply, new_prose)
    batch = Batch([edit, DerivationsReplaced(chat_id=chat_id, beat_id=reply.id, reason="edit")])
    batch.extend(again)
    add_memories(
        batch,
        chat_id=chat_id,
        scene_id=reply.meanwhile_scene_id or reply.scene_id,
        witnesses=witnesses,
        cast=(cast.host.id, cast.guest.id if cast.guest else None),
        text="\n".join(lines),
        beat=reply.id,
    )
    await append_events(ctx.db, batch)
    await _derive_again(ctx, cast, beat, (reply, witnesses, lines), new_prose)
    if closed is not None:
        await summarize_again(ctx, cast, closed)


async def _derive_again(
    ctx: StoryContext,
    cast: Cast,
    line: Beat,
    answered: tuple[Beat, tuple[str, ...], list[str]] | None,
    new_prose: str,
) -> None:
    """Labels for the new words and, for an answered line, each witness's state again."""
    if answered is None:
        events = await derive_world(ctx, cast, (), [], line.id, line=(line.id, new_prose))
    else:
        reply, witnesses, lines = answered
        events = await derive_world(
            ctx, cast, witnesses, lines, reply.id, line=(line.id, new_prose)
        )
    if events:
        await append_events(ctx.db, events)


async def _lines(
    ctx: StoryContext, cast: Cast, line: Beat, reply: Beat, new_prose: str
) -> list[str]:
    speaker = cast.character(reply.speaker_id) or await ctx.views.character(
        cast.chat.guild_id, reply.speaker_id
    )
    if speaker is None:
        raise AnswererDeleted(reply.speaker_id)
    return beat_lines(cast, new_prose, speaker, reply.text, line.meanwhile_scene_id is not None)
