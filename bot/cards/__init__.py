"""Character import and export: our TOML format and Tavern cards (V1/V2/V3 JSON, PNG, CHARX).

Import with ``load_character`` (uploaded bytes) or ``load_character_file`` (a local path); both
return a validated ``ImportedCharacter`` or raise ``CardError`` with a message for the user.
Export with ``export_card`` or ``export_toml``. Card text keeps ``{{char}}``/``{{user}}``;
``resolve_placeholders`` fills them in when a prompt is built.
"""

from bot.cards.card_write import build_card, export_card
from bot.cards.errors import CardError
from bot.cards.loader import load_character, load_character_file
from bot.cards.placeholders import resolve_placeholders
from bot.cards.result import ImportedCharacter, SourceFormat
from bot.cards.slug import slugify
from bot.cards.toml_write import export_toml

__all__ = [
    "CardError",
    "ImportedCharacter",
    "SourceFormat",
    "build_card",
    "export_card",
    "export_toml",
    "load_character",
    "load_character_file",
    "resolve_placeholders",
    "slugify",
]
