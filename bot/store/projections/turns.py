"""The transcript: the player's beats, the characters' beats, and turns still streaming."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bot.store.events import (
    YOU,
    AssistantTurn,
    PresentSetKind,
    TurnClassified,
    TurnMessagesLinked,
    TurnStarted,
    UserTurn,
)
from bot.store.fold import Fold, folds
from bot.store.projections.chats import cast_of
from bot.store.projector import handles
from bot.store.provenance import witnessed
from bot.store.record import StoredEvent
from bot.store.sql import Connection

_INSERT = (
    "INSERT INTO turns (id, chat_id, scene_id, meanwhile_scene_id, role, speaker_id, text, "
    "segments_json, present_set_kind, cancelled, interrupted, turn_started_id, author_id, "
    "message_ids_json, answers_turn_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


_DUMPS = json.JSONEncoder(ensure_ascii=False).encode
"""``json.dumps(…, ensure_ascii=False)`` without making an encoder each call."""


def _json_list(items: Sequence[object]) -> str:
    """JSON of a list; most are empty, and a rebuild writes hundreds of thousands of them."""
    return _DUMPS(items) if items else "[]"


def _record_witnesses(
    raw: Connection,
    turn_id: int,
    chat_id: str,
    witnesses: list[str],
    present_set_kind: PresentSetKind,
) -> None:
    """Who saw a beat: as written on it, else as its present set implies for this chat."""
    seen = _witnesses_written(raw, turn_id, chat_id, witnesses, present_set_kind)
    if seen:
        # how many beats each saw: a prompt's window is placed by it (a COUNT(*) grew)
        raw.executemany(
            "INSERT INTO witness_counts (chat_id, entity_id, beats) VALUES (?, ?, 1) "
            "ON CONFLICT (chat_id, entity_id) DO UPDATE SET beats = witness_counts.beats + 1",
            [(chat_id, entity) for entity in seen],
        )


def _witnesses_written(
    raw: Connection,
    turn_id: int,
    chat_id: str,
    witnesses: list[str],
    present_set_kind: str,
) -> list[str]:
    """Write a beat's witnesses (``_record_witnesses`` but their counts); returns them."""
    if not witnesses:
        witnesses = _implied(present_set_kind, *cast_of(raw, chat_id))
    witnesses = list(dict.fromkeys(witnesses))
    _write_witnesses(raw, turn_id, chat_id, witnesses)
    witnessed(raw, turn_id, witnesses)
    return witnesses


def _implied(present_set_kind: str, host: str | None, guest: str | None) -> list[str]:
    """Who a beat's present set says saw it, in a chat of this host and guest."""
    implied = {
        "you_host": [YOU, host],
        "you_host_guest": [YOU, host, guest],
        "host_guest": [host, guest],
    }[present_set_kind]
    return [entity for entity in implied if entity]


def _write_witnesses(raw: Connection, turn_id: int, chat_id: str, witnesses: list[str]) -> None:
    if witnesses:  # a rebuild sends these in long runs (``bulk``), hence one row a statement
        raw.executemany(
            "INSERT INTO turn_witnesses (turn_id, chat_id, entity_id) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            [(turn_id, chat_id, entity) for entity in witnesses],
        )


def _fold_witnesses(fold: Fold, turn_id: int, p: dict[str, Any]) -> None:
    """``_record_witnesses`` in a rebuild's fold: the counts are kept until its end."""
    chat_id = p["chat_id"]
    witnesses = p["witnesses"]
    if not witnesses:
        cast = fold.casts.get(chat_id) or cast_of(fold.writer, chat_id)
        witnesses = _implied(p["present_set_kind"], *cast)
    witnesses = list(dict.fromkeys(witnesses))
    _write_witnesses(fold.writer, turn_id, chat_id, witnesses)
    seen = frozenset(witnesses)
    known = fold.beats.get(turn_id)
    fold.beats[turn_id] = seen if known is None else known | seen  # ``witnessed``
    counts = fold.witness_counts
    for entity in witnesses:
        key = (chat_id, entity)
        counts[key] = counts.get(key, 0) + 1


