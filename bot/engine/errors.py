"""Errors the engine raises for things a player or an adapter can fix.

Each kind of refusal is its own class and carries its data (the chat, the scene, the lengths),
so an adapter can word it in its own terms: Discord names channels and its slash commands
(``cogs/_errors.py``), the console its own commands (``bot/console_errors.py``). ``str()`` of
each is a plain wording with no adapter's words in it, for logs, tests and any adapter that has
nothing better to say.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.store.views import Chat, Scene


class StoryError(Exception):
    """A request the story cannot carry out as asked (no chat here, no guest to join, ...).

    Every refusal is a subclass below, so adapters can word it; a bare ``StoryError("...")`` is
    for a rare one-off no adapter would word differently (there is none today).
    """


class NotFoundError(StoryError):
    """A chat, character, beat or world-book entry that does not exist (here)."""


# -- stories and characters ---------------------------------------------------------------------


@dataclass(eq=False)
class NoOpenStory(NotFoundError):
    chat_id: str

    def __str__(self) -> str:
        return f"there is no open story with id {self.chat_id!r}"


@dataclass(eq=False)
class NoSuchStory(NotFoundError):
    """Not even an ended one (export)."""

    chat_id: str

    def __str__(self) -> str:
        return f"there is no story {self.chat_id!r}"


@dataclass(eq=False)
class ChannelHasStory(StoryError):
    """One story per place: the open one must end before another starts."""

    chat: Chat

    def __str__(self) -> str:
        return "there is already a story here: end it first"


@dataclass(eq=False)
class NoSuchCharacter(NotFoundError):
    character_id: str

    def __str__(self) -> str:
        return f"no character {self.character_id!r}"


@dataclass(eq=False)
class CharacterInUse(StoryError):
    """A character cast in an open story cannot be deleted under it."""

    character_id: str
    chat: Chat

    def __str__(self) -> str:
        return f"{self.character_id} is in the open story {self.chat.id}: end it first"


@dataclass(eq=False)
class HostDeleted(StoryError):
    character_id: str

    def __str__(self) -> str:
        return f"the host character {self.character_id!r} was deleted; end this story"


@dataclass(eq=False)
class AnswererDeleted(StoryError):
    """An edited line's reply came from a character that no longer exists."""

    character_id: str

    def __str__(self) -> str:
        return "the character who answered that line was deleted"


@dataclass(eq=False)
class NotInStory(StoryError):
    character_id: str

    def __str__(self) -> str:
        return f"{self.character_id} is not in this story"


@dataclass(eq=False)
class GuestIsHost(StoryError):
    def __str__(self) -> str:
        return "the guest must be another character than the host"


@dataclass(eq=False)
class NoSuchGreeting(StoryError):
    host_name: str
    count: int

    def __str__(self) -> str:
        return f"{self.host_name} has greetings 0 to {self.count - 1} (0 is the first message)"


@dataclass(eq=False)
class Invalid(StoryError):
    """Fields that do not fit their model; ``problem`` names the field and what is wrong."""

    what: Literal["character", "you", "story", "guest", "world change", "world-info entry"]
    problem: str

    def __str__(self) -> str:
        match self.what:
            case "character":
                return f"that character does not fit: {self.problem}"
            case "story":
                return f"cannot start that story: {self.problem}"
            case "guest":
                return f"that guest cannot join: {self.problem}"
            case "world change":
                return f"cannot change the world that way: {self.problem}"
            case "world-info entry":
                return f"that world-info entry does not fit: {self.problem}"
        return self.problem


@dataclass(eq=False)
class BadAvatarType(StoryError):
    content_type: str

    def __str__(self) -> str:
        return f"an avatar must be a PNG, JPEG, GIF or WebP image, not {self.content_type}"


@dataclass(eq=False)
class AvatarTooLarge(StoryError):
    size: int
    limit: int

    def __str__(self) -> str:
        return (
            f"that avatar is {self.size:,} bytes; the limit is {self.limit:,} "
            f"({self.limit // 1_000_000} MB)"
        )


