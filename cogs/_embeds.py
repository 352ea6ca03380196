"""How story read models look in Discord: a character card, a chat's status, feelings and why.

Every builder ends in ``fit``, which keeps the embed within Discord's limits (it refuses the
whole message otherwise), marking every cut with "…".
"""

from __future__ import annotations

from dataclasses import dataclass

import discord

from bot.engine import FeelingChange
from bot.store.views import Character, ChatStatus, Memory, Relationship

BAR_CELLS = 10
# Discord's embed limits: each part, and all the text of one embed together.
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_LIMIT = 1024
FIELD_COUNT_LIMIT = 25
FOOTER_LIMIT = 2048
EMBED_TOTAL_LIMIT = 6000
SHORTEST_CUT = 64
"""A text cut to fit the total is never cut shorter than this (fields go instead)."""
EXCERPT_LIMIT = 80
COLOUR = discord.Colour.dark_teal()


def clip(text: str, limit: int = FIELD_LIMIT) -> str:
    text = text.strip() or "—"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fit(embed: discord.Embed) -> discord.Embed:
    """Trim ``embed`` to Discord's limits in place (and return it); each cut ends in "…".

    Every part is clipped to its own limit first, fields past the 25th are dropped (the last
    one kept says how many), then the longest text is shortened until the whole fits in 6,000.
    """
    if embed.title:
        embed.title = clip(embed.title, TITLE_LIMIT)
    if embed.footer.text:
        embed.set_footer(text=clip(embed.footer.text, FOOTER_LIMIT), icon_url=embed.footer.icon_url)
    description = clip(embed.description, DESCRIPTION_LIMIT) if embed.description else ""
    fields = [
        _Field(clip(str(f.name), FIELD_NAME_LIMIT), clip(str(f.value)), bool(f.inline))
        for f in embed.fields
    ]
    if len(fields) > FIELD_COUNT_LIMIT:
        more = len(fields) - FIELD_COUNT_LIMIT + 1
        fields = [*fields[: FIELD_COUNT_LIMIT - 1], _Field("…", f"and {more} more", False)]
    fixed = len(embed.title or "") + len(embed.footer.text or "") + len(embed.author.name or "")
    while (over := fixed + len(description) + sum(map(len, fields)) - EMBED_TOTAL_LIMIT) > 0:
        longest = max(fields, key=lambda f: len(f.value), default=None)
        if longest is not None and len(longest.value) > max(len(description), SHORTEST_CUT):
            longest.value = clip(longest.value, max(len(longest.value) - over, SHORTEST_CUT))
        elif len(description) > SHORTEST_CUT:
            description = clip(description, max(len(description) - over, SHORTEST_CUT))
        elif fields:  # only short parts left: the last field goes
            fields.pop()
        else:  # cannot happen within the per-part limits above
            break
    embed.description = description or None
    embed.clear_fields()
    for field in fields:
        embed.add_field(name=field.name, value=field.value, inline=field.inline)
    return embed


@dataclass
class _Field:
    name: str
    value: str
    inline: bool

    def __len__(self) -> int:
        return len(self.name) + len(self.value)


def bar(value: int) -> str:
    """A 0..100 score as ten cells and the number, e.g. ``█████░░░░░ 50``."""
    value = max(0, min(100, value))
    filled = round(value / (100 / BAR_CELLS))
    return f"{'█' * filled}{'░' * (BAR_CELLS - filled)} {value}"


