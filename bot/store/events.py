"""Typed events: one pydantic model per kind, named in the past tense, immutable once written.

The first payloads' fields are the contract; fields added since have defaults, so payloads
written before them still validate. Rows created by an event take that event's id as their own
id, so a rebuild from the log gives every row the same id it had when applied incrementally.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

PresentSetKind = Literal["you_host", "you_host_guest", "host_guest"]
SegmentKind = Literal["dialogue", "action", "narration", "ooc"]
RewindReason = Literal["rewind", "regenerate", "deleted"]

YOU = "you"
"""The entity id of the player's persona in edges, memories and activities."""

MAX_TEXT = 20_000
MAX_SHORT = 500
MAX_IMAGE_BYTES = 2_000_000
"""An avatar image kept in the log (asset_stored); every door that takes images checks this."""
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
"""Image formats Discord takes as a webhook avatar."""


class Record(BaseModel):
    """Base of everything the log holds: unknown fields are refused, so a typo never slips in."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Payload(Record):
    """An event: what happened, one class per kind; ``kind`` names it in the log."""

    kind: ClassVar[str]


class BotAuthored(Payload):
    """A character was written or rewritten (same guild and id: the new version replaces it)."""

    kind: ClassVar[str] = "bot_authored"

    id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str = Field(min_length=1, max_length=80)
    persona: str = Field(max_length=MAX_TEXT)
    voice_samples: list[str] = Field(default_factory=list, max_length=50)
    traits: list[str] = Field(default_factory=list, max_length=50)
    backstory: str = Field(default="", max_length=MAX_TEXT)
    initial_relationship_to_you: str = Field(default="", max_length=MAX_TEXT)
    kickoff_prose: str = Field(default="", max_length=MAX_TEXT)
    nickname: str = Field(default="", max_length=80)
    avatar: str = Field(default="", max_length=200, description="sha256 of an asset_stored image")
    guild_id: int = 0
    creator_id: int = 0
    scenario: str = Field(default="", max_length=MAX_TEXT)
    system_prompt: str = Field(default="", max_length=MAX_TEXT)
    post_history_instructions: str = Field(default="", max_length=MAX_TEXT)
    alternate_greetings: list[str] = Field(default_factory=list, max_length=50)
    tags: list[str] = Field(default_factory=list, max_length=100)
    creator_notes: str = Field(default="", max_length=MAX_TEXT)
    extensions: dict[str, object] = Field(default_factory=dict)
    personality: str = Field(default="", max_length=MAX_TEXT)
    creator: str = Field(default="", max_length=MAX_SHORT)
    character_version: str = Field(default="", max_length=MAX_SHORT)
    character_book: dict[str, object] | None = None
    """The card's lorebook as the card wrote it (V2/V3 ``character_book``), read at prompt time."""
    card_source: dict[str, object] = Field(default_factory=dict)
    """The imported card's ``data`` as written, so an export gives back every field (unknown
    ones included) that was not changed here."""


class CharacterDeleted(Payload):
    kind: ClassVar[str] = "character_deleted"

    id: str
    guild_id: int = 0


class YouAuthored(Payload):
    """The player's persona, one per (guild, Discord user); 0/0 in the console."""

    kind: ClassVar[str] = "you_authored"

    name: str = Field(min_length=1, max_length=80)
    pronouns: str = Field(default="", max_length=40)
    persona: str = Field(default="", max_length=MAX_TEXT)
    owner_id: int = 0
    guild_id: int = 0


