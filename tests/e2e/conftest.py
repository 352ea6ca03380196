"""The e2e world: a real Spacebar server, storybot as its own process, players, a loopback LLM.

Everything here is marked ``e2e`` and left out of the default ``pytest -q`` (``addopts`` in
pyproject.toml); ``.ci/run`` runs it as its own step with ``pytest -m e2e tests/e2e``.

- The server: ``shared/spacebar/up.sh`` beside the repository (``$STORYBOT_SPACEBAR_DIR`` to
  point elsewhere) builds and starts Spacebar on loopback and provisions a player, a guild and
  a bot; ``$STORYBOT_E2E_STATE`` names the state.json of a server already running instead.
  When the server cannot be had, every e2e test is skipped with the reason, never silently.
- The bot: ``python -m bot run`` with ``[discord] api_base`` set (no monkeypatching), its
  characters prepared beforehand with ``python -m bot console --guild``.
- The LLM: tests/llm_server.py in this event loop; narration is scripted per step.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from cogs._guards import NO_STORY_HERE
from tests.e2e.player import Payload, Player
from tests.helpers.llm_server import LoopbackLLMServer, RecordedRequest, Reply
from tests.helpers.story_replies import story_reply

REPO = Path(__file__).resolve().parents[2]
LOGGED_ERROR = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ (ERROR|CRITICAL) ")
SPACEBAR_CHANNEL_UPDATE = "dropped a CHANNEL_UPDATE event"
E2E = Path(__file__).resolve().parent
UP_SECONDS = 480
"""The most the server's build and start may take (about 3 minutes the first time)."""
WORK_NAME = "storybot-e2e"
"""The server's work folder, in the temp dir: outside any git repository, since up.sh patches
Spacebar with ``git apply``, which inside a repository resolves paths against that repository
(and skips the patch). Kept between runs, so a second run skips the build."""


E2E_TEST = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]
"""Every e2e module's ``pytestmark``: marked, and in the session's loop (the LLM server's)."""


# -- the server -------------------------------------------------------------------------------


def spacebar_dir() -> Path:
    """shared/spacebar beside the repository (as CI lays it out), or $STORYBOT_SPACEBAR_DIR."""
    given = os.environ.get("STORYBOT_SPACEBAR_DIR")
    return Path(given) if given else REPO.parent / "shared" / "spacebar"


