"""A player of the e2e suite: a plain REST + gateway client with a user token.

discord.py cannot log in as a user, so the player speaks the protocol itself: REST through
httpx for what a person does (post, edit, delete, react, slash commands, buttons, message
commands, as ``POST /interactions``), and a gateway connection through aiohttp that records
every event it is sent, so a test can wait for what the player would see (ephemeral answers
included, which only the gateway delivers).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
import httpx

log = logging.getLogger(__name__)

Payload = dict[str, Any]
WAIT_SECONDS = 30.0
"""How long a step waits for what the player should see before the test fails."""


@dataclass(frozen=True)
class Seen:
    """One gateway dispatch as the player received it."""

    kind: str
    data: Payload
    at: float


@dataclass
class Player:
    """One person on the server: ``token`` is theirs; commands go to ``application_id``."""

    api: str
    gateway: str
    token: str = field(repr=False)
    user_id: str
    guild_id: str
    application_id: str
    events: list[Seen] = field(default_factory=list, repr=False)
    _http: httpx.AsyncClient | None = field(default=None, repr=False)
    _ws: aiohttp.ClientWebSocketResponse | None = field(default=None, repr=False)
    _session: aiohttp.ClientSession | None = field(default=None, repr=False)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list, repr=False)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _commands: dict[tuple[int, str], Payload] = field(default_factory=dict, repr=False)
    _nonces: itertools.count[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    # -- connection -----------------------------------------------------------------------------

    async def open_rest(self) -> None:
        """REST only (enough to register, join a guild or look around)."""
        if self._http is None:
            headers = {"Authorization": self.token} if self.token else {}
            self._http = httpx.AsyncClient(base_url=self.api, headers=headers, timeout=30)

    async def connect(self) -> None:
        """REST, then the gateway: from READY on, every event is recorded."""
        await self.open_rest()
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(f"{self.gateway}/?v=9&encoding=json")
        hello = await self._ws.receive_json(timeout=30)
        interval = hello["d"]["heartbeat_interval"] / 1000
        await self._ws.send_json(
            {
                "op": 2,
                "d": {
                    "token": self.token,
                    "properties": {"os": "linux", "browser": "e2e", "device": "e2e"},
                    "intents": (1 << 0) | (1 << 9) | (1 << 10) | (1 << 15),
                },
            }
        )
        self._tasks.append(asyncio.create_task(self._read(), name="player gateway"))
        self._tasks.append(asyncio.create_task(self._beat(interval), name="player heartbeat"))
        await self.wait_for("READY")

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()
        if self._http is not None:
            await self._http.aclose()

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            payload = json.loads(message.data)
            if payload.get("op") == 0:
                self.events.append(Seen(payload["t"], payload["d"] or {}, time.monotonic()))
                self._arrived.set()
        log.warning("the player's gateway closed: %s", self._ws.close_code)

    async def _beat(self, interval: float) -> None:
        assert self._ws is not None
        while True:
            await asyncio.sleep(interval * 0.9)
            await self._ws.send_json({"op": 1, "d": None})

    # -- seeing -----------------------------------------------------------------------------------

    def mark(self) -> int:
        """A point in the event log: wait_for(since=mark) sees only what came after."""
        return len(self.events)

    async def wait_for(
        self,
        kind: str | tuple[str, ...],
        match: Callable[[Payload], bool] = lambda d: True,
        *,
        since: int = 0,
        within: float = WAIT_SECONDS,
    ) -> Payload:
        """The first ``kind`` event since ``since`` that ``match``es, waiting if need be."""
        kinds = (kind,) if isinstance(kind, str) else kind
        deadline = time.monotonic() + within
        index = since
        while True:
            while index < len(self.events):
                seen = self.events[index]
                index += 1
                if seen.kind in kinds and match(seen.data):
                    return seen.data
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"the player never saw {kind} matching {match}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)

    def seen(self, kind: str, *, since: int = 0) -> list[Seen]:
        return [s for s in self.events[since:] if s.kind == kind]

    # -- REST -------------------------------------------------------------------------------------

    async def get(self, path: str) -> httpx.Response:
        """The server's answer to a GET, whatever its status."""
        assert self._http is not None
        return await self._http.get(path)

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        assert self._http is not None
        response = await self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json() if response.content else None

    async def send(self, channel_id: str, content: str) -> Payload:
        nonce = str(next(self._nonces) + int(time.time() * 1000))
        sent: Payload = await self.call(
            "POST", f"/channels/{channel_id}/messages", json={"content": content, "nonce": nonce}
        )
        return sent

    async def edit(self, channel_id: str, message_id: str, content: str) -> None:
        await self.call(
            "PATCH", f"/channels/{channel_id}/messages/{message_id}", json={"content": content}
        )

    async def delete(self, channel_id: str, message_id: str) -> None:
        await self.call("DELETE", f"/channels/{channel_id}/messages/{message_id}")

    async def react(self, channel_id: str, message_id: str, emoji: str) -> None:
        path = f"/channels/{channel_id}/messages/{message_id}/reactions/{quote(emoji)}/@me"
        await self.call("PUT", path)

    async def messages(self, channel_id: str, limit: int = 50) -> list[Payload]:
        """The channel's messages, oldest first."""
        found: list[Payload] = await self.call(
            "GET", f"/channels/{channel_id}/messages", params={"limit": limit}
        )
        return sorted(found, key=lambda m: int(m["id"]))

    async def message(self, channel_id: str, message_id: str) -> Payload:
        found: Payload = await self.call("GET", f"/channels/{channel_id}/messages/{message_id}")
        return found

    # -- interactions -----------------------------------------------------------------------------

    async def _command(self, name: str, kind: int) -> Payload:
        if (kind, name) not in self._commands:
            path = f"/applications/{self.application_id}/guilds/{self.guild_id}/commands"
            for command in await self.call("GET", path):
                self._commands[(command.get("type", 1), command["name"])] = command
        return self._commands[(kind, name)]

    async def _interact(self, channel_id: str, body: Payload) -> str:
        nonce = str(int(time.time() * 1000) * 1000 + next(self._nonces))
        await self.call(
            "POST",
            "/interactions",
            json={
                "application_id": self.application_id,
                "guild_id": self.guild_id,
                "channel_id": channel_id,
                "nonce": nonce,
                "session_id": "e2e",
                **body,
            },
        )
        return nonce

    async def slash(self, channel_id: str, command: str, **options: Any) -> int:
        """``/chat start host:mira`` is ``slash(ch, "chat start", host="mira")``; returns a mark."""
        mark = self.mark()
        top, *sub = command.split()
        found = await self._command(top, 1)
        given = [
            {"name": key, "type": 4 if isinstance(value, int) else 3, "value": value}
            for key, value in options.items()
        ]
        if sub:
            given = [{"name": sub[0], "type": 1, "options": given}]
        data = {
            "id": found["id"],
            "name": top,
            "type": 1,
            "version": found.get("version"),
            "options": given,
        }
        await self._interact(channel_id, {"type": 2, "data": data})
        return mark

    async def message_command(self, channel_id: str, name: str, target: Payload) -> int:
        mark = self.mark()
        found = await self._command(name, 3)
        data = {
            "id": found["id"],
            "name": name,
            "type": 3,
            "target_id": target["id"],
            # Discord never sends null fields here (discord.py iterates "components")
            "resolved": {
                "messages": {target["id"]: {k: v for k, v in target.items() if v is not None}}
            },
        }
        await self._interact(channel_id, {"type": 2, "data": data})
        return mark

    async def press(self, channel_id: str, message_id: str, custom_id: str) -> int:
        mark = self.mark()
        body = {
            "type": 3,
            "message_id": message_id,
            "message_flags": 0,
            "data": {"component_type": 2, "custom_id": custom_id},
        }
        await self._interact(channel_id, body)
        return mark
