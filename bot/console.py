"""Play a story in a terminal on the same engine the Discord bot uses.

Lines starting with ``/`` are commands named like the slash commands; any other line is your
turn. Replies stream to stdout prefixed with the speaker's name; Ctrl-C stops the reply in
flight (the console's ⛔). Fed a file or a pipe, it plays the lines as a script and exits 0 at
the end of input; a bad command prints an error and play carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from bot.cards import CardError, load_character_file
from bot.config import Settings
from bot.console_errors import describe
from bot.console_lore import LoreUsageError, is_count, lore_command
from bot.engine import BeatEnd, Engine, OutOfCharacter, SceneClose, Speaker, StoryError
from bot.llm import OpenAICompatibleClient
from bot.sharing import sharing
from bot.store import open_store
from bot.store.views import Character

log = logging.getLogger(__name__)

HELP = """\
Commands:
  /character import PATH        import a character (our TOML, a Tavern card JSON/PNG, CHARX)
  /character list               the characters you can cast
  /character show ID            a character's card (creator, version, greetings, lorebook)
  /you set name=… pronouns=… persona=…
  /chat start host=ID [guest=ID] [place="…"] [time=…] [weather=…] [greeting=N]
                                greeting: 0 the first message, 1… an alternate greeting
  /chat set [time=…] [place="…"] [weather=…] [anchor="Day 2"]   move the world on
  /chat end
  /scene close | /scene join ID | /scene leave [ID]
  /meanwhile start [premise]    host and guest go on without you; your lines steer them
  /meanwhile beats N            they take N beats on their own
  /meanwhile end                close it and read what you missed
  /regenerate                   replace the latest reply with a new one
  /rewind [N]                   take back your last N lines (default 1) and what followed
  /why A B                      the beats that moved A's feelings toward B
  /lore import PATH | add keys=… content="…" | list | remove N | why [ID] [line]
                                the story's world book (SillyTavern world info)
  /export PATH                  write the story to PATH.md and its log to PATH.jsonl
  /status  /memories ID [query]  /relationship A B  /help  /quit
