"""Reads of the projections whose SQL differs between SQLite and PostgreSQL."""

from __future__ import annotations

from bot.store.sql import Connection, Row, is_postgres


def beat_showing(raw: Connection, chat_id: str, message_id: int) -> Row:
    """The turn row whose adapter messages (a JSON list of ids) include ``message_id``."""
    if is_postgres(raw):
        sql = (
            "SELECT t.* FROM turns t WHERE t.chat_id = ? AND EXISTS (SELECT 1 FROM "
            "json_array_elements_text(t.message_ids_json::json) m WHERE m = ?) LIMIT 1"
        )
        return raw.execute(sql, (chat_id, str(message_id))).fetchone()
    return raw.execute(
        "SELECT t.* FROM turns t, json_each(t.message_ids_json) m "
        "WHERE t.chat_id = ? AND m.value = ? LIMIT 1",
        (chat_id, message_id),
    ).fetchone()
