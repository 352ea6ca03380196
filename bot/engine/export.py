"""A chat as files a person can keep: the story as Markdown, the log as JSON lines."""

from __future__ import annotations

from bot.engine.context import StoryContext
from bot.engine.errors import NoSuchStory
from bot.store import Payload, StoredEvent, dump_jsonl, events_of_chat, events_of_types
from bot.store.events import AssetStored, BotAuthored, CastChanged, YouAuthored
from bot.store.views import Chat, speaker_label


async def _chat(ctx: StoryContext, chat_id: str) -> Chat:
    chat = await ctx.views.chat(chat_id)
    if chat is None:
        raise NoSuchStory(chat_id)
    return chat


async def chat_log(ctx: StoryContext, chat_id: str) -> str:
    """Every event of the chat, plus the characters, persona and images it needs to restore."""
    chat = await _chat(ctx, chat_id)
    events = await events_of_chat(ctx.db, chat_id)
    cast = {chat.host_id, chat.guest_id}
    cast |= {e.payload.guest_bot_id for e in events if isinstance(e.payload, CastChanged)}
    world = await events_of_types(ctx.db, (BotAuthored, YouAuthored, AssetStored))
    needed: list[StoredEvent[Payload]] = []
    avatars: set[str] = set()
    for event in world:
        p = event.payload
        if isinstance(p, BotAuthored) and p.id in cast and p.guild_id == chat.guild_id:
            needed.append(event)
            avatars.add(p.avatar)
        elif isinstance(p, YouAuthored) and (p.guild_id, p.owner_id) == (
            chat.guild_id,
            chat.owner_id,
        ):
            needed.append(event)
    needed += [
        e for e in world if isinstance(e.payload, AssetStored) and e.payload.sha256 in avatars
    ]
    return dump_jsonl(sorted(needed + events, key=lambda e: e.id))


async def story_markdown(ctx: StoryContext, chat_id: str) -> str:
    """The story as it stands (rewound beats left out), with scene and meanwhile headings."""
    chat = await _chat(ctx, chat_id)
    you = await ctx.views.you(chat.guild_id, chat.owner_id)
    names = {"you": you.name} | {c.id: c.name for c in await ctx.views.characters(chat.guild_id)}
    digests = dict(await ctx.views.digests(chat_id))
    lines = [f"# {chat.place or 'A story'}", "", f"*{chat.narrative_anchor}, {chat.world_time}*"]
    scene_id: int | None = None
    meanwhile_id: int | None = None
    scene_number = 0
    for beat in await ctx.views.beats(chat_id):
        if beat.meanwhile_scene_id != meanwhile_id:
            if meanwhile_id in digests:
                lines += ["", f"> {digests.pop(meanwhile_id)}"]
            meanwhile_id = beat.meanwhile_scene_id
            if meanwhile_id is not None:
                scene = await ctx.views.scene(meanwhile_id)
                premise = f": {scene.premise}" if scene is not None and scene.premise else ""
                lines += ["", f"### Meanwhile{premise}"]
        if beat.scene_id != scene_id and beat.meanwhile_scene_id is None:
            scene_id, scene_number = beat.scene_id, scene_number + 1
            lines += ["", f"## Scene {scene_number}"]
        if not beat.text.strip() and not beat.interrupted:
            continue
        who = speaker_label(beat, you.name, names)
        mark = " *(stopped)*" if beat.cancelled else " *(interrupted)*" if beat.interrupted else ""
        lines += ["", f"**{who}:** {beat.text}{mark}"]
    lines += [f"\n> {text}" for text in digests.values()]
    return "\n".join(lines).strip() + "\n"