class AssetStored(Payload):
    """An image (an avatar) kept in the log, because Discord attachment URLs expire."""

    kind: ClassVar[str] = "asset_stored"

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    content_type: str = Field(max_length=100)
    data_b64: str = Field(max_length=(MAX_IMAGE_BYTES + 2) // 3 * 4)


class ChatCreated(Payload):
    kind: ClassVar[str] = "chat_created"

    id: str = Field(min_length=1, max_length=100)
    host_bot_id: str
    guest_bot_id: str | None = None
    initial_time: str
    narrative_anchor: str = Field(default="Day 1", max_length=MAX_SHORT)
    weather: str = Field(default="", max_length=MAX_SHORT)
    place: str = Field(default="", max_length=MAX_SHORT)
    owner_id: int = 0
    guild_id: int = 0
    channel_id: int = 0


class ChatEnded(Payload):
    kind: ClassVar[str] = "chat_ended"

    chat_id: str


class CastChanged(Payload):
    """The chat's guest character changed (None: the chat has no guest any more)."""

    kind: ClassVar[str] = "cast_changed"

    chat_id: str
    guest_bot_id: str | None


class WorldChanged(Payload):
    """In-world time, place or weather moved on (None leaves a field as it was)."""

    kind: ClassVar[str] = "world_changed"

    chat_id: str
    time: str | None = None
    place: str | None = None
    weather: str | None = None
    narrative_anchor: str | None = None


class ContainerCreated(Payload):
    kind: ClassVar[str] = "container_created"

    chat_id: str
    name: str = Field(max_length=MAX_SHORT)
    type: str = Field(default="place", max_length=100)
    properties: dict[str, object] = Field(default_factory=dict)


class SceneOpened(Payload):
    kind: ClassVar[str] = "scene_opened"

    chat_id: str
    container_id: int
    started_at: str
    participants: list[str] = Field(min_length=1)


class SceneClosed(Payload):
    kind: ClassVar[str] = "scene_closed"

    scene_id: int
    closed_at: str
    chat_id: str = ""


class MeanwhileSceneStarted(Payload):
    """A meanwhile scene opened under a you-scene; its row takes this event's id.

    ``scene_id`` is kept because the first payloads carry it (an id an older store gave the
    scene); the projection ignores it, since rows always take their event's id.
    """

    kind: ClassVar[str] = "meanwhile_scene_started"

    scene_id: int | None = None
    chat_id: str
    parent_scene_id: int
    host_bot_id: str
    guest_bot_id: str
    started_at: str
    thread_id: int = 0
    premise: str = Field(default="", max_length=MAX_TEXT)


class MeanwhileSceneClosed(Payload):
    kind: ClassVar[str] = "meanwhile_scene_closed"

    scene_id: int
    closed_at: str
    chat_id: str = ""


class EdgeUpdate(Payload):
    """A directed relationship moved; deltas are clamped to 0..100 when applied."""

    kind: ClassVar[str] = "edge_update"

    source_id: str
    target_id: str
    chat_id: str
    affinity_delta: int = Field(default=0, ge=-100, le=100)
    trust_delta: int = Field(default=0, ge=-100, le=100)
    knowledge_facts: list[str] = Field(default_factory=list, max_length=50)
    relationship_summary: str | None = Field(default=None, max_length=MAX_TEXT)
    beat_id: int | None = None
    """The beat this update was derived from (a state update after that beat)."""
    scene_id: int | None = None
    """The scene this update was derived from (what its close taught a witness)."""


class ActivityAction(Record):
    verb: str = Field(max_length=MAX_SHORT)
    interruptible: bool = True
    required_attention: str = Field(default="low", max_length=40)
    expected_duration: str = Field(default="ongoing", max_length=100)


class ActivityChange(Payload):
    kind: ClassVar[str] = "activity_change"

    entity_id: str
    posture: str = Field(default="", max_length=MAX_SHORT)
    action: ActivityAction
    attention: str = Field(default="", max_length=MAX_SHORT)
    holding: list[str] = Field(default_factory=list, max_length=20)
    status: dict[str, object] = Field(default_factory=dict)
    chat_id: str = ""
    beat_id: int | None = None
    """The beat it was derived from: only that beat's witnesses see this activity."""


class MemoryWritten(Payload):
    """One witness's memory of one beat, in its own words."""

    kind: ClassVar[str] = "memory_written"

    owner_id: str
    chat_id: str
    scene_id: int
    witness_you: Literal[0, 1]
    witness_host: Literal[0, 1]
    witness_guest: Literal[0, 1]
    text: str = Field(default="", max_length=MAX_TEXT)
    pov_summary: str = Field(default="", max_length=MAX_TEXT)
    beat_id: int | None = None


class Segment(Record):
    kind: SegmentKind
    text: str = Field(max_length=MAX_TEXT)


class TurnStarted(Payload):
    """Written before a reply streams, so a crash mid-stream can be found and closed later."""

    kind: ClassVar[str] = "turn_started"

    chat_id: str
    scene_id: int
    speaker_id: str
    prose: str = Field(max_length=MAX_TEXT)
    present_set_kind: PresentSetKind
    meanwhile_scene_id: int | None = None
    author_id: int = 0
    message_id: int = 0
    answers_turn_id: int | None = None
    witnesses: list[str] = Field(default_factory=list)
    """Who is present as the reply streams; recovery writes the beat with the same ones."""


class UserTurn(Payload):
    kind: ClassVar[str] = "user_turn"

    chat_id: str
    scene_id: int
    prose: str = Field(max_length=MAX_TEXT)
    segments: list[Segment] = Field(default_factory=list)
    present_set_kind: PresentSetKind
    witnesses: list[str] = Field(default_factory=list)
    meanwhile_scene_id: int | None = None
    turn_started_id: int | None = None
    author_id: int = 0
    message_id: int = 0


class AssistantTurn(Payload):
    kind: ClassVar[str] = "assistant_turn"

    chat_id: str
    scene_id: int
    speaker_id: str
    text: str = Field(max_length=MAX_TEXT)
    present_set_kind: PresentSetKind
    witnesses: list[str] = Field(default_factory=list)
    meanwhile_scene_id: int | None = None
    cancelled: bool = False
    interrupted: bool = False
    turn_started_id: int | None = None
    message_ids: list[int] = Field(default_factory=list)
    answers_turn_id: int | None = None
    """The player's beat this reply answers (a regenerated reply answers the same one)."""


class TurnClassified(Payload):
    """The player's line, labelled span by span (written after the beat, which never waits)."""

    kind: ClassVar[str] = "turn_classified"

    chat_id: str
    turn_id: int
    segments: list[Segment] = Field(default_factory=list)


class TurnMessagesLinked(Payload):
    """The Discord messages that show a beat, learned after the beat was written."""

    kind: ClassVar[str] = "turn_messages_linked"

    chat_id: str
    turn_id: int
    message_ids: list[int]


EditTarget = Literal["memory_pov_summary", "user_turn_prose", "assistant_turn_text"]


class ManualEdit(Payload):
    kind: ClassVar[str] = "manual_edit"

    target_kind: EditTarget
    target_id: int
    new_value: str = Field(max_length=MAX_TEXT)
    chat_id: str = ""
    scene_id: int | None = None
    """For a scene summary: the scene it was derived from."""


class DigestWritten(Payload):
    kind: ClassVar[str] = "digest_written"

    chat_id: str
    meanwhile_scene_id: int
    text: str = Field(max_length=MAX_TEXT)


class StoryThreadDetected(Payload):
    kind: ClassVar[str] = "story_thread_detected"

    chat_id: str
    scene_id: int
    title: str = Field(max_length=MAX_SHORT)
    summary: str = Field(default="", max_length=MAX_TEXT)


class BeatsRewound(Payload):
    """Every turn of the chat with an id above ``after_event_id`` leaves the story.

    Their events stay in the log; projections and prompts behave as if they never happened.
    """

    kind: ClassVar[str] = "beats_rewound"

    chat_id: str
    after_event_id: int
    reason: RewindReason = "rewind"

    @field_validator("after_event_id")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 0:
            raise ValueError("after_event_id must be >= 0")
        return value


class DerivationsReplaced(Payload):
    """What was derived from a beat (or a scene) before this event leaves the story.

    An edit writes it, then the items derived again from the new words: memories, facts,
    feelings, activities, and, for a closed scene, its summaries, threads and digest.
    """

    kind: ClassVar[str] = "derivations_replaced"

    chat_id: str
    beat_id: int | None = None
    scene_id: int | None = None
    reason: Literal["edit"] = "edit"


SelectiveLogic = Literal["and_any", "not_all", "not_any", "and_all"]
LorePosition = Literal["before_char", "after_char", "at_depth"]
LoreRole = Literal["system", "user", "assistant"]


class LoreEntry(Record):
    """One world-info entry, normalized from a card's ``character_book`` or a SillyTavern
    world-info file (see ``bot.cards.lorebook``); ``bot.engine.worldinfo`` decides when it fires.
    """

    keys: list[str] = Field(default_factory=list, max_length=100)
    secondary_keys: list[str] = Field(default_factory=list, max_length=100)
    selective: bool = False
    selective_logic: SelectiveLogic = "and_any"
    content: str = Field(default="", max_length=MAX_TEXT)
    comment: str = Field(default="", max_length=MAX_SHORT)
    constant: bool = False
    enabled: bool = True
    insertion_order: int = 100
    priority: int = 10
    position: LorePosition = "before_char"
    depth: int = Field(default=4, ge=0, le=1000)
    """With ``at_depth``: how many messages from the end of the transcript it goes."""
    role: LoreRole = "system"
    case_sensitive: bool = False
    use_regex: bool = False
    match_whole_words: bool = False
    scan_depth: int | None = Field(default=None, ge=0, le=1000)
    exclude_recursion: bool = False
    prevent_recursion: bool = False


class WorldBookImported(Payload):
    """A chat's world book was replaced by an imported one (entries and book settings)."""

    kind: ClassVar[str] = "world_book_imported"

    chat_id: str
    name: str = Field(default="", max_length=MAX_SHORT)
    scan_depth: int | None = Field(default=None, ge=0, le=1000)
    token_budget: int | None = Field(default=None, ge=0, le=1_000_000)
    recursive_scanning: bool = False
    entries: list[LoreEntry] = Field(default_factory=list, max_length=2000)


class LoreEntryAdded(Payload):
    """An entry was added to a chat's world book; it takes the chat's next entry number."""

    kind: ClassVar[str] = "lore_entry_added"

    chat_id: str
    entry: LoreEntry


class LoreEntryRemoved(Payload):
    kind: ClassVar[str] = "lore_entry_removed"

    chat_id: str
    number: int = Field(ge=1)


WORLD_BOOK_KINDS = ("world_book_imported", "lore_entry_added", "lore_entry_removed")
"""Changes to a chat's world book: not beats, so a rewind carries them past itself."""


EVENT_TYPES: tuple[type[Payload], ...] = (
    BotAuthored,
    CharacterDeleted,
    YouAuthored,
    AssetStored,
    ChatCreated,
    ChatEnded,
    CastChanged,
    WorldChanged,
    ContainerCreated,
    SceneOpened,
    SceneClosed,
    MeanwhileSceneStarted,
    MeanwhileSceneClosed,
    EdgeUpdate,
    ActivityChange,
    MemoryWritten,
    TurnStarted,
    UserTurn,
    AssistantTurn,
    TurnClassified,
    TurnMessagesLinked,
    ManualEdit,
    DigestWritten,
    StoryThreadDetected,
    BeatsRewound,
    DerivationsReplaced,
    WorldBookImported,
    LoreEntryAdded,
    LoreEntryRemoved,
)
"""Every kind of event the log holds, oldest kinds first."""

PAYLOAD_MODELS: dict[str, type[Payload]] = {model.kind: model for model in EVENT_TYPES}
