"""Which messages show a reply that is streaming right now, for the ⛔ handler."""

from __future__ import annotations

from collections.abc import Iterable


class StreamingMessages:
    """Message id -> chat id, for messages of replies still in flight."""

    def __init__(self) -> None:
        self._chats: dict[int, str] = {}

    def add(self, message_id: int, chat_id: str) -> None:
        self._chats[message_id] = chat_id

    def discard(self, message_ids: Iterable[int]) -> None:
        for message_id in message_ids:
            self._chats.pop(message_id, None)

    def chat_of(self, message_id: int) -> str | None:
        return self._chats.get(message_id)
