"""The one type alias for where a story is shown: a text channel, or a meanwhile thread in it."""

from __future__ import annotations

from typing import TypeAlias

import discord

StoryChannel: TypeAlias = discord.TextChannel | discord.Thread
"""A story's channel or one of its meanwhile threads (a runtime union: isinstance works)."""
