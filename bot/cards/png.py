"""A tiny PNG chunk reader/writer: enough to find, add and strip the tEXt chunks cards live in.

Pixels are never decoded; the structure is checked (signature, lengths, CRCs, IHDR first, IEND
last) so a truncated or tampered file is refused instead of half-read.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.cards.errors import CardError
from bot.cards.limits import MAX_PNG_CHUNKS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEXT_CHUNK_TYPES = frozenset({b"tEXt", b"zTXt", b"iTXt"})
_MAX_CHUNK_LENGTH = 2**31 - 1
_HEADER = struct.Struct(">I4s")
_CRC = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One PNG chunk: its four-letter type and its data (length and CRC are derived)."""

    type: bytes
    data: bytes


def is_png(data: bytes) -> bool:
    return data.startswith(PNG_SIGNATURE)


def read_chunks(data: bytes) -> list[Chunk]:
    """Split a PNG into chunks, refusing anything malformed; bytes after IEND are ignored."""
    if not is_png(data):
        raise CardError("this file isn't a PNG image (its signature is wrong).")
    chunks: list[Chunk] = []
    pos = len(PNG_SIGNATURE)
    while not chunks or chunks[-1].type != b"IEND":
        if len(chunks) >= MAX_PNG_CHUNKS:
            raise CardError("this PNG has too many chunks to be a character card.")
        chunk, pos = _read_chunk(data, pos)
        chunks.append(chunk)
    if chunks[0].type != b"IHDR":
        raise CardError("this PNG is damaged (it doesn't start with an IHDR chunk).")
    return chunks


def _read_chunk(data: bytes, pos: int) -> tuple[Chunk, int]:
    if pos + _HEADER.size > len(data):
        raise CardError("this PNG is truncated (it ends before its IEND chunk).")
    length, kind = _HEADER.unpack_from(data, pos)
    if length > _MAX_CHUNK_LENGTH or not kind.isalpha() or not kind.isascii():
        raise CardError("this PNG is damaged (a chunk header is invalid).")
    start = pos + _HEADER.size
    end = start + length
    if end + _CRC.size > len(data):
        raise CardError("this PNG is truncated (a chunk runs past the end of the file).")
    body = data[start:end]
    (crc,) = _CRC.unpack_from(data, end)
    if crc != zlib.crc32(kind + body):
        name = kind.decode("ascii")
        raise CardError(f"this PNG is damaged (the CRC of a {name} chunk doesn't match).")
    return Chunk(kind, body), end + _CRC.size


def write_png(chunks: Iterable[Chunk]) -> bytes:
    """Serialize chunks back to a PNG file, computing lengths and CRCs."""
    parts = [PNG_SIGNATURE]
    for chunk in chunks:
        parts.append(_HEADER.pack(len(chunk.data), chunk.type))
        parts.append(chunk.data)
        parts.append(_CRC.pack(zlib.crc32(chunk.type + chunk.data)))
    return b"".join(parts)


def text_chunks(chunks: Iterable[Chunk]) -> dict[str, str]:
    """tEXt chunks by lower-cased keyword (the first one wins, as SillyTavern reads them)."""
    found: dict[str, str] = {}
    for chunk in chunks:
        if chunk.type != b"tEXt":
            continue
        keyword, sep, text = chunk.data.partition(b"\0")
        if not sep:
            raise CardError("this PNG is damaged (a tEXt chunk has no keyword separator).")
        found.setdefault(keyword.decode("latin-1").lower(), text.decode("latin-1"))
    return found


def text_chunk(keyword: str, text: str) -> Chunk:
    """A tEXt chunk; both parts must be Latin-1 (card payloads are base64, hence ASCII)."""
    return Chunk(b"tEXt", keyword.encode("latin-1") + b"\0" + text.encode("latin-1"))


def without_text(chunks: Iterable[Chunk]) -> list[Chunk]:
    """The chunks minus every text chunk: the image as an avatar, without a card riding along."""
    return [chunk for chunk in chunks if chunk.type not in TEXT_CHUNK_TYPES]


def embed_text(png: bytes, texts: Mapping[str, str]) -> bytes:
    """Return ``png`` with tEXt chunks ``texts`` placed before IEND, replacing same-keyword ones."""
    replaced = {keyword.lower() for keyword in texts}
    kept = [
        chunk
        for chunk in read_chunks(png)
        if not (
            chunk.type == b"tEXt"
            and chunk.data.partition(b"\0")[0].decode("latin-1").lower() in replaced
        )
    ]
    added = [text_chunk(keyword, text) for keyword, text in texts.items()]
    return write_png([*kept[:-1], *added, kept[-1]])