@dataclass(eq=False)
class NothingToChange(StoryError):
    def __str__(self) -> str:
        return "say what changes: time, place, weather or the day"


# -- a player's line ------------------------------------------------------------------------------


@dataclass(eq=False)
class EmptyTurn(StoryError):
    def __str__(self) -> str:
        return "there is nothing to say in that message"


@dataclass(eq=False)
class TurnTooLong(StoryError):
    length: int
    limit: int

    def __str__(self) -> str:
        return (
            f"that message is {self.length:,} characters; a turn can be at most "
            f"{self.limit:,}. Split it into several messages."
        )


@dataclass(eq=False)
class EditOutOfBounds(StoryError):
    """An edited line that is empty or longer than a turn may be."""

    limit: int

    def __str__(self) -> str:
        return "an edited line must be between 1 and the turn limit of characters"


@dataclass(eq=False)
class PremiseTooLong(StoryError):
    length: int
    limit: int

    def __str__(self) -> str:
        return (
            f"that premise is {self.length:,} characters; a meanwhile premise can be at most "
            f"{self.limit:,}"
        )


@dataclass(eq=False)
class UnwritableText(StoryError):
    """A lone surrogate: not valid text in any encoding, so it cannot be stored."""

    what: str
    codepoint: int
    position: int

    def __str__(self) -> str:
        return (
            f"{self.what} holds a broken character (a lone surrogate, U+{self.codepoint:04X}, "
            f"at position {self.position}) that cannot be saved; retype that part and send it "
            "again"
        )


@dataclass(eq=False)
class SceneMovedOn(StoryError):
    """A line queued while a meanwhile scene started (``meanwhile``) or ended (None)."""

    meanwhile: Scene | None

    def __str__(self) -> str:
        if self.meanwhile is not None:
            return (
                "a meanwhile scene started before your line was played, so it was left out: "
                "write in the meanwhile scene, or end it first"
            )
        return "that meanwhile scene ended before your line was played, so it was left out"


@dataclass(eq=False)
class ShuttingDown(StoryError):
    def __str__(self) -> str:
        return "storybot is shutting down; send that again when it is back"


@dataclass(eq=False)
class BeatNotSaved(StoryError):
    def __str__(self) -> str:
        return "that beat could not be saved; it is kept as interrupted"


# -- history ------------------------------------------------------------------------------------


@dataclass(eq=False)
class NotABeat(StoryError):
    """A message (or beat id) that shows nothing of this story."""

    turn_id: int | None = None

    def __str__(self) -> str:
        if self.turn_id is not None:
            return f"there is no beat {self.turn_id} in this story"
        return "that message is not a beat of this story"


@dataclass(eq=False)
class NotOwnLine(StoryError):
    action: Literal["edited", "taken back"]

    def __str__(self) -> str:
        return f"only your own lines can be {self.action}"


@dataclass(eq=False)
class NotLatestLine(StoryError):
    def __str__(self) -> str:
        return "only your latest line can be taken back; rewind to an earlier one"


@dataclass(eq=False)
class NothingToRewind(StoryError):
    def __str__(self) -> str:
        return "that is already the latest beat: there is nothing after it to rewind"


@dataclass(eq=False)
class TooFewLines(StoryError):
    asked: int
    have: int

    def __str__(self) -> str:
        are = "is" if self.have == 1 else "are"
        return f"there {are} only {self.have} of your lines to take back, not {self.asked}"


@dataclass(eq=False)
class RewindPastStart(StoryError):
    def __str__(self) -> str:
        return "that would rewind past the start of the story: its opening stays"


@dataclass(eq=False)
class NothingToRegenerate(StoryError):
    def __str__(self) -> str:
        return "there is no reply to regenerate yet"