Any other line is your turn. Ctrl-C stops a reply that is streaming."""

OWN_CHARACTERS = (
    "characters made here are the console's own: no Discord server sees them. To make them "
    "for a server, start the console with --guild SERVER_ID (and the bot's database)."
)


class ConsoleSink:
    """Streams a beat to a text stream, prefixed with the speaker's name."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    async def begin(self, speaker: Speaker) -> None:
        self.out.write(f"{speaker.name}: ")
        self.out.flush()

    async def append(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    async def end(self, outcome: BeatEnd) -> Sequence[int]:
        if outcome.status == "stopped":
            self.out.write(" [stopped]")
        elif outcome.status == "failed":
            self.out.write(f" [the reply failed: {outcome.error}]")
        self.out.write("\n")
        self.out.flush()
        return ()


class UsageError(Exception):
    """A console command used the wrong way; the message shows the right way."""


def parse_options(words: list[str], allowed: set[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or key not in allowed:
            raise UsageError(
                f"expected key=value with key one of {', '.join(sorted(allowed))}; got {word!r}"
            )
        options[key] = value
    return options


BUSY_LINE = "(the story moves on…)"


class Console:
    """The console's state (the chat it plays) and its commands."""

    def __init__(self, engine: Engine, out: TextIO, *, guild_id: int = 0) -> None:
        self.engine = engine
        self.out = out
        self.guild_id = guild_id  # 0: the console's own characters, seen by no server
        self.chat_id: str | None = None
        self.running = True
        engine.on_busy(self._busy)
        self._commands: dict[str, Callable[[list[str]], Awaitable[None]]] = {
            "character": self._character,
            "you": self._you,
            "chat": self._chat,
            "scene": self._scene,
            "meanwhile": self._meanwhile,
            "status": self._status,
            "memories": self._memories,
            "relationship": self._relationship,
            "regenerate": self._regenerate,
            "rewind": self._rewind,
            "why": self._why,
            "lore": self._lore,
            "export": self._export,
            "help": self._help,
            "quit": self._quit,
        }

    async def _busy(self, chat_id: str, where: int, busy: bool) -> None:
        """A status line while the world moves on after a reply; it clears when done. Only on
        a terminal: piped output stays the story alone."""
        if not self.out.isatty():
            return
        self.out.write(BUSY_LINE if busy else "\r\033[K")
        self.out.flush()

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    async def resume(self) -> None:
        """Pick up the console's open story, if there is one."""
        chat = await self.engine.queries.chat_in_channel(0)
        if chat is not None and chat.guild_id == self.guild_id:
            self.chat_id = chat.id
            self.say(f"(resuming story {chat.id} at {chat.place or 'somewhere'})")

    async def handle(self, line: str) -> None:
        line = line.strip()
        if not line or line.startswith("#"):
            return
        try:
            if line.startswith("/"):
                await self._command(line[1:])
            else:
                await self._turn(line)
        except OutOfCharacter as aside:  # an acknowledgement, not an error
            self.say(str(aside))
        except (StoryError, UsageError, CardError) as exc:
            self.say(f"error: {describe(exc)}")

    async def _command(self, text: str) -> None:
        try:
            words = shlex.split(text)
        except ValueError as exc:
            raise UsageError(f"could not read that command: {exc}") from None
        if not words:
            raise UsageError("empty command; try /help")
        command = self._commands.get(words[0])
        if command is None:
            raise UsageError(f"unknown command /{words[0]}; try /help")
        await command(words[1:])

    def _chat_id(self) -> str:
        if self.chat_id is None:
            raise UsageError("no story yet: /chat start host=ID first")
        return self.chat_id

    async def _turn(self, prose: str) -> None:
        await self.engine.turns.take(self._chat_id(), prose, ConsoleSink(self.out))

    async def _character(self, args: list[str]) -> None:
        if args[:1] == ["import"] and len(args) == 2:
            imported = load_character_file(Path(args[1]))
            avatar = None
            if imported.avatar_bytes and imported.avatar_content_type:
                avatar = (imported.avatar_bytes, imported.avatar_content_type)
            character = await self.engine.characters.author(
                imported.fields, avatar=avatar, guild_id=self.guild_id
            )
            self.say(f"imported {character.name} as {character.id}")
            if not self.guild_id:
                self.say(f"note: {OWN_CHARACTERS}")
            for warning in imported.warnings:
                self.say(f"note: {warning}")
        elif args == ["list"]:
            characters = await self.engine.characters.all(self.guild_id)
            self.say("\n".join(f"{c.id}: {c.name}" for c in characters) or "(no characters yet)")
        elif args[:1] == ["show"] and len(args) == 2:
            self._show_character(args[1], await self.engine.characters.get(self.guild_id, args[1]))
        else:
            raise UsageError("use /character import PATH, /character list or /character show ID")

    def _show_character(self, character_id: str, character: Character | None) -> None:
        if character is None:
            raise UsageError(f"no character {character_id!r}; /character list shows them")
        card = character.card
        self.say(f"{card.name} ({card.id})")
        for label, value in (("creator", card.creator), ("version", card.character_version)):
            if value:
                self.say(f"  {label}: {value}")
        self.say(f"  persona: {card.persona[:300]}")
        if card.personality:
            self.say(f"  personality: {card.personality[:300]}")
        for number, text in enumerate([card.kickoff_prose, *card.alternate_greetings]):
            if text.strip():
                self.say(f"  greeting={number}: {' '.join(text.split())[:100]}")
        entries = (card.character_book or {}).get("entries")
        if isinstance(entries, list) and entries:
            self.say(f"  lorebook: {len(entries)} entries")

    async def _you(self, args: list[str]) -> None:
        if args[:1] != ["set"]:
            raise UsageError("use /you set name=… pronouns=… persona=…")
        options = parse_options(args[1:], {"name", "pronouns", "persona"})
        current = await self.engine.characters.you(self.guild_id, 0)
        you = await self.engine.characters.set_you(
            guild_id=self.guild_id,
            name=options.get("name", current.name),
            pronouns=options.get("pronouns", current.pronouns),
            persona=options.get("persona", current.persona),
        )
        self.say(f"you are {you.name} ({you.pronouns})")

    async def _chat(self, args: list[str]) -> None:
        if args[:1] == ["start"]:
            options = parse_options(
                args[1:], {"host", "guest", "place", "time", "weather", "anchor", "greeting"}
            )
            if "host" not in options:
                raise UsageError("/chat start needs host=ID")
            greeting = options.get("greeting", "0")
            if not is_count(greeting):
                raise UsageError("greeting=N takes a number: 0 the first message, 1… alternates")
            started = await self.engine.chats.start(
                guild_id=self.guild_id,
                host_id=options["host"],
                guest_id=options.get("guest") or None,
                place=options.get("place", ""),
                time=options.get("time", ""),
                weather=options.get("weather", ""),
                narrative_anchor=options.get("anchor", "Day 1"),
                greeting=int(greeting),
            )
            self.chat_id = started.chat.id
            self.say(f"(story {started.chat.id} begins at {started.chat.place or 'somewhere'})")
            if started.kickoff_text:
                self.say(f"{started.kickoff.name}: {started.kickoff_text}")
        elif args[:1] == ["set"]:
            options = parse_options(args[1:], {"place", "time", "weather", "anchor"})
            chat = await self.engine.chats.set_world(
                self._chat_id(),
                time=options.get("time"),
                place=options.get("place"),
                weather=options.get("weather"),
                narrative_anchor=options.get("anchor"),
            )
            self.say(
                f"(now: {chat.narrative_anchor}, {chat.world_time} — {chat.place}, {chat.weather})"
            )
        elif args == ["end"]:
            await self.engine.chats.end(self._chat_id())
            self.say("(the story ends)")
            self.chat_id = None
        else:
            raise UsageError(
                "use /chat start host=ID …, /chat set time=… place=… weather=…, /chat end"
            )

    async def _scene(self, args: list[str]) -> None:
        chat_id = self._chat_id()
        if args == ["close"]:
            self._show_close(await self.engine.scenes.close(chat_id))
        elif args[:1] == ["join"] and len(args) <= 2:
            self._show_close(
                await self.engine.scenes.guest_join(chat_id, args[1] if len(args) == 2 else None)
            )
        elif args[:1] == ["leave"] and len(args) <= 2:
            self._show_close(
                await self.engine.scenes.guest_leave(chat_id, args[1] if len(args) == 2 else None)
            )
        else:
            raise UsageError("use /scene close, /scene join ID or /scene leave [ID]")

    def _show_close(self, closed: SceneClose) -> None:
        if closed.digest:  # a meanwhile scene: you learn of it what the digest tells, no more
            self.say(closed.digest)
            return
        else:
            self.say(f"(scene {closed.scene_id} closes; scene {closed.new_scene_id} begins)")
        for title in closed.threads:
            self.say(f"(story thread: {title})")

    async def _meanwhile(self, args: list[str]) -> None:
        chat_id = self._chat_id()
        if args[:1] == ["start"]:
            premise = " ".join(args[1:])
            await self.engine.scenes.start_meanwhile(chat_id, premise=premise)
            self.say("(meanwhile… your lines now steer the scene without you)")
        elif args[:1] == ["beats"] and len(args) == 2 and is_count(args[1]):
            await self.engine.turns.meanwhile_beats(
                chat_id, int(args[1]), lambda: ConsoleSink(self.out)
            )
        elif args == ["end"]:
            self._show_close(await self.engine.scenes.end_meanwhile(chat_id))
        else:
            raise UsageError("use /meanwhile start [premise], /meanwhile beats N or /meanwhile end")

    async def _status(self, args: list[str]) -> None:
        status = await self.engine.queries.status(self._chat_id())
        chat = status.chat
        self.say(
            f"{chat.narrative_anchor}, {chat.world_time} — {chat.place or 'somewhere'}"
            + (f", {chat.weather}" if chat.weather else "")
        )
        for entity in status.present:
            activity = status.activities.get(entity)
            doing = f": {activity.posture} {activity.verb}".rstrip() if activity else ""
            self.say(f"  {status.names.get(entity, entity)}{doing}")
        if status.meanwhile is not None:
            self.say("  (host and guest are away in a meanwhile scene)")

    async def _memories(self, args: list[str]) -> None:
        if not args:
            raise UsageError("use /memories ID [query]")
        memories = await self.engine.queries.own_memories(
            self._chat_id(), args[0], query=" ".join(args[1:])
        )
        for memory in memories:
            self.say("- " + " / ".join((memory.pov_summary or memory.text).splitlines()))
        if not memories:
            self.say("(no memories)")

    async def _relationship(self, args: list[str]) -> None:
        if len(args) != 2:
            raise UsageError("use /relationship A B")
        rel = await self.engine.queries.relationship(self._chat_id(), args[0], args[1])
        self.say(f"{rel.source_id} → {rel.target_id}: affinity {rel.affinity}, trust {rel.trust}")
        for fact in rel.knowledge_facts:
            self.say(f"  knows: {fact}")

    async def _regenerate(self, args: list[str]) -> None:
        await self.engine.history.regenerate(self._chat_id(), ConsoleSink(self.out))

    async def _rewind(self, args: list[str]) -> None:
        if len(args) > 1 or (args and not is_count(args[0])) or args == ["0"]:
            raise UsageError("use /rewind [N] with N ≥ 1")
        count = int(args[0]) if args else 1
        rewound = await self.engine.history.rewind_lines(self._chat_id(), count)
        beats = "beat" if len(rewound.beats) == 1 else "beats"
        self.say(f"(rewound {len(rewound.beats)} {beats}; the story goes on from here)")

    async def _why(self, args: list[str]) -> None:
        if len(args) != 2:
            raise UsageError("use /why A B")
        changes = await self.engine.history.why(self._chat_id(), args[0], args[1])
        for change in changes:
            excerpt = change.beat_text[:80] + ("…" if len(change.beat_text) > 80 else "")
            self.say(
                f"  affinity {change.affinity_delta:+d}, trust {change.trust_delta:+d}: {excerpt}"
            )
        if not changes:
            self.say("(nothing has moved those feelings yet)")

    async def _lore(self, args: list[str]) -> None:
        try:
            await lore_command(self.engine, self._chat_id(), args, self.say, parse_options)
        except LoreUsageError as exc:
            raise UsageError(str(exc)) from None

    async def _export(self, args: list[str]) -> None:
        if len(args) != 1:
            raise UsageError("use /export PATH")
        markdown, log_lines = await self.engine.queries.export(self._chat_id())
        base = Path(args[0])
        try:
            await asyncio.to_thread(base.with_suffix(".md").write_text, markdown, encoding="utf-8")
            await asyncio.to_thread(
                base.with_suffix(".jsonl").write_text, log_lines, encoding="utf-8"
            )
        except OSError as exc:
            raise UsageError(f"cannot write {base}: {exc}") from None
        self.say(f"(wrote {base.with_suffix('.md')} and {base.with_suffix('.jsonl')})")

    async def _help(self, args: list[str]) -> None:
        self.say(HELP)

    async def _quit(self, args: list[str]) -> None:
        self.running = False


@dataclass(frozen=True, slots=True)
class Unreadable:
    """An input line that is not UTF-8: refused with a message, and the session goes on."""

    reason: str


def decode_line(raw: bytes | str, number: int) -> str | Unreadable:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        return Unreadable(
            f"line {number} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at position "
            f"{exc.start + 1}); it was skipped: set your terminal or file to UTF-8"
        )


def fd_lines(fd: int) -> Iterator[bytes]:
    """The lines of a file descriptor, read with ``os.read``.

    Not ``sys.stdin.buffer``: a daemon thread blocked inside a buffered reader holds its lock,
    and the interpreter aborts at exit when it cannot take that lock (after /quit).
    """
    pending = b""
    while chunk := os.read(fd, 65536):
        *lines, pending = (pending + chunk).split(b"\n")
        yield from (line + b"\n" for line in lines)
    if pending:
        yield pending


async def _lines(source: Iterable[bytes | str]) -> asyncio.Queue[str | Unreadable | None]:
    """Read lines in a thread so the event loop (and Ctrl-C handling) never blocks on input.

    Bytes are decoded line by line, so one undecodable line is refused, never the session's end;
    whatever stops the reading, the queue gets its end (None), so play never waits forever.
    """
    queue: asyncio.Queue[str | Unreadable | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def put(item: str | Unreadable | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed (after /quit) meanwhile
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def reader() -> None:
        try:
            for number, raw in enumerate(source, start=1):
                put(decode_line(raw, number))
        except (OSError, ValueError) as exc:  # a text stream that cannot decode, a closed pipe
            put(Unreadable(f"the input cannot be read any further: {exc}"))
        finally:
            put(None)

    # A daemon thread, not the loop's executor: after /quit, asyncio.run would otherwise wait
    # for this thread, which is blocked reading the terminal until the next line or Ctrl-D.
    threading.Thread(target=reader, name="console-input", daemon=True).start()
    return queue


async def play(
    engine: Engine,
    source: Iterable[bytes | str],
    out: TextIO,
    *,
    interactive: bool,
    guild_id: int = 0,
) -> int:
    console = Console(engine, out, guild_id=guild_id)
    await console.resume()
    if interactive:
        console.say("storybot console — /help for commands, Ctrl-C stops a reply, /quit leaves")
        console.say(f"(characters here are for server {guild_id})" if guild_id else OWN_CHARACTERS)
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, lambda: _interrupt(console))
    try:
        lines = await _lines(source)
        while console.running:
            if interactive:
                out.write("> ")
                out.flush()
            line = await lines.get()
            if line is None:
                break
            if isinstance(line, Unreadable):
                console.say(f"error: {line.reason}")
                continue
            await console.handle(line)
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
    return 0


def _interrupt(console: Console) -> None:
    if console.chat_id is not None and console.engine.turns.cancel(console.chat_id):
        return
    console.say("\n(bye)")
    console.running = False
    raise KeyboardInterrupt


async def run_console(settings: Settings, *, script: Path | None = None, guild_id: int = 0) -> int:
    async with (
        open_store(settings.storage) as db,
        sharing(settings) as shared,  # beside bot processes on one PostgreSQL: their cap, locks
        OpenAICompatibleClient.from_settings(settings.llm, gate=shared.gate) as llm,
    ):
        engine = Engine(db, llm, settings, chat_lock=shared.chat_lock)
        await engine.turns.recover_interrupted()
        if script is not None:
            with script.open("rb") as source:
                return await play(engine, source, sys.stdout, interactive=False, guild_id=guild_id)
        stdin = fd_lines(sys.stdin.fileno())
        return await play(
            engine, stdin, sys.stdout, interactive=sys.stdin.isatty(), guild_id=guild_id
        )
