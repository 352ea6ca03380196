"""The one exception a card import or export raises, worded for the person who sent the file."""

from __future__ import annotations


class CardError(ValueError):
    """A card that can't be imported or exported; ``message`` can be shown to a Discord user as is.

    Raising it means nothing was imported: callers store a character only after a clean return.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