@dataclass(eq=False)
class RewindCrossesMeanwhile(StoryError):
    """A rewind would take back a meanwhile scene's end (``ended``) or its start.

    ``earliest`` is (the start of) the first line it may go back to, None while there is none;
    ``players`` says whether that line is the player's or a reply.
    """

    ended: bool
    earliest: str | None
    players: bool = False

    @property
    def remedy(self) -> str:
        if self.earliest is None:
            return "nothing after it can be rewound yet"
        whose = "your line" if self.players else "the reply"
        return f"the earliest you can rewind to is {whose} “{self.earliest}”"

    def __str__(self) -> str:
        if self.ended:
            why = "that would undo the meanwhile scene that ended there (its digest is posted)"
        else:
            why = "that would leave the open meanwhile scene behind (end it first)"
        return f"{why}; {self.remedy}"


# -- scenes -------------------------------------------------------------------------------------


@dataclass(eq=False)
class NoOpenScene(StoryError):
    def __str__(self) -> str:
        return "this story has no open scene"


@dataclass(eq=False)
class MeanwhileOpen(StoryError):
    """The you-scene cannot change while a meanwhile scene is open."""

    scene: Scene

    def __str__(self) -> str:
        return "a meanwhile scene is still open: end it first"


@dataclass(eq=False)
class MeanwhileAlreadyOpen(StoryError):
    scene: Scene

    def __str__(self) -> str:
        return "a meanwhile scene is already open in this story"


@dataclass(eq=False)
class NoMeanwhile(StoryError):
    def __str__(self) -> str:
        return "no meanwhile scene is open in this story"


@dataclass(eq=False)
class NeedsGuest(StoryError):
    """A meanwhile scene is host and guest without you: no guest, no meanwhile."""

    def __str__(self) -> str:
        return "a meanwhile scene needs a guest: start the story with one, or let one join"


@dataclass(eq=False)
class NoGuestToJoin(StoryError):
    def __str__(self) -> str:
        return "this story has no guest: name a character to join"


@dataclass(eq=False)
class AlreadyInScene(StoryError):
    """``character_id`` is already present (the host always is)."""

    character_id: str
    host: bool = False

    def __str__(self) -> str:
        if self.host:
            return "the host is already here"
        return f"{self.character_id} is already in the scene"


@dataclass(eq=False)
class GuestNotInScene(StoryError):
    def __str__(self) -> str:
        return "the guest is not in the scene"


@dataclass(eq=False)
class NotTheGuest(StoryError):
    character_id: str

    def __str__(self) -> str:
        return f"{self.character_id} is not the guest here (only the guest can leave)"


# -- world info ---------------------------------------------------------------------------------


@dataclass(eq=False)
class NoWorldInfo(StoryError):
    """A world-info file with nothing that could be read."""

    filename: str

    def __str__(self) -> str:
        return f"{self.filename} has no world-info entries that could be read"


@dataclass(eq=False)
class LoreEntryIncomplete(StoryError):
    """An entry without content, or one that could never fire (no keys, not constant)."""

    missing: Literal["content", "keys"]

    def __str__(self) -> str:
        if self.missing == "content":
            return "a world-info entry needs some content"
        return "a world-info entry needs keys (words that make it fire) or constant"


@dataclass(eq=False)
class NoSuchLoreEntry(NotFoundError):
    number: int

    def __str__(self) -> str:
        return f"the world book has no entry {self.number}"


@dataclass(eq=False)
class UnreadableWorldBook(StoryError):
    """A world-info file (or card) the card reader refused; ``reason`` is its own words."""

    filename: str
    reason: str

    def __str__(self) -> str:
        return self.reason


@dataclass(eq=False)
class OutOfCharacter(StoryError):
    """A line wholly out of character (``(( … ))``, ``OOC:``, ``//``): no beat of the story.

    Nobody remembers it and no transcript shows it; the adapter answers with this note.
    """

    def __str__(self) -> str:
        return (
            "(( out of character: noted. It stays out of the story; the characters did not "
            "hear it. ))"
        )