def _tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _start_server(work: Path) -> dict[str, Any]:
    scripts = spacebar_dir()
    if not (scripts / "up.sh").exists():
        pytest.skip(
            f"e2e: no Spacebar scripts at {scripts} (set STORYBOT_SPACEBAR_DIR to the folder "
            "holding up.sh)"
        )
    work.mkdir(parents=True, exist_ok=True)
    log = work / "up.log"
    env = {**os.environ, "PY": sys.executable}
    try:
        with log.open("w") as out:
            done = subprocess.run(
                ["bash", str(scripts / "up.sh"), str(work)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                timeout=UP_SECONDS,
                check=False,
            )
    except subprocess.TimeoutExpired:
        pytest.skip(f"e2e: Spacebar did not start within {UP_SECONDS} s:\n{_tail(log)}")
    if done.returncode != 0:
        reason = f"e2e: Spacebar could not be built or started (up.sh exit {done.returncode}):"
        pytest.skip(f"{reason}\n{_tail(log)}")
    state: dict[str, Any] = json.loads((work / "state.json").read_text())
    return state


@pytest.fixture(scope="session")
def server() -> Iterator[dict[str, Any]]:
    """The running server's state: api, gateway, player and bot tokens and ids."""
    given = os.environ.get("STORYBOT_E2E_STATE")
    if given:
        yield json.loads(Path(given).read_text())
        return
    work = Path(os.environ.get("STORYBOT_E2E_WORK") or Path(tempfile.gettempdir()) / WORK_NAME)
    started = time.monotonic()
    state = _start_server(work)
    print(f"e2e: Spacebar up in {time.monotonic() - started:.0f} s", file=sys.stderr)
    try:
        yield state
    finally:
        subprocess.run(
            ["bash", str(spacebar_dir() / "down.sh"), str(work)], check=False, timeout=60
        )


# -- the LLM --------------------------------------------------------------------------------


@dataclass
class Narration:
    """What the characters say, step by step: streamed replies in order, JSON as the console's."""

    lines: deque[Reply] = field(default_factory=deque)

    def then(self, text: str, *, seconds: float = 1.5) -> str:
        """The next streamed reply says ``text``, spread over about ``seconds``."""
        words = max(1, len(text.split()))
        self.lines.append(Reply.text(text, chunk_delay=seconds / words))
        return text

    def __call__(self, request: RecordedRequest) -> Reply:
        if request.stream and self.lines:
            return self.lines.popleft()
        return story_reply(request)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def llm() -> AsyncIterator[tuple[LoopbackLLMServer, Narration]]:
    narration = Narration()
    async with LoopbackLLMServer(narration) as served:
        yield served, narration


@pytest.fixture
def narration(llm: tuple[LoopbackLLMServer, Narration]) -> Iterator[Narration]:
    llm[1].lines.clear()
    yield llm[1]
    llm[1].lines.clear()


# -- the bot ----------------------------------------------------------------------------------


@dataclass
class BotProcess:
    """storybot as its own process (``python -m bot run``), started, stopped, killed by test."""

    config: Path
    log: Path
    answers: Callable[[], Awaitable[bool]]
    process: asyncio.subprocess.Process | None = None
    starts: int = 0

    async def start(self) -> None:
        self.starts += 1
        marker = f"== start {self.starts}\n"
        with self.log.open("a") as out:
            out.write(marker)
        env = {k: v for k, v in os.environ.items() if not k.startswith("STORYBOT_")}
        with self.log.open("a") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "--config",
                str(self.config),
                "run",
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        # Ready when it answers a player (its log shows only warnings, so it cannot tell us).
        deadline = time.monotonic() + 60
        while not await self.answers():
            if self.process.returncode is not None or time.monotonic() > deadline:
                raise AssertionError(f"storybot did not come up:\n{_tail(self.log, 30)}")
            await asyncio.sleep(0.5)

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop the bot with ``sig`` (SIGTERM: a clean shutdown; SIGKILL: a crash)."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(sig)
        code = await asyncio.wait_for(self.process.wait(), 30)
        self.process = None
        return code

    def logged(self) -> str:
        return self.log.read_text()

    def errors(self) -> list[str]:
        """ERROR lines the bot logged, but for Spacebar's known CHANNEL_UPDATE without position
        (dropped by the gateway guard: discord.py needs the key, the event is not ours)."""
        return [
            line
            for line in self.logged().splitlines()
            if LOGGED_ERROR.match(line) and SPACEBAR_CHANNEL_UPDATE not in line
        ]

    async def wait_logged(self, text: str, *, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while text not in self.logged():
            if time.monotonic() > deadline:
                raise AssertionError(f"storybot never logged {text!r}:\n{_tail(self.log, 30)}")
            await asyncio.sleep(0.1)


def _write_config(path: Path, server: dict[str, Any], llm: LoopbackLLMServer, db: Path) -> None:
    path.write_text(
        f"""\
[discord]
token = "{server["bot_token"]}"
guild_ids = [{server["guild_id"]}]
api_base = "{server["api"]}"
edit_interval_seconds = 0.5

[llm]
base_url = "{llm.base_url}"
api_key = "sk-loopback"
max_retries = 0

[llm.timeouts]
connect = 5.0
first_token = 20.0
idle = 20.0
total = 60.0

[storage]
db_path = "{db}"
""",
        encoding="utf-8",
    )


async def answers_in(player: Player, channel_id: str) -> bool:
    """Whether the bot answers ``/chat status`` in a channel without a story, within 3 s."""
    try:
        mark = await player.slash(channel_id, "chat status")
        await player.wait_for(
            ("MESSAGE_CREATE", "MESSAGE_UPDATE"),
            lambda d: NO_STORY_HERE in (d.get("content") or ""),
            since=mark,
            within=3,
        )
    except (AssertionError, KeyError):  # not connected, or its commands not synced yet
        return False
    return True


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def bot(
    server: dict[str, Any],
    llm: tuple[LoopbackLLMServer, Narration],
    owner: Player,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[BotProcess]:
    """storybot connected to the server, with Mira and Tomás prepared for its guild."""
    folder = tmp_path_factory.mktemp("storybot")
    config = folder / "storybot.toml"
    _write_config(config, server, llm[0], folder / "story.db")
    script = folder / "prepare.txt"
    characters = REPO / "examples" / "characters"
    script.write_text(
        f"/character import {characters / 'mira.toml'}\n"
        f"/character import {characters / 'tomas.toml'}\n"
    )
    prepare = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "--config",
        str(config),
        "console",
        "--guild",
        str(server["guild_id"]),
        "--script",
        str(script),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = await prepare.communicate()
    assert prepare.returncode == 0, out.decode()
    process = BotProcess(
        config, folder / "bot.log", lambda: answers_in(owner, str(server["channel_id"]))
    )
    await process.start()
    try:
        yield process
    finally:
        if process.process is not None:
            await process.stop()


# -- players ----------------------------------------------------------------------------------


def _player(server: dict[str, Any], token: str, user_id: str) -> Player:
    return Player(
        api=server["api"],
        gateway=server["gateway"],
        token=token,
        user_id=user_id,
        guild_id=server["guild_id"],
        application_id=server["application_id"],
    )


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def owner(server: dict[str, Any]) -> AsyncIterator[Player]:
    """The provisioned player: owns the guild, and every story the tests start."""
    player = _player(server, server["player_token"], server["player_id"])
    await player.connect()
    try:
        yield player
    finally:
        await player.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def stranger(server: dict[str, Any], owner: Player) -> AsyncIterator[Player]:
    """A second player: a member of the guild who owns no story."""
    stamp = int(time.time() * 1000)
    anonymous = _player(server, "", "")
    await anonymous.open_rest()
    registered = await anonymous.call(
        "POST",
        "/auth/register",
        json={
            "username": f"stranger{stamp}",
            "email": f"stranger{stamp}@example.test",
            "password": "Stranger-pass-123",
            "consent": True,
            "date_of_birth": "1990-01-01",
        },
    )
    await anonymous.close()
    token = registered["token"]
    invite = await owner.call("POST", f"/channels/{server['channel_id']}/invites", json={})
    player = _player(server, token, "")
    await player.open_rest()
    me = await player.call("GET", "/users/@me")
    player.user_id = me["id"]
    await player.call("POST", f"/invites/{invite['code']}")
    await player.connect()
    try:
        yield player
    finally:
        await player.close()


async def new_channel(owner: Player, name: str, *, deny_bot: int = 0, bot_id: str = "") -> str:
    """A new text channel of the guild; ``deny_bot`` permissions are taken from the bot there."""
    body: Payload = {"name": name[:90], "type": 0}
    if deny_bot:
        body["permission_overwrites"] = [
            {"id": bot_id, "type": 1, "allow": "0", "deny": str(deny_bot)}
        ]
    created: Payload = await owner.call("POST", f"/guilds/{owner.guild_id}/channels", json=body)
    return str(created["id"])


@pytest_asyncio.fixture(loop_scope="session")
async def channel(owner: Player, request: pytest.FixtureRequest) -> str:
    """A fresh text channel for one test, so every story starts on a clean page."""
    return await new_channel(owner, request.node.name.replace("test_", ""))
