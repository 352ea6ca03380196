"""Scenes and meanwhile scenes: who is present, where, and whether the scene is still open."""

from __future__ import annotations

import json

from bot.store.events import (
    YOU,
    MeanwhileSceneClosed,
    MeanwhileSceneStarted,
    PresentSetKind,
    SceneClosed,
    SceneOpened,
)
from bot.store.projector import handles
from bot.store.provenance import participated
from bot.store.record import StoredEvent
from bot.store.sql import Connection


def present_set_of(participants: list[str]) -> PresentSetKind:
    """The present set a list of participants makes: it decides witnesses and pairs."""
    if YOU not in participants:
        return "host_guest"
    return "you_host_guest" if len(set(participants) - {YOU}) >= 2 else "you_host"


@handles(SceneOpened)
def scene_opened(raw: Connection, event: StoredEvent[SceneOpened]) -> None:
    p = event.payload
    raw.execute(
        "INSERT INTO scenes (id, chat_id, container_id, parent_scene_id, kind, present_set_kind, "
        "participants_json, thread_id, premise, started_at, closed_at, status) "
        "VALUES (?, ?, ?, NULL, 'you', ?, ?, 0, '', ?, NULL, 'open')",
        (
            event.id,
            p.chat_id,
            p.container_id,
            present_set_of(p.participants),
            json.dumps(p.participants),
            p.started_at,
        ),
    )
    participated(raw, event.id, p.participants)


@handles(MeanwhileSceneStarted)
def meanwhile_started(raw: Connection, event: StoredEvent[MeanwhileSceneStarted]) -> None:
    p = event.payload
    parent = raw.execute(
        "SELECT container_id FROM scenes WHERE id = ?", (p.parent_scene_id,)
    ).fetchone()
    raw.execute(
        "INSERT INTO scenes (id, chat_id, container_id, parent_scene_id, kind, present_set_kind, "
        "participants_json, thread_id, premise, started_at, closed_at, status) "
        "VALUES (?, ?, ?, ?, 'meanwhile', 'host_guest', ?, ?, ?, ?, NULL, 'open')",
        (
            event.id,
            p.chat_id,
            None if parent is None else parent[0],
            p.parent_scene_id,
            json.dumps([p.host_bot_id, p.guest_bot_id]),
            p.thread_id,
            p.premise,
            p.started_at,
        ),
    )
    participated(raw, event.id, [p.host_bot_id, p.guest_bot_id])


def scene_closed(raw: Connection, event: StoredEvent[SceneClosed | MeanwhileSceneClosed]) -> None:
    p = event.payload
    raw.execute(
        "UPDATE scenes SET status = 'closed', closed_at = ? WHERE id = ?",
        (p.closed_at, p.scene_id),
    )


handles(SceneClosed)(scene_closed)
handles(MeanwhileSceneClosed)(scene_closed)
