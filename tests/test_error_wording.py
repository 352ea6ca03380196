"""The engine's refusals carry data and name no adapter; each adapter words them in its terms.

Every kind of ``StoryError`` is built for every choice its fields allow: its own wording must
name no Discord place or command, Discord's must name only slash commands the bot registers,
and the console's only commands the console has.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import re
import types
import typing
from collections.abc import Iterator

import discord
from discord.ext import commands

from bot import console_errors
from bot.config import Settings
from bot.console import HELP, play
from bot.engine import Engine, StoryError
from bot.engine import errors as engine_errors
from bot.llm import MockLLMClient
from bot.store import Database
from bot.store.views import Chat, Scene
from cogs import _errors as discord_errors
from cogs._base import answer_error
from tests.helpers.discord_fakes import StoryWorld, invoke, make_interaction
from tests.helpers.engine_helpers import character

CHAT = Chat(
    id="c-1",
    guild_id=5,
    channel_id=777,
    owner_id=9,
    host_id="mira",
    guest_id="jun",
    world_time="evening",
    narrative_anchor="Day 1",
    weather="",
    place="",
    status="open",
)
SCENE = Scene(
    id=4,
    chat_id="c-1",
    kind="meanwhile",
    present_set_kind="host_guest",
    participants=("mira", "jun"),
    parent_scene_id=1,
    thread_id=888,
    premise="",
    status="open",
)
SAMPLES: dict[object, list[object]] = {
    str: ["mira"],
    int: [3],
    bool: [True, False],
    Chat: [CHAT],
    Scene: [SCENE],
    type(None): [None],
}
DISCORD_WORDS = re.compile(r"<#|(?<![\w.])/[a-z]|\bthread\b|\bserver\b|\bchannel\b")
COMMAND = re.compile(r"(?<![\w.])/([a-z]+)(?: ([a-z]+))?")


def _kinds(base: type[StoryError] = StoryError) -> Iterator[type[StoryError]]:
    for kind in base.__subclasses__():
        yield kind
        yield from _kinds(kind)


def _samples(annotation: object) -> list[object]:
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [value for arg in typing.get_args(annotation) for value in _samples(arg)]
    return SAMPLES[annotation]


def refusals() -> list[StoryError]:
    """One of every typed refusal for every choice of its fields."""
    built: list[StoryError] = []
    for kind in _kinds():
        if not dataclasses.is_dataclass(kind):
            continue
        hints = typing.get_type_hints(kind)
        choices = [_samples(hints[field.name]) for field in dataclasses.fields(kind)]
        built += [kind(*values) for values in itertools.product(*choices)]
    return built


def test_every_refusal_carries_data_in_a_class_of_its_own() -> None:
    kinds = set(_kinds())
    typed = {kind for kind in kinds if dataclasses.is_dataclass(kind)}
    # Only the two families' roots are no dataclass: nothing is raised as a bare string.
    assert kinds - typed == {engine_errors.NotFoundError}
    assert {type(error) for error in refusals()} == typed
    assert len(typed) >= 40


def test_the_engines_own_words_name_no_discord_place_or_command() -> None:
    for error in refusals():
        text = str(error)
        assert text.strip(), type(error)
        assert not DISCORD_WORDS.search(text), (type(error).__name__, text)


async def test_discord_names_only_slash_commands_it_has(world: StoryWorld) -> None:
    names = {command.qualified_name for command in world.bot.tree.walk_commands()}
    named = set()
    for error in refusals():
        text = discord_errors.describe(error)
        for found in COMMAND.finditer(text):
            command = found[0].removeprefix("/")
            assert command in names or found[1] in names, (type(error).__name__, text)
            named.add(command if command in names else found[1])
        assert set(re.findall(r"<#(\d+)>", text)) <= {"777", "888"}, text
    assert {"chat end", "scene close", "scene join", "lore list"} <= named
    assert "meanwhile end" not in names  # the command the engine once told Discord players


def test_discord_names_the_channel_and_the_thread() -> None:
    in_use = engine_errors.CharacterInUse("mira", CHAT)
    assert discord_errors.describe(in_use) == "mira is in the open story in <#777>: end it first"
    still_open = discord_errors.describe(engine_errors.MeanwhileOpen(SCENE))
    assert "<#888>" in still_open and "/scene close" in still_open


def test_the_console_names_only_its_own_commands() -> None:
    commands = {match[0] for match in COMMAND.finditer(HELP)}
    commands |= {f"/{name}" for name in re.findall(r"/([a-z]+)\b", HELP)}
    for error in refusals():
        text = console_errors.describe(error)
        assert "<#" not in text, text
        for found in COMMAND.finditer(text):
            assert found[0] in commands or f"/{found[1]}" in commands, text


async def test_the_console_tells_how_to_get_a_guest_and_end_a_meanwhile(db: Database) -> None:
    engine = Engine(db, MockLLMClient(), Settings())
    for cast in ("mira", "jun", "tomas"):
        await engine.characters.author(character(cast, cast.title(), kickoff_prose=""))
    script = (
        "/chat start host=mira\n/meanwhile start\n/chat end\n"
        "/chat start host=mira guest=jun\n/meanwhile start\n/scene join tomas\n"
        "/chat start host=nobody\n"
    )
    out = io.StringIO()

    assert await play(engine, io.StringIO(script), out, interactive=False) == 0

    errors = [line for line in out.getvalue().splitlines() if line.startswith("error:")]
    assert errors == [
        "error: a meanwhile scene needs a guest: start the story with one, or /scene join",
        "error: a meanwhile scene is still open: end it first (/meanwhile end)",
        "error: no character 'nobody'; /character list shows them",
    ]


async def test_discord_answers_a_leave_during_a_meanwhile_with_its_thread(
    world: StoryWorld,
) -> None:
    await world.story(guest=True)
    opened = make_interaction(world.bot, world.owner, world.channel)
    meanwhile = world.bot.get_cog("Meanwhile")
    chats = world.bot.get_cog("Chats")
    assert meanwhile is not None and chats is not None
    await invoke(meanwhile, meanwhile.meanwhile, opened, premise="after hours")  # type: ignore[attr-defined]
    (thread,) = world.channel.threads

    asked = make_interaction(world.bot, world.owner, world.channel)
    (refusal,) = await invoke(chats, chats.leave, asked)  # type: ignore[attr-defined]

    assert refusal.ephemeral
    assert refusal.content == (
        f"a meanwhile scene is still open in <#{thread.id}>: first end it with its button or "
        "/scene close there"
    )


async def test_one_handler_answers_every_failed_command(world: StoryWorld) -> None:
    """The tree's handler, and no cog's or command's own: a refusal is answered once."""
    assert world.bot.tree.on_error is answer_error
    for cog in world.bot.cogs.values():
        assert type(cog).cog_app_command_error is commands.Cog.cog_app_command_error, cog
    for command in world.bot.tree.walk_commands():
        if isinstance(command, discord.app_commands.Group):
            assert type(command).on_error is discord.app_commands.Group.on_error, command.name
        else:
            assert command.on_error is None, command.qualified_name
    for menu in world.bot.tree.get_commands(type=discord.AppCommandType.message):
        assert menu.on_error is None, menu.name
