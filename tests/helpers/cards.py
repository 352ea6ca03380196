"""Test card files built in code (a PNG writer independent of ``bot.cards.png``), so each
broken case is a small, visible mutation of a good file."""

from __future__ import annotations

import struct
import zlib


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def make_png(*texts: tuple[str, str], pixel: bytes = b"\xff\x00\x00") -> bytes:
    """A valid 1x1 RGB PNG, with tEXt chunks (keyword, text) before IEND."""
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" + pixel)
    text_chunks_ = [chunk(b"tEXt", k.encode("latin-1") + b"\0" + v.encode()) for k, v in texts]
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            chunk(b"IHDR", ihdr),
            chunk(b"IDAT", idat),
            *text_chunks_,
            chunk(b"IEND", b""),
        ]
    )