def character_embed(character: Character) -> discord.Embed:
    card = character.card
    embed = discord.Embed(
        title=card.name, description=clip(card.persona, DESCRIPTION_LIMIT), colour=COLOUR
    )
    embed.add_field(name="id", value=f"`{card.id}`")
    if card.creator:
        embed.add_field(name="creator", value=clip(card.creator))
    if card.character_version:
        embed.add_field(name="version", value=clip(card.character_version))
    if card.personality:
        embed.add_field(name="personality", value=clip(card.personality), inline=False)
    if card.traits:
        embed.add_field(name="traits", value=clip(", ".join(card.traits)))
    if card.voice_samples:
        embed.add_field(name="voice", value=clip("\n".join(card.voice_samples)), inline=False)
    if card.kickoff_prose:
        embed.add_field(name="kickoff", value=clip(card.kickoff_prose), inline=False)
    if card.alternate_greetings:
        count = len(card.alternate_greetings)
        embed.add_field(name="greetings", value=f"{count} more (/chat start greeting:)")
    entries = (card.character_book or {}).get("entries")
    if isinstance(entries, list) and entries:
        embed.add_field(name="lorebook", value=f"{len(entries)} entries")
    if card.creator_id:
        embed.set_footer(text=f"created by user {card.creator_id}")
    return fit(embed)


def status_embed(status: ChatStatus) -> discord.Embed:
    chat = status.chat
    embed = discord.Embed(title=f"{chat.narrative_anchor} · {chat.world_time}", colour=COLOUR)
    embed.add_field(name="place", value=clip(chat.place or "somewhere"))
    embed.add_field(name="weather", value=clip(chat.weather or "unremarkable"))
    lines = []
    for entity in status.present:
        name = status.names.get(entity, entity)
        activity = status.activities.get(entity)
        doing = ", ".join(p for p in (activity.posture, activity.verb) if p) if activity else ""
        lines.append(f"**{name}**" + (f": {doing}" if doing else ""))
    embed.add_field(name="present", value=clip("\n".join(lines)), inline=False)
    if status.meanwhile is not None:
        embed.add_field(
            name="meanwhile", value=f"open in <#{status.meanwhile.thread_id}>", inline=False
        )
    return fit(embed)


def relationship_embed(relationship: Relationship, source: str, target: str) -> discord.Embed:
    embed = discord.Embed(title=f"{source} → {target}", colour=COLOUR)
    embed.add_field(name="affinity", value=f"`{bar(relationship.affinity)}`", inline=False)
    embed.add_field(name="trust", value=f"`{bar(relationship.trust)}`", inline=False)
    facts = "\n".join(f"• {fact}" for fact in relationship.knowledge_facts)
    embed.add_field(name="knows", value=clip(facts or "nothing yet"), inline=False)
    if relationship.summary:
        embed.add_field(name="in short", value=clip(relationship.summary), inline=False)
    return fit(embed)


def memories_embed(name: str, memories: list[Memory], query: str) -> discord.Embed:
    title = f"{name} remembers" + (f" “{query}”" if query else "")
    embed = discord.Embed(title=title, colour=COLOUR)
    if not memories:
        embed.description = "nothing yet"
    for memory in memories[:10]:
        embed.add_field(
            name=f"scene {memory.scene_id}",
            value=clip(memory.pov_summary or memory.text, 300),
            inline=False,
        )
    return fit(embed)


def signed(delta: int) -> str:
    """``+3``, ``−1`` (a true minus sign), ``0``."""
    return f"+{delta}" if delta > 0 else f"−{-delta}" if delta < 0 else "0"


def excerpt(text: str, limit: int = EXCERPT_LIMIT) -> str:
    words = " ".join(text.split())
    return words if len(words) <= limit else words[: limit - 1].rstrip() + "…"


def why_embed(changes: list[FeelingChange], source: str, target: str) -> discord.Embed:
    """Each beat that moved source's feelings toward target, newest first, with the deltas."""
    lines = [
        f"{signed(c.affinity_delta)} affinity, {signed(c.trust_delta)} trust — "
        f'"{excerpt(c.beat_text) or "a beat that left no words"}"'
        for c in changes
    ]
    embed = discord.Embed(title=f"Why {source} feels so about {target}", colour=COLOUR)
    embed.description = clip("\n".join(lines) or "nothing has moved it yet", DESCRIPTION_LIMIT)
    return fit(embed)
