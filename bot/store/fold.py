"""A full rebuild's fast path on SQLite, for the kinds most of a log is made of.

Beats, memories and edge updates are nine events in ten of a long story. In a full rebuild
on SQLite (nothing but the rebuild writes, the projections start empty, ``bulk.Bulk`` queues
the writes) each has a *folder* beside its handler: it takes the payload as the plain dict
the log's JSON gives (``from_json``, with the model's defaults under it: the same upcasting
``model_validate_json`` does for these kinds, whose fields only ever gained defaults; the
payload was validated when it was written), and rows no other handler reads are kept here
and written once at the end: an edge's numbers, how many beats each witness saw. Every
other kind, and a fold on any other connection (or folding an entangled log again), goes
through the handlers; the replay tests hold the folders to the handlers' rows. PostgreSQL's
rebuild folds in a scratch SQLite file (``pg/rebuild.py``), so it comes here too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from bot.store import memo
from bot.store.provenance import Source, beat_witnesses
from bot.store.sql import Connection

Folder = Callable[["Fold", int, dict[str, Any]], None]
"""(the fold, the event's id, its payload as a dict with defaults filled in)."""


@dataclass(frozen=True, slots=True)
class FastKind:
    """How a rebuild folds one kind: its defaults, its folder, where its source is named."""

    defaults: dict[str, Any]
    folder: Folder
    beat_field: str | None
    scene_field: str | None
    fields: int
    """How many fields a payload written with all of them has (most: nothing to fill in)."""

    def source(self, payload: dict[str, Any]) -> Source | None:
        """What ``provenance.source_of`` says of the payload, read from the dict."""
        beat = payload[self.beat_field] if self.beat_field else None
        scene = payload[self.scene_field] if self.scene_field else None
        if beat is None and scene is None:
            return None
        return Source(beat_id=beat, scene_id=scene)


FAST_KINDS: dict[str, FastKind] = {}


def folds(
    model: type[BaseModel], *, beat: str | None = None, scene: str | None = None
) -> Callable[[Folder], Folder]:
    """Register the rebuild's folder of ``model``'s kind (``beat``, ``scene``: the fields
    naming its source, as ``provenance.source_of`` reads them)."""

    def register(folder: Folder) -> Folder:
        FAST_KINDS[model.kind] = FastKind(  # type: ignore[attr-defined]
            defaults=defaults_of(model),
            folder=folder,
            beat_field=beat,
            scene_field=scene,
            fields=len(model.model_fields),
        )
        return folder

    return register


def defaults_of(model: type[BaseModel]) -> dict[str, Any]:
    """What the model fills in for a field the payload lacks (written before the field)."""
    return {
        name: info.get_default(call_default_factory=True)
        for name, info in model.model_fields.items()
        if not info.is_required()
    }


KNOWN_FACTS = 100_000
"""Facts a fold remembers having written, to skip making their rows again (bounded memory)."""

EdgeRow = tuple[int, int, str, int]
"""An edge's affinity, trust, relationship summary and the scene that summary is from."""


@dataclass(slots=True)
class Fold:
    """What the folders write through, and the rows kept until the end of the rebuild.

    Made inside the rebuild's ``memo``, whose tables of a beat's witnesses and a chat's cast
    it holds (the handlers of other kinds read them there too).
    """

    writer: Connection
    beats: dict[int, frozenset[str]] = field(init=False)
    """The batch memo's beat -> witnesses (``provenance.witnessed``)."""
    casts: dict[str, tuple[str | None, str | None]] = field(init=False)
    """The batch memo's chat -> (host, guest) (``chats.cast_of``)."""
    edges: dict[tuple[str, str, str], EdgeRow] = field(default_factory=dict)
    """(chat, source, target) -> its row: only edge updates read or write ``edges``."""
    witness_counts: dict[tuple[str, str], int] = field(default_factory=dict)
    """(chat, entity) -> beats witnessed: only beats write ``witness_counts``."""
    facts: dict[Any, None] = field(default_factory=dict)
    """Facts written (``edge_facts``' keys), the latest ``KNOWN_FACTS`` of them at most."""

    def __post_init__(self) -> None:
        beats, casts = (
            memo.table(self.writer, "turn_witnesses"),
            memo.table(self.writer, "chat_cast"),
        )
        if beats is None or casts is None:
            raise RuntimeError("a fold is made inside its rebuild's memo")
        self.beats, self.casts = beats, casts

    def witnesses(self, beat_id: int) -> frozenset[str]:
        """``provenance.beat_witnesses``, most often straight from the memo."""
        found = self.beats.get(beat_id)
        return found if found is not None else beat_witnesses(self.writer, beat_id)

    def known_facts(self) -> dict[Any, None]:
        """``facts``, emptied when full (a fact forgotten is still refused by its table)."""
        if len(self.facts) >= KNOWN_FACTS:
            self.facts.clear()
        return self.facts

    def finish(self) -> None:
        """Write the rows kept here (in the order they were first made, as the handlers do)."""
        self.writer.executemany(
            "INSERT INTO edges (chat_id, source_id, target_id, affinity, trust, "
            "relationship_summary, summary_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(*key, *row) for key, row in self.edges.items()],
        )
        self.writer.executemany(
            "INSERT INTO witness_counts (chat_id, entity_id, beats) VALUES (?, ?, ?)",
            [(*key, beats) for key, beats in self.witness_counts.items()],
        )
        self.edges.clear()
        self.witness_counts.clear()
