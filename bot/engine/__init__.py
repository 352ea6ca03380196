"""The story engine: turns, points of view, memories, relationships, scenes, meanwhile, cancel.

Pure asyncio on the store and an LLMClient; no Discord here (an import-linter contract in
pyproject.toml keeps it and the adapters out).
"""

from bot.engine.engine import SHUTDOWN_GRACE_SECONDS, Engine
from bot.engine.errors import NotFoundError, OutOfCharacter, StoryError
from bot.engine.history import FeelingChange, Rewound
from bot.engine.scenes import SceneClose
from bot.engine.services.chats import ChatEnd, ChatStart
from bot.engine.services.turns import SceneChoice
from bot.engine.sink import BeatEnd, BeatSink, NullSink, Speaker
from bot.engine.turns import TurnResult

__all__ = [
    "SHUTDOWN_GRACE_SECONDS",
    "BeatEnd",
    "BeatSink",
    "ChatEnd",
    "ChatStart",
    "Engine",
    "FeelingChange",
    "NotFoundError",
    "NullSink",
    "OutOfCharacter",
    "Rewound",
    "SceneChoice",
    "SceneClose",
    "Speaker",
    "StoryError",
    "TurnResult",
]
