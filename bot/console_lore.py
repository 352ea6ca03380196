"""The console's /lore commands: the story's world book, as the Discord /lore group has it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from bot.engine import Engine
from bot.engine.lore import describe_entry, entry_fields


def is_count(text: str) -> bool:
    """A plain whole number the store can hold: ASCII digits only (``"²".isdigit()`` is true,
    ``int("²")`` fails) and at most 18 of them (SQLite's integers end at 2^63)."""
    return text.isascii() and text.isdigit() and len(text) <= 18


USAGE = (
    'use /lore import PATH, /lore add keys=a,b content="…" [secondary=…] [logic=and_any] '
    "[constant=yes] [position=after_char|at_depth] [depth=N] [order=N], /lore list, "
    "/lore remove N, /lore why [ID] [line…]"
)
ADD_OPTIONS = {"keys", "content", "secondary", "logic", "constant", "position", "order", "depth"}
MAX_BOOK_BYTES = 2 * 1024 * 1024


class LoreUsageError(Exception):
    """A /lore command used the wrong way; the message says the right way."""


async def lore_command(
    engine: Engine,
    chat_id: str,
    args: list[str],
    say: Callable[[str], None],
    parse_options: Callable[[list[str], set[str]], dict[str, str]],
) -> None:
    """Run one /lore command for the console's story, printing through ``say``."""
    verb, rest = (args[0], args[1:]) if args else ("", [])
    commands = _LoreCommands(engine, chat_id, say, parse_options)
    handler = {
        "import": commands.import_,
        "add": commands.add,
        "list": commands.list_,
        "remove": commands.remove,
        "why": commands.why,
    }.get(verb)
    if handler is None:
        raise LoreUsageError(USAGE)
    await handler(rest)


def _read_book(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_BOOK_BYTES:
            raise LoreUsageError(f"{path} is too big (the limit is 2 MiB)")
        return path.read_bytes()
    except OSError as exc:
        raise LoreUsageError(f"cannot read {path}: {exc.strerror or exc}") from None


class _LoreCommands:
    def __init__(
        self,
        engine: Engine,
        chat_id: str,
        say: Callable[[str], None],
        parse_options: Callable[[list[str], set[str]], dict[str, str]],
    ) -> None:
        self.engine = engine
        self.chat_id = chat_id
        self.say = say
        self.parse_options = parse_options

    async def import_(self, rest: list[str]) -> None:
        if len(rest) != 1:
            raise LoreUsageError(USAGE)
        path = Path(rest[0])
        data = await asyncio.to_thread(_read_book, path)
        book = await self.engine.lore.import_book(self.chat_id, data, path.name)
        self.say(f"(the world book is now {book.name}: {len(book.entries)} entries)")

    async def add(self, rest: list[str]) -> None:
        options = self.parse_options(rest, ADD_OPTIONS)
        if "content" not in options:
            raise LoreUsageError(USAGE)
        order, depth = options.get("order", "100"), options.get("depth", "4")
        if not is_count(order.removeprefix("-")) or not is_count(depth):
            raise LoreUsageError("order and depth must be whole numbers")
        fields = entry_fields(
            keys=options.get("keys", ""),
            content=options["content"],
            secondary_keys=options.get("secondary", ""),
            logic=options.get("logic", "and_any"),
            constant=options.get("constant", "no").lower() in {"yes", "true", "1"},
            position=options.get("position", "before_char"),
            order=int(order),
            depth=int(depth),
        )
        number = await self.engine.lore.add(self.chat_id, fields)
        self.say(f"(world-book entry #{number} added)")

    async def list_(self, rest: list[str]) -> None:
        if rest:
            raise LoreUsageError(USAGE)
        book = await self.engine.lore.book(self.chat_id)
        for number, entry in zip(book.numbers, book.entries, strict=True):
            self.say(describe_entry(number, entry))
        if not book.entries:
            self.say("(the world book is empty)")

    async def remove(self, rest: list[str]) -> None:
        if len(rest) != 1 or not is_count(rest[0]):
            raise LoreUsageError(USAGE)
        await self.engine.lore.remove(self.chat_id, int(rest[0]))
        self.say(f"(world-book entry #{rest[0]} removed)")

    async def why(self, rest: list[str]) -> None:
        character = rest[0] if rest else None
        speaker, activation = await self.engine.lore.why(
            self.chat_id, character, " ".join(rest[1:])
        )
        self.say(f"world info for {speaker.name}'s next reply:")
        for fired in activation.fired:
            self.say(f"  {fired.title} ({fired.book}): {fired.reason}")
        for fired in activation.over_budget:
            self.say(f"  over budget: {fired.title} ({fired.book})")
        if not activation.fired and not activation.over_budget:
            self.say("  (nothing fires now)")
