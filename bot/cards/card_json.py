"""Decoding card JSON (raw, or base64 from a PNG text chunk) into a plain dict, safely.

Everything that can go wrong with untrusted JSON ends as a ``CardError``: oversize, bad UTF-8,
syntax errors, NaN/Infinity, absurd nesting, lone surrogates, and a top level that isn't an object.
"""

from __future__ import annotations

import base64
import binascii
import json

from bot.cards.coerce import kind_of
from bot.cards.errors import CardError
from bot.cards.limits import MAX_CARD_JSON_BYTES


def decode_base64_card(text: str, where: str) -> dict[str, object]:
    """Decode the base64 value of a ``chara``/``ccv3`` chunk and parse the JSON inside it."""
    compact = "".join(text.split())
    if len(compact) > MAX_CARD_JSON_BYTES * 4 // 3 + 4:
        raise _too_big(where)
    compact += "=" * (-len(compact) % 4)
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise CardError(f"the card in {where} isn't valid base64.") from None
    return decode_card_json(raw, where)


def decode_card_json(raw: bytes, where: str) -> dict[str, object]:
    """Parse card JSON bytes into a dict, refusing anything that isn't a sane JSON object."""
    if len(raw) > MAX_CARD_JSON_BYTES:
        raise _too_big(where)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CardError(
            f"the card in {where} isn't valid UTF-8 text (bad byte at position {exc.start})."
        ) from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # lone surrogates fail here
    except json.JSONDecodeError as exc:
        raise CardError(
            f"the card in {where} isn't valid JSON ({exc.msg} at line {exc.lineno}, "
            f"column {exc.colno})."
        ) from None
    except UnicodeEncodeError:
        raise CardError(f"the card in {where} contains invalid characters.") from None
    except (RecursionError, ValueError):
        raise CardError(f"the card in {where} is nested too deeply or has a bad number.") from None
    if not isinstance(value, dict):
        raise CardError(f"the card in {where} should be a JSON object, not {kind_of(value)}.")
    return value


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def _too_big(where: str) -> CardError:
    return CardError(
        f"the card in {where} is too big (the limit is {MAX_CARD_JSON_BYTES // (1024 * 1024)} MiB)."
    )
