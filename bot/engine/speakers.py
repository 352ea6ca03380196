"""Who answers a beat: the character addressed by name, else the host; meanwhile alternates."""

from __future__ import annotations

import re

from bot.store.views import Character


def addressed(prose: str, candidates: list[Character]) -> Character | None:
    """The candidate named (name, first name or nickname) earliest in ``prose``, if any."""
    best: tuple[int, Character] | None = None
    for character in candidates:
        for alias in _aliases(character):
            match = re.search(rf"(?<!\w){re.escape(alias)}(?!\w)", prose, re.IGNORECASE)
            if match and (best is None or match.start() < best[0]):
                best = (match.start(), character)
    return None if best is None else best[1]


def _aliases(character: Character) -> list[str]:
    names = [character.name, character.card.nickname, character.id]
    first = character.name.split()[0] if character.name.split() else ""
    names.append(first)
    return [n for n in dict.fromkeys(names) if len(n) >= 2]


def choose_speaker(prose: str, host: Character, guest: Character | None) -> Character:
    """In a you-scene: addressed by name wins; otherwise the host speaks."""
    present = [host] if guest is None else [host, guest]
    return addressed(prose, present) or host


def next_meanwhile_speaker(
    host: Character, guest: Character, last_speaker_id: str | None
) -> Character:
    """The host opens a meanwhile scene; then whoever did not speak last."""
    if last_speaker_id is None:
        return host
    return guest if last_speaker_id == host.id else host
