"""The command line: check settings, rebuild projections, dump a chat's log, run the bot.

Every failure a user can cause ends in one clear line on stderr and a non-zero exit code,
never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import os
import sqlite3
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from bot.config import ConfigError, Settings, load_settings, with_shards
from bot.errors import CommandError
from bot.store import EventError, StoreError, dump_jsonl, events_of_chat, open_store, project
from bot.store.backup import import_log
from bot.store.pg.connect import is_postgres_url
from bot.store.stores import store_name

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="storybot: a Discord role-play bot on an append-only event log.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="settings file (TOML); default: $STORYBOT_CONFIG, else built-in defaults",
    )
    parser.add_argument(
        "--db",
        metavar="PATH_OR_URL",
        help="the store: a SQLite file, or a postgresql:// URL; overrides [storage]",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument(
        "--log-file",
        type=Path,
        help="write log lines here; default: stderr (the console: storybot.log beside the "
        "database when stderr is the terminal it plays on)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = commands.add_parser("check-config", help="validate the settings and say what is wrong")
    check.add_argument(
        "--probe",
        action="store_true",
        help="also ask the LLM server: its models, each configured model, JSON mode, streaming",
    )
    commands.add_parser("rebuild", help="rebuild every projection table from the event log")
    events = commands.add_parser("events", help="print a chat's events as JSON lines")
    events.add_argument("chat_id", help="the chat whose log to print")
    events.add_argument("--after", type=int, default=0, help="only events with a larger id")
    restore = commands.add_parser(
        "import-log", help="restore a chat from an exported log (JSON lines) into the database"
    )
    restore.add_argument("file", type=Path, help="the .jsonl file from /chat export")
    run = commands.add_parser("run", help="run the Discord bot")
    run.add_argument(
        "--shards",
        type=_shard_list,
        metavar="IDS",
        help="run these shards (comma-separated ids, e.g. 0,1) of --shard-count; overrides "
        "[discord] shards",
    )
    run.add_argument(
        "--shard-count",
        type=int,
        metavar="N",
        help="the bot's number of shards over all processes; overrides [discord] shard_count",
    )
    console = commands.add_parser("console", help="play a story in this terminal")
    console.add_argument("--script", type=Path, help="play the lines of this file, then exit")
    console.add_argument(
        "--guild",
        type=int,
        default=0,
        metavar="SERVER_ID",
        help="make characters and stories for this Discord server (default: the console's own)",
    )
    return parser


def _shard_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of shard ids: give numbers separated by commas, e.g. 0,1"
        ) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; logging is set up for it and given back as it was afterwards (so a
    caller in the same process, a test, keeps its own)."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers), logging.getLogger("bot.store").level)
    try:
        return _main(argv)
    finally:
        for handler in root.handlers:
            if handler not in saved[1]:
                handler.close()
        root.handlers[:] = saved[1]
        root.setLevel(saved[0])
        logging.getLogger("bot.store").setLevel(saved[2])


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
        setup_logging(args, settings)
    except (ConfigError, OSError) as exc:  # OSError: a log file that cannot be written
        print(f"error: {exc}", file=sys.stderr)
        return 2
    handler = _COMMANDS[args.command]
    try:
        return asyncio.run(handler(settings, args))
    except KeyboardInterrupt:
        return 130
    except (CommandError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except sqlite3.Error as exc:
        # a file that is not a database, a full disk, a database locked by another process
        print(f"error: database {settings.storage.db_path}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. a database folder that cannot be created
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    if args.command == "run":
        settings = with_shards(settings, args.shards, args.shard_count)
    if args.db is None:
        return settings
    if is_postgres_url(args.db):
        storage = settings.storage.model_copy(update={"url": args.db})
    else:
        storage = settings.storage.model_copy(update={"db_path": Path(args.db), "url": ""})
    return settings.model_copy(update={"storage": storage})


def setup_logging(args: argparse.Namespace, settings: Settings) -> None:
    """WARNING and worse by default (``-v``: everything), on stderr or in ``--log-file``;
    ``run`` logs INFO too (the invite link, commands synced, the connection), since a bot that
    runs for months is read through its log.

    The console streams the story to stdout; where stderr is that same terminal (or file),
    log lines would land inside the story's text, so they go to a file beside the database.
    """
    log_file: Path | None = args.log_file
    if log_file is None and args.command == "console" and _stderr_is_stdout():
        # beside the SQLite file; with PostgreSQL, beside the default db_path (the folder run in)
        log_file = Path(settings.storage.db_path).with_name("storybot.log")
    handler: logging.Handler = (
        # the default file appears only once there is something to log in it
        logging.FileHandler(log_file, encoding="utf-8", delay=args.log_file is None)
        if log_file
        else logging.StreamHandler()
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    quiet = logging.INFO if args.command == "run" else logging.WARNING
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else quiet, handlers=[handler], force=True
    )
    # a migration applied is news once; the store says so at INFO, which run shows
    logging.getLogger("bot.store").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    # httpx logs every request at INFO: only with -v.
    logging.getLogger("httpx").setLevel(logging.DEBUG if args.verbose else logging.WARNING)


def _stderr_is_stdout() -> bool:
    try:
        out, err = os.fstat(sys.stdout.fileno()), os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        return False
    return (out.st_dev, out.st_ino) == (err.st_dev, err.st_ino)


async def _check_config(settings: Settings, args: argparse.Namespace) -> int:
    problems = []
    if not settings.discord.token.get_secret_value():
        problems.append(
            "[discord] token is empty: set it in the config file or in STORYBOT_DISCORD_TOKEN "
            "(needed only for `run`)"
        )
    if not settings.llm.api_key.get_secret_value():
        problems.append(
            "[llm] api_key is empty: set it in the config file or in STORYBOT_LLM_API_KEY "
            "(local servers such as Ollama or llama.cpp accept any value)"
        )
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    print(
        f"settings OK: LLM {settings.llm.base_url} (narrative model "
        f"{settings.llm.narrative_model}, {settings.llm.max_concurrency} concurrent requests), "
        f"store {store_name(settings.storage)}"
    )
    if not args.probe:
        return 0
    return await _probe(settings)


async def _probe(settings: Settings) -> int:
    """One line per finding; non-zero when something the bot needs does not work."""
    from bot.llm import OpenAICompatibleClient, Timeouts  # noqa: PLC0415 - only the probe talks
    from bot.llm.probe import probe  # noqa: PLC0415

    llm = settings.llm
    timeouts = Timeouts(
        llm.timeouts.connect,
        llm.timeouts.first_token,
        llm.timeouts.idle,
        min(llm.timeouts.total, 60),
    )
    async with OpenAICompatibleClient.from_settings(
        llm, max_retries=0, timeouts=timeouts
    ) as client:
        findings = await probe(
            client,
            narrative_model=llm.narrative_model,
            classifier_model=llm.classifier_model,
            use_response_format=llm.use_response_format,
        )
    for finding in findings:
        print(finding)
    failed = sum(f.verdict == "failed" for f in findings)
    print(
        f"probe: {failed} problem(s) found"
        if failed
        else "probe: the LLM server does all storybot needs"
    )
    return 1 if failed else 0


async def _rebuild(settings: Settings, args: argparse.Namespace) -> int:
    async with open_store(settings.storage) as db:
        count = await project(db)
    print(f"rebuilt projections of {db.path} from {count} events")
    return 0


async def _events(settings: Settings, args: argparse.Namespace) -> int:
    # read-only: works beside the process that owns the database
    async with open_store(settings.storage, read_only=True) as db:
        events = await events_of_chat(db, args.chat_id, after_id=args.after)
    if not events:
        raise CommandError(f"no events for chat {args.chat_id!r} in {db.path}")
    sys.stdout.write(dump_jsonl(events))
    return 0


async def _import_log(settings: Settings, args: argparse.Namespace) -> int:
    try:
        text = await asyncio.to_thread(args.file.read_text, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read {args.file}: {exc}") from None
    async with open_store(settings.storage) as db:
        try:
            restored = await import_log(db, text.splitlines())
        except EventError as exc:
            raise CommandError(f"{args.file} was not imported: {exc}") from None
    print(
        f"restored {restored.events} events (chats: {', '.join(restored.chat_ids) or 'none'}) "
        f"into {db.path}"
    )
    return 0


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import run_discord  # noqa: PLC0415 - only `run` needs discord.py loaded

    return await run_discord(settings)


async def _console(settings: Settings, args: argparse.Namespace) -> int:
    from bot.console import run_console  # noqa: PLC0415 - keeps other commands light

    return await run_console(settings, script=args.script, guild_id=args.guild)


_COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]] = {
    "check-config": _check_config,
    "rebuild": _rebuild,
    "events": _events,
    "import-log": _import_log,
    "run": _run,
    "console": _console,
}
