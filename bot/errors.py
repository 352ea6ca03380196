"""The error a storybot command (``run``, ``rebuild``, ...) ends with when the user can fix it.

Its own module, below ``bot.cli`` and ``bot.app`` alike: the Discord runner raises it and the CLI
prints it, and neither has to import the other for it.
"""


class CommandError(Exception):
    """A command failed for a reason the user can fix; the message says how."""
