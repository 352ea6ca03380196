"""A batch of events written in one transaction, whose later events may point at earlier ones.

Rows take the id of the event that created them, and an id is known only once its event is
written; so an event that points at another of its own batch (a reply answering the line
written just before it, a memory of that reply) holds a ``Ref`` where the id goes, and is built
in the transaction, when the id exists.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from bot.store.events import Payload

E = TypeVar("E", bound=Payload)


@dataclass(frozen=True, slots=True)
class Ref:
    """An event of the batch being built, by its place in it."""

    index: int


@dataclass(frozen=True, slots=True)
class Later(Generic[E]):
    """An event built once the ids its ``Ref`` fields stand for are known."""

    model: type[E]
    fields: Mapping[str, Any]

    def build(self, ids: list[int]) -> dict[str, Any]:
        """The fields with every ``Ref`` replaced by the id its event was given."""
        return {
            key: ids[value.index] if isinstance(value, Ref) else value
            for key, value in self.fields.items()
        }


@dataclass(slots=True)
class Batch:
    """Events to append together; ``add`` and ``later`` hand out a ``Ref`` to each."""

    events: list[Payload | Later[Any]] = field(default_factory=list)

    def add(self, event: Payload) -> Ref:
        self.events.append(event)
        return Ref(len(self.events) - 1)

    def later(self, model: type[E], **fields: Any) -> Ref:
        """An event some of whose fields are ``Ref``s to events added before it."""
        if any(isinstance(v, Ref) and v.index >= len(self.events) for v in fields.values()):
            raise ValueError(f"a {model.kind} can only point at events added before it")
        self.events.append(Later(model, fields))
        return Ref(len(self.events) - 1)

    def extend(self, events: Sequence[Payload]) -> None:
        """Add finished events (no refs among them) after these."""
        self.events.extend(events)

    def __len__(self) -> int:
        return len(self.events)

    def __iter__(self) -> Iterator[Payload | Later[Any]]:
        return iter(self.events)
