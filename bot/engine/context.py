"""What every part of the engine shares: the store, the models, the settings, the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.config import EngineSettings
from bot.engine.busy import BusyNotice
from bot.engine.errors import HostDeleted, NoOpenScene, NoOpenStory
from bot.engine.inflight import ChatQueues, InFlight
from bot.engine.models import StoryModels
from bot.store import Database
from bot.store.views import Character, Chat, Scene, Views, You


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class StoryContext:
    db: Database
    views: Views
    models: StoryModels
    settings: EngineSettings
    queues: ChatQueues = field(default_factory=ChatQueues)
    in_flight: InFlight = field(default_factory=InFlight)
    busy: BusyNotice = field(default_factory=BusyNotice)
    clock: Callable[[], datetime] = _utc_now
    closing: bool = False

    def now(self) -> str:
        return self.clock().isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class Cast:
    """A chat as a turn sees it: the world, its characters, the open scenes, the player."""

    chat: Chat
    host: Character
    guest: Character | None
    you: You
    scene: Scene
    meanwhile: Scene | None

    def names(self) -> dict[str, str]:
        names = {"you": self.you.name, self.host.id: self.host.name}
        if self.guest is not None:
            names[self.guest.id] = self.guest.name
        return names

    def character(self, entity_id: str) -> Character | None:
        if entity_id == self.host.id:
            return self.host
        if self.guest is not None and entity_id == self.guest.id:
            return self.guest
        return None


async def load_cast(ctx: StoryContext, chat_id: str) -> Cast:
    """Everything a turn needs about a chat, or a StoryError that says what is missing."""
    setting = await ctx.views.setting(chat_id)
    if setting is None or setting.chat.status != "open":
        raise NoOpenStory(chat_id)
    if setting.host is None:
        raise HostDeleted(setting.chat.host_id)
    if setting.scene is None:
        raise NoOpenScene()
    return Cast(
        setting.chat, setting.host, setting.guest, setting.you, setting.scene, setting.meanwhile
    )
