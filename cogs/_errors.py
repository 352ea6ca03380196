"""The engine's refusals in Discord's words: channels as mentions, the slash commands it has.

The engine's own wording (``str(error)``) names no adapter's commands; a refusal whose remedy is
a Discord command or place is worded here. Anything not listed reads as the engine says it.
"""

from __future__ import annotations

from functools import singledispatch

from bot.engine.errors import (
    ChannelHasStory,
    CharacterInUse,
    MeanwhileOpen,
    NeedsGuest,
    NoOpenStory,
    NoSuchCharacter,
    NoSuchLoreEntry,
    RewindCrossesMeanwhile,
    SceneMovedOn,
    StoryError,
)

END_MEANWHILE = "end it with its button or /scene close"
"""How a meanwhile scene ends in Discord: its thread's End button, or /scene close in it."""


@singledispatch
def describe(error: StoryError) -> str:
    """What to tell a Discord player about ``error``."""
    return str(error)


@describe.register
def _(error: ChannelHasStory) -> str:
    return "this channel already has a story: end it first (/chat end)"


@describe.register
def _(error: NoOpenStory) -> str:
    return "there is no open story here"


@describe.register
def _(error: NoSuchCharacter) -> str:
    return f"no character {error.character_id!r} in this server"


@describe.register
def _(error: CharacterInUse) -> str:
    return f"{error.character_id} is in the open story in <#{error.chat.channel_id}>: end it first"


@describe.register
def _(error: MeanwhileOpen) -> str:
    return (
        f"a meanwhile scene is still open in <#{error.scene.thread_id}>: first "
        f"{END_MEANWHILE} there"
    )


@describe.register
def _(error: NeedsGuest) -> str:
    return "a meanwhile scene needs a guest: start the story with one, or /scene join"


@describe.register
def _(error: SceneMovedOn) -> str:
    if error.meanwhile is None:
        return str(error)
    return (
        "a meanwhile scene started before your line was played, so it was left out: write in "
        f"<#{error.meanwhile.thread_id}>, or {END_MEANWHILE}"
    )


@describe.register
def _(error: RewindCrossesMeanwhile) -> str:
    if error.ended:
        return str(error)
    return (
        f"that would leave the open meanwhile scene's thread behind ({END_MEANWHILE}); "
        f"{error.remedy}"
    )


@describe.register
def _(error: NoSuchLoreEntry) -> str:
    return f"{error} (see /lore list)"
