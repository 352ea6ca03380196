"""Stream checkpoints: the text of a reply still streaming, so a crash keeps what was shown.

Not events and not a projection: a durability buffer beside the log, one row per open turn,
overwritten every few seconds while a reply streams and deleted in the transaction that writes
the beat (``projections/turns.py``). Recovery reads it to close a cut-off beat with the text
the player saw; a rebuild leaves it alone.
"""

from __future__ import annotations

from bot.store.database import Database


async def save_checkpoint(db: Database, turn_started_id: int, chat_id: str, text: str) -> None:
    await db.write(
        lambda raw: raw.execute(
            "INSERT INTO stream_checkpoints (turn_started_id, chat_id, text) VALUES (?, ?, ?) "
            "ON CONFLICT (turn_started_id) DO UPDATE SET chat_id = excluded.chat_id, "
            "text = excluded.text",
            (turn_started_id, chat_id, text),
        )
    )


async def checkpoint_text(db: Database, turn_started_id: int) -> str:
    row = await db.fetchone(
        "SELECT text FROM stream_checkpoints WHERE turn_started_id = ?", (turn_started_id,)
    )
    return "" if row is None else str(row[0])
