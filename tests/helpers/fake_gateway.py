"""A tiny Discord-compatible server on loopback: login, application info, and a gateway.

Enough for discord.py 2.x to log in and connect (REST ``/users/@me``,
``/oauth2/applications/@me``, ``/gateway/bot``; gateway HELLO -> IDENTIFY -> READY), so a test
can send the bot gateway payloads a real server once sent: ``script`` queues, per connection,
the raw frames sent after READY.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from types import TracebackType
from typing import Any, Self

from aiohttp import WSMsgType, web

BOT_USER = {"id": "4242", "username": "storybot", "discriminator": "0", "avatar": None, "bot": True}
APPLICATION = {
    "id": "4242",
    "name": "storybot",
    "description": "",
    "icon": None,
    "bot_public": True,
    "bot_require_code_grant": False,
    "owner": {"id": "7", "username": "owner", "discriminator": "0", "avatar": None},
    "verify_key": "00",
    "flags": 0,
}


class FakeDiscordServer:
    """``async with FakeDiscordServer() as server``: REST at ``server.api_base``."""

    def __init__(self) -> None:
        self.connections = 0
        self.connected = asyncio.Condition()
        self.identifies: list[dict[str, Any]] = []
        self._frames: deque[list[str]] = deque()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    def script(self, *frames: str) -> None:
        """Raw text frames for the next connection to receive after its READY."""
        self._frames.append(list(frames))

    async def wait_for_connections(self, count: int) -> None:
        async with asyncio.timeout(10.0), self.connected:
            await self.connected.wait_for(lambda: self.connections >= count)

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_get("/api/v10/users/@me", self._json(BOT_USER))
        app.router.add_get("/api/v10/oauth2/applications/@me", self._json(APPLICATION))
        app.router.add_get("/api/v10/gateway/bot", self._gateway_bot)
        app.router.add_get("/gateway", self._gateway)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @staticmethod
    def _json(body: dict[str, Any]) -> Any:
        async def handler(request: web.Request) -> web.Response:
            return _json_response(body)

        return handler

    async def _gateway_bot(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return _json_response({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 45000}})
        async for message in ws:
            if message.type is not WSMsgType.TEXT:
                break
            payload = json.loads(message.data)
            if payload.get("op") == 1:  # HEARTBEAT
                await ws.send_json({"op": 11})
            elif payload.get("op") == 2:  # IDENTIFY
                self.identifies.append(payload)
                ready = self._ready()
                if "shard" in payload["d"]:  # a sharded connection: READY names its shard
                    ready["shard"] = payload["d"]["shard"]
                await ws.send_json({"op": 0, "t": "READY", "s": 1, "d": ready})
                async with self.connected:
                    self.connections += 1
                    self.connected.notify_all()
                for frame in self._frames.popleft() if self._frames else []:
                    await ws.send_str(frame)
        return ws

    def _ready(self) -> dict[str, Any]:
        return {
            "v": 10,
            "user": BOT_USER,
            "guilds": [],
            "session_id": f"session-{self.connections + 1}",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": APPLICATION["id"], "flags": 0},
        }


def _json_response(body: dict[str, Any]) -> web.Response:
    # discord.py reads a body as JSON only when the content type is exactly this, no charset
    return web.Response(body=json.dumps(body).encode(), content_type="application/json")
