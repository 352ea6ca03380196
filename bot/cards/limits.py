"""Size caps that keep a hostile file from costing memory or time (and match the event models)."""

from __future__ import annotations

from bot.store.events import MAX_IMAGE_BYTES, MAX_TEXT

MAX_INPUT_BYTES = 8 * 1024 * 1024
"""The whole uploaded file (PNG, CHARX, JSON or TOML)."""

MAX_CARD_JSON_BYTES = 2 * 1024 * 1024
"""The card's JSON once decoded (from base64 in a PNG, or ``card.json`` in a CHARX)."""

MAX_AVATAR_BYTES = MAX_IMAGE_BYTES
"""An avatar image, as the log keeps it (``asset_stored``)."""

MAX_FIELD_CHARS = MAX_TEXT
"""Any one text field, or one item of a list of texts (``BotAuthored`` caps strings at this)."""

MAX_ZIP_MEMBERS = 1000
MAX_PNG_CHUNKS = 100_000
