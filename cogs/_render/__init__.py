"""Rendering the story into Discord: characters on webhooks, streamed replies, split messages.

Cogs use ``Renderer``; the other modules here are its parts (leading ``_`` so no cog loader
mistakes them for extensions).
"""

from cogs._render._reactions import STOP_EMOJI
from cogs._render._renderer import Renderer
from cogs._render._retire import REWOUND_EMOJI, RetireMode
from cogs._render._split import MESSAGE_LIMIT, split_for_discord
from cogs._render._streaming import StreamingReply
from cogs._render._types import StoryChannel
from cogs._render._voices import QUIET
from cogs._render._webhooks import MAX_WEBHOOKS_PER_CHANNEL

__all__ = [
    "MAX_WEBHOOKS_PER_CHANNEL",
    "MESSAGE_LIMIT",
    "QUIET",
    "REWOUND_EMOJI",
    "STOP_EMOJI",
    "Renderer",
    "RetireMode",
    "StoryChannel",
    "StreamingReply",
    "split_for_discord",
]
