"""Which Discord-compatible server the bot talks to: Discord itself, or a self-hosted one.

discord.py keeps its REST base (``Route.BASE``), its gateway (``DEFAULT_GATEWAY``) and its CDN
(``Asset.BASE``) as class attributes, so the server is a property of the whole process: one
bot per process, pointed once before it logs in. ``[discord] api_base`` names the REST base;
the gateway is the one that server announces at ``GET /gateway/bot`` (Discord's own default
needs no request), or ``[discord] gateway_url`` when set.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.config import DISCORD_API_BASE

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Endpoints:
    api: str
    gateway: yarl.URL
    cdn: str


def _current() -> _Endpoints:
    return _Endpoints(Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY, discord.Asset.BASE)


def _apply(endpoints: _Endpoints) -> None:
    Route.BASE = endpoints.api
    DiscordWebSocket.DEFAULT_GATEWAY = endpoints.gateway
    discord.Asset.BASE = endpoints.cdn


def origin_of(api_base: str) -> str:
    """``http://host:port`` of an API base such as ``http://host:port/api/v9``."""
    parts = urlsplit(api_base)
    return f"{parts.scheme}://{parts.netloc}"


def is_discord(api_base: str) -> bool:
    return api_base.rstrip("/") == DISCORD_API_BASE


@contextmanager
def talking_to(api_base: str, gateway_url: str = "") -> Iterator[None]:
    """Point discord.py at ``api_base`` (and ``gateway_url``, if known) until the block ends.

    For a server other than Discord the CDN is taken to live at the API's origin (as it does
    on Spacebar); Discord's own CDN is left alone.
    """
    before = _current()
    api = api_base.rstrip("/")
    gateway = yarl.URL(gateway_url) if gateway_url else before.gateway
    cdn = before.cdn if is_discord(api) else origin_of(api)
    _apply(_Endpoints(api, gateway, cdn))
    try:
        yield
    finally:
        _apply(before)


def use_gateway(url: str) -> None:
    """The gateway a server announced; what every later connection of this process uses."""
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
    log.info("gateway: %s", url)


def invite_url(api_base: str, application_id: int, permissions: discord.Permissions) -> str:
    """The OAuth2 invite link, on the server the bot talks to."""
    url = discord.utils.oauth_url(
        application_id, permissions=permissions, scopes=("bot", "applications.commands")
    )
    if is_discord(api_base):
        return url
    return url.replace("https://discord.com", origin_of(api_base), 1)
