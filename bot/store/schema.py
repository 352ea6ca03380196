"""Numbered schema migrations. Never edit a released one: add the next number instead.

``event_log`` is the only source of truth; every other table is a projection that
``project()`` can drop and rebuild from the log.
"""

from __future__ import annotations

RECALL_TIERS: dict[str, tuple[str, tuple[str, ...], int]] = {
    "memories": ("id", ("scope", "text", "pov_summary"), 1024),
    "edge_facts": ("rowid", ("terms",), 256),
}
"""Each table with a two-tier full-text index: the key that splits the tiers, the indexed
columns, and the span (of keys: event ids for memories, rows for facts) the recent tier holds,
between one and two of them; at two, its older span moves to the archive."""

CRISIS_MERGE = 4
"""Segments of one level a full-text index merges into one at once (migration 10): a search
seeks in each segment, so fewer segments are cheaper searches for a little more writing."""


def tier_triggers(table: str, span: int | None = None) -> str:
    """The triggers keeping ``table``'s two indexes (tests pass a small ``span``).

    Each insert, delete and update goes to the index its key belongs to. When a new key passes
    the boundary by two spans, the older span moves to the archive in one go and the recent
    index is written again with the newest span, whole: the recent index stays small (few
    segments) at any story length, and the archive is written once a span, not every turn.
    """
    key, columns, default_span = RECALL_TIERS[table]
    span = default_span if span is None else span
    cols = ", ".join(columns)
    boundary = f"(SELECT boundary FROM recall_tiers WHERE tbl = '{table}')"

    def routed(row: str, command: str = "") -> str:
        """Insert (or with ``command`` 'delete') ``row`` in the index its key belongs to."""
        values = ", ".join(f"{row}.{c}" for c in columns)
        lines = []
        for fts, op in ((f"{table}_fts_recent", ">"), (f"{table}_fts", "<=")):
            hidden, lead = (f"{fts}, ", f"'{command}', ") if command else ("", "")
            lines.append(
                f"    INSERT INTO {fts} ({hidden}rowid, {cols}) SELECT {lead}{row}.{key}, "
                f"{values} WHERE {row}.{key} {op} {boundary};\n"
            )
        return "".join(lines)

    due = f"new.{key} > {boundary} + {2 * span}"
    # the ranges are empty unless a move is due (a condition beside them would be checked
    # on every row of the recent tier, at every insert)
    moved = f"CASE WHEN {due} THEN new.{key} - {span} ELSE {boundary} END"
    kept = f"CASE WHEN {due} THEN new.{key} - {span} ELSE {2**62} END"
    return f"""
    CREATE TRIGGER {table}_ai AFTER INSERT ON {table} BEGIN
{routed("new")}    INSERT INTO {table}_fts (rowid, {cols}) SELECT {key}, {cols} FROM {table}
        WHERE {key} > {boundary} AND {key} <= {moved};
    INSERT INTO {table}_fts_recent ({table}_fts_recent) SELECT 'delete-all' WHERE {due};
    INSERT INTO {table}_fts_recent (rowid, {cols}) SELECT {key}, {cols} FROM {table}
        WHERE {key} > {kept};
    UPDATE recall_tiers SET boundary = new.{key} - {span} WHERE tbl = '{table}' AND {due};
    END;
    CREATE TRIGGER {table}_ad AFTER DELETE ON {table} BEGIN
{routed("old", "delete")}    END;
    CREATE TRIGGER {table}_au AFTER UPDATE ON {table} BEGIN
{routed("old", "delete")}{routed("new")}    END;
    """


