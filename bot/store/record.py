"""A stored event: what a projection handler receives and what readers get back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from bot.store.events import PAYLOAD_MODELS, Payload
from bot.store.sql import Row

E_co = TypeVar("E_co", bound=Payload, covariant=True)


@dataclass(frozen=True, slots=True)
class StoredEvent(Generic[E_co]):
    """An event as the log holds it: its id (its place in the story), its payload, its chat."""

    id: int
    kind: str
    payload: E_co
    chat_id: str | None
    created_at: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "chat_id": self.chat_id,
            "created_at": self.created_at,
            "payload": self.payload.model_dump(mode="json"),
        }


PARSERS: dict[str, Callable[[str | bytes], Any]] = {
    kind: model.__pydantic_validator__.validate_json for kind, model in PAYLOAD_MODELS.items()
}
"""kind -> what ``model_validate_json`` calls, called straight (a replay parses millions)."""


def parse_row(row: Row) -> StoredEvent[Payload]:
    model = PAYLOAD_MODELS[row["kind"]]
    return StoredEvent(
        id=row["id"],
        kind=row["kind"],
        payload=model.model_validate_json(row["payload_json"]),
        chat_id=row["chat_id"],
        created_at=row["created_at"],
    )
