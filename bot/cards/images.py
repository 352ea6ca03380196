"""Recognizing avatar images by their bytes, since file names and declared types can lie."""

from __future__ import annotations

from bot.cards.errors import CardError
from bot.cards.limits import MAX_AVATAR_BYTES

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def sniff_image_type(data: bytes) -> str | None:
    """The content type of a PNG, JPEG, GIF or WebP image, or None for anything else."""
    for magic, content_type in _MAGIC:
        if data.startswith(magic):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_avatar(data: bytes, label: str) -> str:
    """Return the avatar's content type, or refuse a non-image or one too big to store."""
    content_type = sniff_image_type(data)
    if content_type is None:
        raise CardError(f"{label} isn't a PNG, JPEG, GIF or WebP image.")
    if len(data) > MAX_AVATAR_BYTES:
        raise CardError(
            f"{label} is too big ({len(data):,} bytes; the limit is {MAX_AVATAR_BYTES:,})."
        )
    return content_type