def _sizeless_index(table: str) -> str:
    """Migration 11 for one table: both tiers made again with ``columnsize=0``, from their rows
    (the tiers' triggers name the indexes, so they stay as they are)."""
    key, columns, _ = RECALL_TIERS[table]
    cols = ", ".join(columns)
    view_key = "id" if key == "id" else "fact_row"
    script = ""
    for fts, view in (
        (f"{table}_fts", f"{table}_archived"),
        (f"{table}_fts_recent", f"{table}_newest"),
    ):
        script += f"""
    DROP TABLE {fts};
    CREATE VIRTUAL TABLE {fts} USING fts5 (
        {cols}, content='{view}', content_rowid='{view_key}', columnsize=0
    );
    INSERT INTO {fts} ({fts}, rank) VALUES ('crisismerge', {CRISIS_MERGE});
    INSERT INTO {fts} ({fts}) VALUES ('rebuild');"""
    return script + "\n"


def _tiered_index(table: str) -> str:
    """Migration 9 for one table: two full-text indexes split at ``recall_tiers.boundary``.

    ``{table}_fts`` (the archive) indexes the rows at or below the boundary, through the view
    ``{table}_archived``; ``{table}_fts_recent`` those above it, through ``{table}_newest``.
    Both start empty: the rebuild that follows migration 9 (``REBUILD_AFTER``) fills them.
    """
    key, columns, _ = RECALL_TIERS[table]
    cols = ", ".join(columns)
    boundary = f"(SELECT boundary FROM recall_tiers WHERE tbl = '{table}')"
    view_key = "id" if key == "id" else "fact_row"
    selected = "id" if key == "id" else "rowid AS fact_row"
    return f"""
    DROP TRIGGER {table}_ai;
    DROP TRIGGER {table}_ad;
    DROP TRIGGER {table}_au;
    DROP TABLE {table}_fts;
    INSERT INTO recall_tiers (tbl, boundary) SELECT '{table}', COALESCE(MAX({key}), 0) FROM {table};
    CREATE VIEW {table}_archived AS SELECT {selected}, {cols} FROM {table}
        WHERE {key} <= {boundary};
    CREATE VIEW {table}_newest AS SELECT {selected}, {cols} FROM {table}
        WHERE {key} > {boundary};
    CREATE VIRTUAL TABLE {table}_fts USING fts5 (
        {cols}, content='{table}_archived', content_rowid='{view_key}'
    );
    CREATE VIRTUAL TABLE {table}_fts_recent USING fts5 (
        {cols}, content='{table}_newest', content_rowid='{view_key}'
    );
    {tier_triggers(table)}"""


