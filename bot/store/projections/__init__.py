"""Projection handlers, a module per domain; importing this package registers them all."""

from bot.store.projections import (
    characters,
    chats,
    lore,
    relationships,
    scenes,
    story,
    turns,
)

__all__ = ["characters", "chats", "lore", "relationships", "scenes", "story", "turns"]
