"""What a player sees in a channel, read from their gateway events: messages, edits, answers."""

from __future__ import annotations

from collections.abc import Callable

from tests.e2e.player import Payload, Player, Seen

MESSAGE_KINDS = ("MESSAGE_CREATE", "MESSAGE_UPDATE")
STREAM_MARKER = " ▌"


async def sees(
    player: Player,
    channel_id: str,
    match: Callable[[Payload], bool],
    *,
    since: int = 0,
    within: float = 30.0,
) -> Payload:
    """The first message created or edited in ``channel_id`` (since ``since``) that matches."""
    return await player.wait_for(
        MESSAGE_KINDS,
        lambda d: d.get("channel_id") == channel_id and match(d),
        since=since,
        within=within,
    )


def text_is(expected: str) -> Callable[[Payload], bool]:
    return lambda d: d.get("content") == expected


def text_has(part: str) -> Callable[[Payload], bool]:
    return lambda d: part in (d.get("content") or "")


def by_webhook(name: str) -> Callable[[Payload], bool]:
    """A character's message: sent by its webhook, under its name."""
    return lambda d: bool(d.get("webhook_id")) and d.get("author", {}).get("username") == name


def both(*tests: Callable[[Payload], bool]) -> Callable[[Payload], bool]:
    return lambda d: all(test(d) for test in tests)


def edits_of(player: Player, channel_id: str, *, since: int = 0) -> list[Seen]:
    """Content changes of messages in the channel (not reaction or embed updates)."""
    last: dict[str, str] = {}
    changes = []
    for seen in player.events[since:]:
        data = seen.data
        if data.get("channel_id") != channel_id or "content" not in data:
            continue
        if seen.kind == "MESSAGE_CREATE":
            last[data["id"]] = data["content"]
        elif (
            seen.kind == "MESSAGE_UPDATE"
            and last.get(data["id"], data["content"]) != data["content"]
        ):
            last[data["id"]] = data["content"]
            changes.append(seen)
    return changes


def most_in_window(times: list[float], window: float = 5.0) -> int:
    ordered = sorted(times)
    return max((sum(1 for t in ordered if s <= t <= s + window) for s in ordered), default=0)
