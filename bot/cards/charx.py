"""Reading a CHARX archive (a zip with ``card.json`` and assets) without trusting the zip.

Defences: a cap on member count, on each member's declared size, and on the bytes actually
decompressed (a lying header can't inflate past the cap; zipfile then fails the CRC). Members
are only ever read into memory by name, never extracted, so paths in the zip can't escape.
"""

from __future__ import annotations

import io
import logging
import zipfile
from dataclasses import dataclass

from bot.cards.card_json import decode_card_json
from bot.cards.errors import CardError
from bot.cards.limits import MAX_AVATAR_BYTES, MAX_CARD_JSON_BYTES, MAX_ZIP_MEMBERS

log = logging.getLogger(__name__)

ZIP_SIGNATURE = b"PK\x03\x04"
CARD_MEMBER = "card.json"
ICON_FOLDER = "assets/icon/"
_EMBEDDED_PREFIXES = ("embeded://", "embedded://")  # the V3 spec spells it "embeded"
_READ_BLOCK = 64 * 1024


@dataclass(frozen=True, slots=True)
class CharxContents:
    """The card object, the icon's bytes if one was found, and what couldn't be used."""

    card: dict[str, object]
    icon: bytes | None
    warnings: tuple[str, ...]


def is_zip(data: bytes) -> bool:
    return data.startswith(ZIP_SIGNATURE)


def read_charx(data: bytes) -> CharxContents:
    """Read ``card.json`` and the icon asset (``data.assets`` type "icon", else assets/icon/*)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return _read_archive(archive)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
        log.debug("refused a CHARX: %s", exc)
        raise CardError(f"this CHARX file is damaged ({exc}).") from None
    except (NotImplementedError, RuntimeError) as exc:
        log.debug("refused a CHARX: %s", exc)
        raise CardError(
            "this CHARX file uses encryption or a compression method that isn't supported."
        ) from None


def _read_archive(archive: zipfile.ZipFile) -> CharxContents:
    if len(archive.infolist()) > MAX_ZIP_MEMBERS:
        raise CardError(f"this CHARX has too many files (the limit is {MAX_ZIP_MEMBERS}).")
    names = set(archive.namelist())
    if CARD_MEMBER not in names:
        raise CardError("this CHARX has no card.json in it.")
    raw = _read_capped(archive, CARD_MEMBER, MAX_CARD_JSON_BYTES)
    if raw is None:
        raise CardError(
            f"this CHARX's card.json is too big (the limit is {MAX_CARD_JSON_BYTES:,} bytes)."
        )
    card = decode_card_json(raw, "this CHARX's card.json")
    member, warnings = _icon_member(card, names)
    icon = None
    if member is not None:
        icon = _read_capped(archive, member, MAX_AVATAR_BYTES)
        if icon is None:
            warnings.append(
                f"the icon '{member}' is too big to use as an avatar "
                f"(the limit is {MAX_AVATAR_BYTES:,} bytes)."
            )
    return CharxContents(card, icon, tuple(warnings))


def _read_capped(archive: zipfile.ZipFile, name: str, cap: int) -> bytes | None:
    """A member's bytes, or None when its declared or actual size passes ``cap``."""
    info = archive.getinfo(name)
    if info.file_size > cap:
        return None
    parts: list[bytes] = []
    total = 0
    with archive.open(info) as member:
        while block := member.read(_READ_BLOCK):
            total += len(block)
            if total > cap:
                return None
            parts.append(block)
    return b"".join(parts)


def _icon_member(card: dict[str, object], names: set[str]) -> tuple[str | None, list[str]]:
    """Which member holds the icon: the card's "icon" asset (preferring "main"), else a guess."""
    warnings: list[str] = []
    for uri in _icon_uris(card):
        member = _embedded_member(uri)
        if member is None:
            if not uri.startswith("ccdefault:"):
                warnings.append(f"the icon at {uri[:80]!r} was not fetched (only embedded icons).")
            continue
        if member in names:
            return member, warnings
        warnings.append(f"the icon '{member[:80]}' is missing from the CHARX.")
    guesses = sorted(
        name for name in names if name.startswith(ICON_FOLDER) and not name.endswith("/")
    )
    return (guesses[0] if guesses else None), warnings


def _icon_uris(card: dict[str, object]) -> list[str]:
    data = card.get("data")
    assets = data.get("assets") if isinstance(data, dict) else None
    if not isinstance(assets, list):
        return []
    icons = [
        asset
        for asset in assets
        if isinstance(asset, dict)
        and asset.get("type") == "icon"
        and isinstance(asset.get("uri"), str)
    ]
    icons.sort(key=lambda asset: asset.get("name") != "main")
    return [str(asset["uri"]) for asset in icons]


def _embedded_member(uri: str) -> str | None:
    for prefix in _EMBEDDED_PREFIXES:
        if uri.startswith(prefix):
            return uri[len(prefix) :].lstrip("/")
    return None
