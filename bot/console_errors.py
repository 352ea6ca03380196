"""The engine's refusals in the console's words: its own commands, no Discord channels.

The engine's wording (``str(error)``) names no adapter's commands; a refusal whose remedy is a
console command is worded here. Anything else (a usage or card error) reads as it is.
"""

from __future__ import annotations

from functools import singledispatch

from bot.engine.errors import (
    ChannelHasStory,
    CharacterInUse,
    MeanwhileOpen,
    NeedsGuest,
    NoSuchCharacter,
    NoSuchLoreEntry,
    RewindCrossesMeanwhile,
)


@singledispatch
def describe(error: Exception) -> str:
    """What to tell the console's player about ``error``."""
    return str(error)


@describe.register
def _(error: ChannelHasStory) -> str:
    return f"story {error.chat.id} is still open: end it first (/chat end)"


@describe.register
def _(error: NoSuchCharacter) -> str:
    return f"no character {error.character_id!r}; /character list shows them"


@describe.register
def _(error: CharacterInUse) -> str:
    return f"{error} (/chat end)"


@describe.register
def _(error: MeanwhileOpen) -> str:
    return f"{error} (/meanwhile end)"


@describe.register
def _(error: NeedsGuest) -> str:
    return "a meanwhile scene needs a guest: start the story with one, or /scene join"


@describe.register
def _(error: RewindCrossesMeanwhile) -> str:
    if error.ended:
        return str(error)
    return f"that would leave the open meanwhile scene behind (/meanwhile end); {error.remedy}"


@describe.register
def _(error: NoSuchLoreEntry) -> str:
    return f"{error} (see /lore list)"
