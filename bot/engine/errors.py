"""Errors the engine raises for things a player or an adapter can fix; messages say how."""


class StoryError(Exception):
    """A request the story cannot carry out as asked (no chat here, no guest to join, ...)."""


class NotFoundError(StoryError):
    """A chat, character or scene that does not exist (in this server)."""
