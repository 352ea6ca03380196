"""Writing a character in our TOML format, readable by ``read_toml`` and pleasant to edit.

Long texts become multi-line strings; every quote, backslash and control character is escaped
so any text survives the round trip.
"""

from __future__ import annotations

from bot.cards.toml_read import LIST_KEYS, TEXT_KEYS
from bot.store.events import BotAuthored

_ALWAYS = frozenset({"id", "name", "persona"})


def export_toml(character: BotAuthored, *, avatar_path: str | None = None) -> str:
    """The character as TOML; empty optional fields are left out (they read back as empty).

    ``avatar_path`` is written as the ``avatar`` key, relative to where the TOML will be saved.
    Extensions are not part of the TOML format and are not written.
    """
    values = character.model_dump()
    lines: list[str] = []
    for key in TEXT_KEYS:
        text = values[key]
        if text or key in _ALWAYS:
            lines.append(f"{key} = {toml_string(text)}")
    if avatar_path:
        lines.append(f"avatar = {toml_string(avatar_path)}")
    for key in LIST_KEYS:
        items: list[str] = values[key]
        if items:
            lines.append(f"{key} = [")
            lines.extend(f"    {toml_string(item)}," for item in items)
            lines.append("]")
    return "\n".join(lines) + "\n"


def toml_string(text: str) -> str:
    """A TOML basic string (multi-line when the text has newlines) that reads back as ``text``."""
    if "\n" not in text:
        return f'"{_escape(text, keep_newlines=False)}"'
    return f'"""\n{_escape(text, keep_newlines=True)}"""'


def _escape(text: str, *, keep_newlines: bool) -> str:
    out: list[str] = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\n" if keep_newlines else "\\n")
        elif char == "\t":
            out.append(char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out)
