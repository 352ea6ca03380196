"""A chat's world book: its settings and numbered entries (a card's own book lives on the card)."""

from __future__ import annotations

import json

from bot.store.events import LoreEntry, LoreEntryAdded, LoreEntryRemoved, WorldBookImported
from bot.store.projector import handles
from bot.store.record import StoredEvent
from bot.store.sql import Connection


def _insert(raw: Connection, chat_id: str, number: int, entry: LoreEntry, event_id: int) -> None:
    raw.execute(
        "INSERT INTO lore_entries (chat_id, number, entry_json, event_id) VALUES (?, ?, ?, ?)",
        (chat_id, number, entry.model_dump_json(), event_id),
    )


@handles(WorldBookImported)
def world_book_imported(raw: Connection, event: StoredEvent[WorldBookImported]) -> None:
    p = event.payload
    settings = {
        "scan_depth": p.scan_depth,
        "token_budget": p.token_budget,
        "recursive_scanning": p.recursive_scanning,
    }
    raw.execute(
        # an upsert, not INSERT OR REPLACE: a replace deletes without firing the undo
        # journal's delete trigger, so a rewind could not give the old book back
        "INSERT INTO world_books (chat_id, name, settings_json) VALUES (?, ?, ?) "
        "ON CONFLICT (chat_id) DO UPDATE SET name = excluded.name, "
        "settings_json = excluded.settings_json",
        (p.chat_id, p.name, json.dumps(settings, sort_keys=True)),
    )
    raw.execute("DELETE FROM lore_entries WHERE chat_id = ?", (p.chat_id,))
    for number, entry in enumerate(p.entries, start=1):
        _insert(raw, p.chat_id, number, entry, event.id)


@handles(LoreEntryAdded)
def lore_entry_added(raw: Connection, event: StoredEvent[LoreEntryAdded]) -> None:
    p = event.payload
    row = raw.execute(
        "SELECT COALESCE(MAX(number), 0) FROM lore_entries WHERE chat_id = ?", (p.chat_id,)
    ).fetchone()
    _insert(raw, p.chat_id, int(row[0]) + 1, p.entry, event.id)


@handles(LoreEntryRemoved)
def lore_entry_removed(raw: Connection, event: StoredEvent[LoreEntryRemoved]) -> None:
    p = event.payload
    raw.execute("DELETE FROM lore_entries WHERE chat_id = ? AND number = ?", (p.chat_id, p.number))
