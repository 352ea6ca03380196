"""The import entry points: detect a file's format by its content and read it into a character.

PNG signature → PNG card; ``PK\\x03\\x04`` → CHARX; ``{`` (or a .json name) → card JSON; anything
else → our TOML. Every failure is a ``CardError`` raised before anything is returned.
"""

from __future__ import annotations

import logging
import stat
from pathlib import Path, PurePosixPath, PureWindowsPath

from bot.cards.card_json import decode_base64_card, decode_card_json
from bot.cards.card_read import CARD_LABELS, CardFields, read_card
from bot.cards.charx import is_zip, read_charx
from bot.cards.errors import CardError
from bot.cards.images import check_avatar, sniff_image_type
from bot.cards.limits import MAX_AVATAR_BYTES, MAX_INPUT_BYTES
from bot.cards.png import is_png, read_chunks, text_chunks, without_text, write_png
from bot.cards.result import ImportedCharacter, SourceFormat, validated_fields
from bot.cards.toml_read import read_toml

log = logging.getLogger(__name__)

_SOURCES: dict[tuple[str, str], SourceFormat] = {
    ("v1", "json"): "v1-json",
    ("v2", "json"): "v2-json",
    ("v3", "json"): "v3-json",
    ("v1", "png"): "v1-png",
    ("v2", "png"): "v2-png",
    ("v3", "png"): "v3-png",
    ("v1", "charx"): "charx",
    ("v2", "charx"): "charx",
    ("v3", "charx"): "charx",
}

CARD_KEYWORDS = ("ccv3", "chara")
"""PNG tEXt keywords holding a card, in order of preference."""


def load_character(data: bytes, filename: str) -> ImportedCharacter:
    """Read a character from an uploaded file's bytes (no file system access).

    A TOML ``avatar`` path can't be followed from bytes alone: it is skipped with a warning.
    """
    return _load(data, filename, base_dir=None)


def load_character_file(path: Path) -> ImportedCharacter:
    """Read a character from a local file; a TOML ``avatar`` is read relative to the file."""
    data = _read_regular_file(path, MAX_INPUT_BYTES, str(path))
    return _load(data, path.name, base_dir=path.parent)


def _load(data: bytes, filename: str, *, base_dir: Path | None) -> ImportedCharacter:
    if len(data) > MAX_INPUT_BYTES:
        raise _too_big(filename)
    suffix = PurePosixPath(filename.lower()).suffix
    if is_png(data):
        result = _from_png(data)
    elif is_zip(data):
        result = _from_charx(data)
    elif data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{") or suffix == ".json":
        result = _from_card(read_card(decode_card_json(data, filename)), "json")
    elif suffix in (".png", ".charx"):
        raise CardError(
            f"{filename} isn't a {suffix[1:].upper()} file (its content doesn't match)."
        )
    else:
        result = _from_toml(data, filename, base_dir)
    log.info(
        "imported character %r from %s (%s)", result.fields["id"], filename, result.source_format
    )
    return result


def _from_png(data: bytes) -> ImportedCharacter:
    chunks = read_chunks(data)
    texts = text_chunks(chunks)
    keyword = next((key for key in CARD_KEYWORDS if key in texts), None)
    if keyword is None:
        raise CardError("this PNG has no character card in it (no 'chara' or 'ccv3' text chunk).")
    card = decode_base64_card(texts[keyword], f"this PNG's '{keyword}' chunk")
    image = write_png(without_text(chunks))
    avatar: bytes | None = image
    warnings: tuple[str, ...] = ()
    if len(image) > MAX_AVATAR_BYTES:
        avatar = None
        warnings = (
            f"the image is too big to use as the avatar (the limit is {MAX_AVATAR_BYTES:,} bytes).",
        )
    return _from_card(
        read_card(card), "png", avatar=avatar, content_type="image/png", warnings=warnings
    )


def _from_charx(data: bytes) -> ImportedCharacter:
    contents = read_charx(data)
    content_type = None
    if contents.icon is not None:
        content_type = sniff_image_type(contents.icon)
        if content_type is None:
            raise CardError("this CHARX's icon isn't a PNG, JPEG, GIF or WebP image.")
    mapped = read_card(contents.card)
    return _from_card(
        mapped,
        "charx",
        avatar=contents.icon,
        content_type=content_type,
        warnings=contents.warnings,
    )


def _from_card(
    mapped: CardFields,
    container: str,
    *,
    avatar: bytes | None = None,
    content_type: str | None = None,
    warnings: tuple[str, ...] = (),
) -> ImportedCharacter:
    return ImportedCharacter(
        fields=validated_fields(mapped.fields, CARD_LABELS),
        avatar_bytes=avatar,
        avatar_content_type=content_type if avatar is not None else None,
        source_format=_SOURCES[(mapped.version, container)],
        warnings=(*mapped.warnings, *warnings),
    )


def _from_toml(data: bytes, filename: str, base_dir: Path | None) -> ImportedCharacter:
    parsed = read_toml(data, filename)
    fields = validated_fields(parsed.fields)
    avatar: bytes | None = None
    content_type: str | None = None
    warnings: tuple[str, ...] = ()
    if parsed.avatar_path is not None:
        if base_dir is None:
            warnings = (f"the avatar '{parsed.avatar_path}' was not loaded; upload it separately.",)
        else:
            avatar = _read_avatar_file(base_dir, parsed.avatar_path)
            content_type = check_avatar(avatar, f"the avatar '{parsed.avatar_path}'")
    return ImportedCharacter(fields, avatar, content_type, "toml", warnings)


def _read_avatar_file(base_dir: Path, relative: str) -> bytes:
    """Read an avatar named in a TOML file, only from inside the TOML file's folder."""
    posix, windows = PurePosixPath(relative), PureWindowsPath(relative)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or windows.root:
        raise CardError(f"the avatar path '{relative}' must be relative to the TOML file.")
    if ".." in windows.parts:
        raise CardError(f"the avatar path '{relative}' may not use '..'.")
    root = base_dir.resolve()
    target = (root / relative).resolve()
    if not target.is_relative_to(root):
        raise CardError(f"the avatar path '{relative}' leads outside the TOML file's folder.")
    return _read_regular_file(target, MAX_AVATAR_BYTES, f"the avatar '{relative}'")


def _read_regular_file(path: Path, cap: int, label: str) -> bytes:
    """A file's bytes, refusing non-files (a FIFO would block) and files over ``cap``."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise CardError(f"{label} isn't a regular file.")
        if info.st_size > cap:
            raise CardError(f"{label} is too big (the limit is {cap:,} bytes).")
        return path.read_bytes()
    except OSError as exc:
        raise CardError(f"can't read {label}: {exc.strerror or exc}.") from None


def _too_big(filename: str) -> CardError:
    return CardError(
        f"{filename} is too big (the limit is {MAX_INPUT_BYTES // (1024 * 1024)} MiB)."
    )
