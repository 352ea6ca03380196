"""Errors the engine raises for things a player or an adapter can fix; messages say how."""


class StoryError(Exception):
    """A request the story cannot carry out as asked (no chat here, no guest to join, ...)."""


class NotFoundError(StoryError):
    """A chat, character or scene that does not exist (in this server)."""


class OutOfCharacter(StoryError):
    """A line wholly out of character (``(( … ))``, ``OOC:``, ``//``): no beat of the story.

    Nobody remembers it and no transcript shows it; the adapter answers with this note.
    """

    def __init__(self) -> None:
        super().__init__(
            "(( out of character: noted. It stays out of the story; the characters did not "
            "hear it. ))"
        )