@handles(TurnStarted)
def turn_started(raw: Connection, event: StoredEvent[TurnStarted]) -> None:
    p = event.payload
    raw.execute(
        "INSERT INTO open_turns (turn_started_id, chat_id, payload_json) VALUES (?, ?, ?)",
        (event.id, p.chat_id, p.model_dump_json()),
    )


@handles(UserTurn)
def user_turn(raw: Connection, event: StoredEvent[UserTurn]) -> None:
    p = event.payload
    segments = _json_list([s.model_dump() for s in p.segments])
    raw.execute(_INSERT, _user_row(event.id, vars(p), segments))
    _record_witnesses(raw, event.id, p.chat_id, p.witnesses, p.present_set_kind)
    _close_open_turn(raw, p.turn_started_id)


@folds(UserTurn)
def fold_user_turn(fold: Fold, event_id: int, p: dict[str, Any]) -> None:
    """``user_turn`` in a rebuild (segments as the log holds them: ``model_dump``'s order)."""
    fold.writer.execute(_INSERT, _user_row(event_id, p, _json_list(p["segments"])))
    _fold_witnesses(fold, event_id, p)
    _close_open_turn(fold.writer, p["turn_started_id"])


def _user_row(event_id: int, p: dict[str, Any], segments: str) -> tuple[object, ...]:
    message_id = p["message_id"]
    return (
        *(event_id, p["chat_id"], p["scene_id"], p["meanwhile_scene_id"], "user", "you"),
        *(p["prose"], segments, p["present_set_kind"], 0, 0, p["turn_started_id"]),
        *(p["author_id"], f"[{message_id}]" if message_id else "[]", None),
    )


def _close_open_turn(raw: Connection, turn_started_id: int | None) -> None:
    """The turn is written: it is no longer open, and its stream checkpoint is spent."""
    if turn_started_id is not None:
        raw.execute("DELETE FROM open_turns WHERE turn_started_id = ?", (turn_started_id,))
        raw.execute("DELETE FROM stream_checkpoints WHERE turn_started_id = ?", (turn_started_id,))


@handles(AssistantTurn)
def assistant_turn(raw: Connection, event: StoredEvent[AssistantTurn]) -> None:
    _assistant_turn(raw, event.id, vars(event.payload))
    _record_witnesses(
        raw,
        event.id,
        event.payload.chat_id,
        event.payload.witnesses,
        event.payload.present_set_kind,
    )


@folds(AssistantTurn)
def fold_assistant_turn(fold: Fold, event_id: int, p: dict[str, Any]) -> None:
    _assistant_turn(fold.writer, event_id, p)
    _fold_witnesses(fold, event_id, p)


def _assistant_turn(raw: Connection, event_id: int, p: dict[str, Any]) -> None:
    """The reply's row (``p``: the payload's fields), and its turn closed."""
    answers = p["answers_turn_id"]
    started = p["turn_started_id"]
    if answers is None and started is not None:
        # written before replies named the line they answer: the line of the same turn
        row = raw.execute(
            "SELECT id FROM turns WHERE turn_started_id = ? AND role = 'user'", (started,)
        ).fetchone()
        answers = None if row is None else row[0]
    raw.execute(
        _INSERT,
        (
            *(event_id, p["chat_id"], p["scene_id"], p["meanwhile_scene_id"], "assistant"),
            *(p["speaker_id"], p["text"], "[]", p["present_set_kind"], int(p["cancelled"])),
            *(int(p["interrupted"]), started, 0, _json_list(p["message_ids"]), answers),
        ),
    )
    _close_open_turn(raw, started)


@handles(TurnClassified)
def turn_classified(raw: Connection, event: StoredEvent[TurnClassified]) -> None:
    p = event.payload
    raw.execute(
        "UPDATE turns SET segments_json = ? WHERE id = ? AND chat_id = ? AND role = 'user'",
        (_json_list([s.model_dump() for s in p.segments]), p.turn_id, p.chat_id),
    )


@handles(TurnMessagesLinked)
def messages_linked(raw: Connection, event: StoredEvent[TurnMessagesLinked]) -> None:
    p = event.payload
    raw.execute(
        "UPDATE turns SET message_ids_json = ? WHERE id = ? AND chat_id = ?",
        (json.dumps(p.message_ids), p.turn_id, p.chat_id),
    )