MIGRATIONS: tuple[str, ...] = (
    # 1: the log and the first projections.
    """
    CREATE TABLE event_log (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        payload_json TEXT NOT NULL,
        chat_id TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX event_log_chat ON event_log (chat_id, id);
    CREATE INDEX event_log_kind ON event_log (kind, id);

    CREATE TABLE characters (
        guild_id INTEGER NOT NULL,
        id TEXT NOT NULL,
        name TEXT NOT NULL,
        nickname TEXT NOT NULL,
        creator_id INTEGER NOT NULL,
        avatar TEXT NOT NULL,
        payload_json TEXT NOT NULL,
        updated_event_id INTEGER NOT NULL,
        PRIMARY KEY (guild_id, id)
    );
    CREATE TABLE yous (
        guild_id INTEGER NOT NULL,
        owner_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        pronouns TEXT NOT NULL,
        persona TEXT NOT NULL,
        PRIMARY KEY (guild_id, owner_id)
    );
    CREATE TABLE assets (
        sha256 TEXT PRIMARY KEY,
        content_type TEXT NOT NULL,
        data BLOB NOT NULL
    );
    CREATE TABLE chats (
        id TEXT PRIMARY KEY,
        guild_id INTEGER NOT NULL,
        channel_id INTEGER NOT NULL,
        owner_id INTEGER NOT NULL,
        host_id TEXT NOT NULL,
        guest_id TEXT,
        world_time TEXT NOT NULL,
        narrative_anchor TEXT NOT NULL,
        weather TEXT NOT NULL,
        place TEXT NOT NULL,
        status TEXT NOT NULL,
        created_event_id INTEGER NOT NULL
    );
    CREATE INDEX chats_channel ON chats (channel_id, status);
    CREATE TABLE containers (
        id INTEGER PRIMARY KEY,
        chat_id TEXT NOT NULL,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        properties_json TEXT NOT NULL
    );
    CREATE TABLE scenes (
        id INTEGER PRIMARY KEY,
        chat_id TEXT NOT NULL,
        container_id INTEGER,
        parent_scene_id INTEGER,
        kind TEXT NOT NULL,
        present_set_kind TEXT NOT NULL,
        participants_json TEXT NOT NULL,
        thread_id INTEGER NOT NULL,
        premise TEXT NOT NULL,
        started_at TEXT NOT NULL,
        closed_at TEXT,
        status TEXT NOT NULL
    );
    CREATE INDEX scenes_chat ON scenes (chat_id, status);
    CREATE INDEX scenes_thread ON scenes (thread_id);
    CREATE TABLE edges (
        chat_id TEXT NOT NULL,
        source_id TEXT NOT NULL,
        target_id TEXT NOT NULL,
        affinity INTEGER NOT NULL DEFAULT 50,
        trust INTEGER NOT NULL DEFAULT 50,
        knowledge_facts_json TEXT NOT NULL DEFAULT '[]',
        relationship_summary TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (chat_id, source_id, target_id)
    );
    CREATE TABLE edge_changes (
        event_id INTEGER PRIMARY KEY,
        chat_id TEXT NOT NULL,
        source_id TEXT NOT NULL,
        target_id TEXT NOT NULL,
        affinity_delta INTEGER NOT NULL,
        trust_delta INTEGER NOT NULL,
        beat_id INTEGER
    );
    CREATE INDEX edge_changes_pair ON edge_changes (chat_id, source_id, target_id, event_id);
    CREATE TABLE activities (
        chat_id TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        posture TEXT NOT NULL,
        action_json TEXT NOT NULL,
        attention TEXT NOT NULL,
        holding_json TEXT NOT NULL,
        status_json TEXT NOT NULL,
        PRIMARY KEY (chat_id, entity_id)
    );
    CREATE TABLE memories (
        id INTEGER PRIMARY KEY,
        owner_id TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        scene_id INTEGER NOT NULL,
        beat_id INTEGER,
        witness_you INTEGER NOT NULL,
        witness_host INTEGER NOT NULL,
        witness_guest INTEGER NOT NULL,
        text TEXT NOT NULL,
        pov_summary TEXT NOT NULL
    );
    CREATE INDEX memories_owner ON memories (chat_id, owner_id, id);
    CREATE INDEX memories_scene ON memories (scene_id, owner_id);
    CREATE VIRTUAL TABLE memories_fts USING fts5 (
        text, pov_summary, content='memories', content_rowid='id'
    );
    CREATE TRIGGER memories_ai AFTER INSERT ON memories BEGIN
        INSERT INTO memories_fts (rowid, text, pov_summary)
        VALUES (new.id, new.text, new.pov_summary);
    END;
    CREATE TRIGGER memories_ad AFTER DELETE ON memories BEGIN
        INSERT INTO memories_fts (memories_fts, rowid, text, pov_summary)
        VALUES ('delete', old.id, old.text, old.pov_summary);
    END;
    CREATE TRIGGER memories_au AFTER UPDATE ON memories BEGIN
        INSERT INTO memories_fts (memories_fts, rowid, text, pov_summary)
        VALUES ('delete', old.id, old.text, old.pov_summary);
        INSERT INTO memories_fts (rowid, text, pov_summary)
        VALUES (new.id, new.text, new.pov_summary);
    END;
    CREATE TABLE turns (
        id INTEGER PRIMARY KEY,
        chat_id TEXT NOT NULL,
        scene_id INTEGER NOT NULL,
        meanwhile_scene_id INTEGER,
        role TEXT NOT NULL,
        speaker_id TEXT NOT NULL,
        text TEXT NOT NULL,
        segments_json TEXT NOT NULL,
        present_set_kind TEXT NOT NULL,
        cancelled INTEGER NOT NULL,
        interrupted INTEGER NOT NULL,
        turn_started_id INTEGER,
        author_id INTEGER NOT NULL,
        message_ids_json TEXT NOT NULL
    );
    CREATE INDEX turns_chat ON turns (chat_id, id);
    CREATE TABLE turn_witnesses (
        turn_id INTEGER NOT NULL,
        chat_id TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        PRIMARY KEY (entity_id, chat_id, turn_id)
    );
    CREATE INDEX turns_scene ON turns (scene_id, id);
    CREATE TABLE open_turns (
        turn_started_id INTEGER PRIMARY KEY,
        chat_id TEXT NOT NULL,
        payload_json TEXT NOT NULL
    );
    CREATE TABLE digests (
        id INTEGER PRIMARY KEY,
        chat_id TEXT NOT NULL,
        meanwhile_scene_id INTEGER NOT NULL,
        text TEXT NOT NULL
    );
    CREATE TABLE story_threads (
        id INTEGER PRIMARY KEY,
        chat_id TEXT NOT NULL,
        scene_id INTEGER NOT NULL,
        title TEXT NOT NULL,
        summary TEXT NOT NULL
    );
    CREATE TABLE rewound_ranges (
        event_id INTEGER PRIMARY KEY,
        chat_id TEXT NOT NULL,
        after_event_id INTEGER NOT NULL,
        reason TEXT NOT NULL
    );
    """,
    # 2: memory recall scoped to one (chat, owner) inside the full-text index, so a search walks
    # only that character's memories, newest first, instead of every chat's (bm25 over the whole
    # index grew with history: 0.4 ms at 10 turns, 22 ms at 10,000).
    """
    DROP TRIGGER memories_ai;
    DROP TRIGGER memories_ad;
    DROP TRIGGER memories_au;
    DROP TABLE memories_fts;
    ALTER TABLE memories ADD COLUMN scope TEXT NOT NULL DEFAULT '';
    CREATE VIRTUAL TABLE memories_fts USING fts5 (
        scope, text, pov_summary, content='memories', content_rowid='id'
    );
    CREATE TRIGGER memories_ai AFTER INSERT ON memories BEGIN
        INSERT INTO memories_fts (rowid, scope, text, pov_summary)
        VALUES (new.id, new.scope, new.text, new.pov_summary);
    END;
    CREATE TRIGGER memories_ad AFTER DELETE ON memories BEGIN
        INSERT INTO memories_fts (memories_fts, rowid, scope, text, pov_summary)
        VALUES ('delete', old.id, old.scope, old.text, old.pov_summary);
    END;
    CREATE TRIGGER memories_au AFTER UPDATE ON memories BEGIN
        INSERT INTO memories_fts (memories_fts, rowid, scope, text, pov_summary)
        VALUES ('delete', old.id, old.scope, old.text, old.pov_summary);
        INSERT INTO memories_fts (rowid, scope, text, pov_summary)
        VALUES (new.id, new.scope, new.text, new.pov_summary);
    END;
    """,
    # 3: which player beat a reply answers, so a regenerated reply (a new turn of its own)
    # still pairs with the line it answers.
    """
    ALTER TABLE turns ADD COLUMN answers_turn_id INTEGER;
    CREATE INDEX turns_answers ON turns (answers_turn_id);
    CREATE INDEX turns_started ON turns (turn_started_id);
    """,
    # 4: provenance. Every derived item records the beat or scene it came from, and is seen only
    # by that source's witnesses: activities as each viewer last saw them, facts as rows (one per
    # fact, deduplicated), and the exclusions an edit writes before it derives again. Stream
    # checkpoints keep the text a player saw if the process dies mid-reply (not a projection:
    # a rebuild leaves them alone; writing the beat deletes its checkpoint).
    """
    DROP TABLE activities;
    CREATE TABLE activity_views (
        chat_id TEXT NOT NULL,
        viewer_id TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        posture TEXT NOT NULL,
        action_json TEXT NOT NULL,
        attention TEXT NOT NULL,
        holding_json TEXT NOT NULL,
        status_json TEXT NOT NULL,
        seen_at INTEGER NOT NULL,
        PRIMARY KEY (chat_id, viewer_id, entity_id)
    );
    ALTER TABLE edges DROP COLUMN knowledge_facts_json;
    ALTER TABLE edges ADD COLUMN summary_seen_at INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE edge_facts (
        chat_id TEXT NOT NULL,
        source_id TEXT NOT NULL,
        target_id TEXT NOT NULL,
        fact_key TEXT NOT NULL,
        fact TEXT NOT NULL,
        event_id INTEGER NOT NULL,
        beat_id INTEGER,
        scene_id INTEGER,
        PRIMARY KEY (chat_id, source_id, target_id, fact_key)
    );
    CREATE INDEX edge_facts_recent ON edge_facts (chat_id, source_id, target_id, event_id);
    CREATE TABLE derived_replaced (
        event_id INTEGER PRIMARY KEY,
        chat_id TEXT NOT NULL,
        beat_id INTEGER,
        scene_id INTEGER
    );
    CREATE INDEX derived_replaced_chat ON derived_replaced (chat_id, event_id);
    CREATE INDEX turn_witnesses_turn ON turn_witnesses (turn_id);
    CREATE TABLE stream_checkpoints (
        turn_started_id INTEGER PRIMARY KEY,
        chat_id TEXT NOT NULL,
        text TEXT NOT NULL
    );
    """,
    # 5: a chat's world book (world info shared by every character of the chat).
    """
    CREATE TABLE world_books (
        chat_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        settings_json TEXT NOT NULL
    );
    CREATE TABLE lore_entries (
        chat_id TEXT NOT NULL,
        number INTEGER NOT NULL,
        entry_json TEXT NOT NULL,
        event_id INTEGER NOT NULL,
        PRIMARY KEY (chat_id, number)
    );
    """,
    # 6: the undo journal (bot/store/journal.py), so a rewind or an edit undoes what came after
    # its point instead of replaying the chat's whole log. Its triggers are made at every open
    # from the tables as they are; a log that exists already is covered from its last event on.
    """
    CREATE TABLE undo_journal (
        seq INTEGER PRIMARY KEY,
        chat_id TEXT NOT NULL,
        event_id INTEGER NOT NULL,
        tbl TEXT NOT NULL,
        op TEXT NOT NULL,
        key_json TEXT NOT NULL,
        old_json TEXT
    );
    CREATE INDEX undo_journal_chat ON undo_journal (chat_id, event_id);
    CREATE TABLE undo_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        recording INTEGER NOT NULL,
        event_id INTEGER NOT NULL,
        since INTEGER NOT NULL
    );
    INSERT INTO undo_state (id, recording, event_id, since)
    VALUES (1, 0, 0, (SELECT COALESCE(MAX(id), 0) FROM event_log));
    CREATE TABLE undo_since (
        chat_id TEXT PRIMARY KEY,
        since INTEGER NOT NULL
    );
    """,
    # 7: facts matching a line are found through a full-text index scoped to their edge, so the
    # search costs the matches it returns, not the facts an edge ever learned (a LIKE over an
    # edge's newest 500 facts cost 1.5 ms a turn per edge once a story had that many).
    """
    ALTER TABLE edge_facts ADD COLUMN scope TEXT NOT NULL DEFAULT '';
    CREATE VIRTUAL TABLE edge_facts_fts USING fts5 (
        scope, fact_key, content='edge_facts', content_rowid='rowid'
    );
    CREATE TRIGGER edge_facts_ai AFTER INSERT ON edge_facts BEGIN
        INSERT INTO edge_facts_fts (rowid, scope, fact_key)
        VALUES (new.rowid, new.scope, new.fact_key);
    END;
    CREATE TRIGGER edge_facts_ad AFTER DELETE ON edge_facts BEGIN
        INSERT INTO edge_facts_fts (edge_facts_fts, rowid, scope, fact_key)
        VALUES ('delete', old.rowid, old.scope, old.fact_key);
    END;
    CREATE TRIGGER edge_facts_au AFTER UPDATE ON edge_facts BEGIN
        INSERT INTO edge_facts_fts (edge_facts_fts, rowid, scope, fact_key)
        VALUES ('delete', old.rowid, old.scope, old.fact_key);
        INSERT INTO edge_facts_fts (rowid, scope, fact_key)
        VALUES (new.rowid, new.scope, new.fact_key);
    END;
    """,
    # 8: how many beats each entity of a chat witnessed, kept by the turn handlers: a prompt's
    # transcript window is placed by that count, and COUNT(*) over turn_witnesses walked every
    # beat the entity ever saw (1.5 ms a turn at 10,000 beats).
    """
    CREATE TABLE witness_counts (
        chat_id TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        beats INTEGER NOT NULL,
        PRIMARY KEY (chat_id, entity_id)
    );
    """,
    # 9: each full-text index in two tiers (``_tiered_index``): a search reads the small recent
    # index first and the archive only for what it lacks, and a turn writes only the recent
    # one. One index of every row gained segments (merge levels) as the story grew, and each
    # word of a search seeks in every segment: 0.6 ms a search at 10 beats, 1.5 ms at 10,000,
    # and its merges made commits dearer too. Facts are indexed by ``terms``, each word joined
    # to the edge's scope (``recall.scoped_terms``; filled by the rebuild that follows).
    """
    CREATE TABLE recall_tiers (tbl TEXT PRIMARY KEY, boundary INTEGER NOT NULL);
    ALTER TABLE edge_facts ADD COLUMN terms TEXT NOT NULL DEFAULT '';
    """
    + _tiered_index("memories")
    + _tiered_index("edge_facts"),
    # 10: each full-text index merges its small segments four at a time (FTS5's crisismerge,
    # 16 by default). FTS5 merges by work done, once per 64 pages written, and a turn or a
    # move writes a page or two, so segments piled up to 16 before a merge: the recent
    # memories held 14 at 10,000 beats, the facts' archive 13, and a search seeks every word
    # in every segment (the archive's fact search 0.3 ms, 0.08 ms once merged).
    "".join(
        f"INSERT INTO {fts} ({fts}, rank) VALUES ('crisismerge', {CRISIS_MERGE});\n"
        for table in RECALL_TIERS
        for fts in (f"{table}_fts", f"{table}_fts_recent")
    ),
    # 11: the full-text indexes keep no column sizes (FTS5's ``columnsize=0``): only ranking
    # by bm25 reads them, and recall orders by key. Each indexed row is one write fewer, and a
    # full rebuild's final indexing does a twentieth less work (instructions counted at 100k
    # events). Each index is made again from its rows, without a rebuild of the projections.
    "".join(_sizeless_index(table) for table in RECALL_TIERS),
)

REBUILD_AFTER: frozenset[int] = frozenset({2, 3, 4, 7, 8, 9})
"""Migrations after which the projections are rebuilt from the log (new derived columns)."""

PROJECTION_TABLES: tuple[str, ...] = (
    "characters",
    "yous",
    "assets",
    "chats",
    "containers",
    "scenes",
    "edges",
    "edge_changes",
    "edge_facts",
    "activity_views",
    "memories",
    "turns",
    "turn_witnesses",
    "witness_counts",
    "open_turns",
    "digests",
    "story_threads",
    "rewound_ranges",
    "derived_replaced",
    "world_books",
    "lore_entries",
)
"""Every table ``project()`` rebuilds, in an order safe to clear."""

CHAT_SCOPED_TABLES: tuple[str, ...] = (
    "chats",
    "containers",
    "scenes",
    "edges",
    "edge_changes",
    "edge_facts",
    "activity_views",
    "memories",
    "turns",
    "turn_witnesses",
    "witness_counts",
    "open_turns",
    "digests",
    "story_threads",
    "world_books",
    "lore_entries",
)
"""Tables whose rows belong to one chat (column ``chat_id``, or ``id`` for ``chats``)."""
