"""PostgreSQL's numbered schema migrations. Never edit a released one: add the next number.

The same tables and columns as SQLite's (``bot/store/schema.py``; a test holds them equal),
in PostgreSQL's types: ``BIGINT`` for every integer (Discord ids are 64-bit), ``BYTEA`` for
images, and text compared byte by byte (``COLLATE "C"``, as SQLite compares), so both stores
order rows alike. Two parts differ: full-text recall is a GIN index over the memory's scope
token and words (``bot.store.recall``), and the undo journal's triggers are one PL/pgSQL
function (``bot.store.journal`` makes a trigger per table). A change to SQLite's schema gets
its own migration here too.
"""

from __future__ import annotations

T = 'TEXT COLLATE "C"'

MIGRATIONS: tuple[str, ...] = (
    # 1: the schema as SQLite's migrations 1-6 left it (PostgreSQL support began there).
    f"""
    CREATE TABLE event_log (
        id BIGINT PRIMARY KEY,
        kind {T} NOT NULL,
        payload_json {T} NOT NULL,
        chat_id {T},
        created_at {T} NOT NULL
    );
    CREATE INDEX event_log_chat ON event_log (chat_id, id);
    CREATE INDEX event_log_kind ON event_log (kind, id);

    CREATE TABLE characters (
        guild_id BIGINT NOT NULL,
        id {T} NOT NULL,
        name {T} NOT NULL,
        nickname {T} NOT NULL,
        creator_id BIGINT NOT NULL,
        avatar {T} NOT NULL,
        payload_json {T} NOT NULL,
        updated_event_id BIGINT NOT NULL,
        PRIMARY KEY (guild_id, id)
    );
    CREATE TABLE yous (
        guild_id BIGINT NOT NULL,
        owner_id BIGINT NOT NULL,
        name {T} NOT NULL,
        pronouns {T} NOT NULL,
        persona {T} NOT NULL,
        PRIMARY KEY (guild_id, owner_id)
    );
    CREATE TABLE assets (
        sha256 {T} PRIMARY KEY,
        content_type {T} NOT NULL,
        data BYTEA NOT NULL
    );
    CREATE TABLE chats (
        id {T} PRIMARY KEY,
        guild_id BIGINT NOT NULL,
        channel_id BIGINT NOT NULL,
        owner_id BIGINT NOT NULL,
        host_id {T} NOT NULL,
        guest_id {T},
        world_time {T} NOT NULL,
        narrative_anchor {T} NOT NULL,
        weather {T} NOT NULL,
        place {T} NOT NULL,
        status {T} NOT NULL,
        created_event_id BIGINT NOT NULL
    );
    CREATE INDEX chats_channel ON chats (channel_id, status);
    CREATE TABLE containers (
        id BIGINT PRIMARY KEY,
        chat_id {T} NOT NULL,
        name {T} NOT NULL,
        type {T} NOT NULL,
        properties_json {T} NOT NULL
    );
    CREATE TABLE scenes (
        id BIGINT PRIMARY KEY,
        chat_id {T} NOT NULL,
        container_id BIGINT,
        parent_scene_id BIGINT,
        kind {T} NOT NULL,
        present_set_kind {T} NOT NULL,
        participants_json {T} NOT NULL,
        thread_id BIGINT NOT NULL,
        premise {T} NOT NULL,
        started_at {T} NOT NULL,
        closed_at {T},
        status {T} NOT NULL
    );
    CREATE INDEX scenes_chat ON scenes (chat_id, status);
    CREATE INDEX scenes_thread ON scenes (thread_id);
    CREATE TABLE edges (
        chat_id {T} NOT NULL,
        source_id {T} NOT NULL,
        target_id {T} NOT NULL,
        affinity BIGINT NOT NULL DEFAULT 50,
        trust BIGINT NOT NULL DEFAULT 50,
        relationship_summary {T} NOT NULL DEFAULT '',
        summary_seen_at BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (chat_id, source_id, target_id)
    );
    CREATE TABLE edge_changes (
        event_id BIGINT PRIMARY KEY,
        chat_id {T} NOT NULL,
        source_id {T} NOT NULL,
        target_id {T} NOT NULL,
        affinity_delta BIGINT NOT NULL,
        trust_delta BIGINT NOT NULL,
        beat_id BIGINT
    );
    CREATE INDEX edge_changes_pair ON edge_changes (chat_id, source_id, target_id, event_id);
    CREATE TABLE edge_facts (
        chat_id {T} NOT NULL,
        source_id {T} NOT NULL,
        target_id {T} NOT NULL,
        fact_key {T} NOT NULL,
        fact {T} NOT NULL,
        event_id BIGINT NOT NULL,
        beat_id BIGINT,
        scene_id BIGINT,
        PRIMARY KEY (chat_id, source_id, target_id, fact_key)
    );
    CREATE INDEX edge_facts_recent ON edge_facts (chat_id, source_id, target_id, event_id);
    CREATE TABLE activity_views (
        chat_id {T} NOT NULL,
        viewer_id {T} NOT NULL,
        entity_id {T} NOT NULL,
        posture {T} NOT NULL,
        action_json {T} NOT NULL,
        attention {T} NOT NULL,
        holding_json {T} NOT NULL,
        status_json {T} NOT NULL,
        seen_at BIGINT NOT NULL,
        PRIMARY KEY (chat_id, viewer_id, entity_id)
    );
    CREATE TABLE memories (
        id BIGINT PRIMARY KEY,
        owner_id {T} NOT NULL,
        chat_id {T} NOT NULL,
        scene_id BIGINT NOT NULL,
        beat_id BIGINT,
        witness_you BIGINT NOT NULL,
        witness_host BIGINT NOT NULL,
        witness_guest BIGINT NOT NULL,
        text {T} NOT NULL,
        pov_summary {T} NOT NULL,
        scope {T} NOT NULL DEFAULT ''
    );
    CREATE INDEX memories_owner ON memories (chat_id, owner_id, id);
    CREATE INDEX memories_scene ON memories (scene_id, owner_id);
    CREATE INDEX memories_recall ON memories USING gin (
        to_tsvector('simple', scope || ' ' || text || ' ' || pov_summary)
    );
    CREATE TABLE turns (
        id BIGINT PRIMARY KEY,
        chat_id {T} NOT NULL,
        scene_id BIGINT NOT NULL,
        meanwhile_scene_id BIGINT,
        role {T} NOT NULL,
        speaker_id {T} NOT NULL,
        text {T} NOT NULL,
        segments_json {T} NOT NULL,
        present_set_kind {T} NOT NULL,
        cancelled BIGINT NOT NULL,
        interrupted BIGINT NOT NULL,
        turn_started_id BIGINT,
        author_id BIGINT NOT NULL,
        message_ids_json {T} NOT NULL,
        answers_turn_id BIGINT
    );
    CREATE INDEX turns_chat ON turns (chat_id, id);
    CREATE INDEX turns_scene ON turns (scene_id, id);
    CREATE INDEX turns_answers ON turns (answers_turn_id);
    CREATE INDEX turns_started ON turns (turn_started_id);
    CREATE TABLE turn_witnesses (
        turn_id BIGINT NOT NULL,
        chat_id {T} NOT NULL,
        entity_id {T} NOT NULL,
        PRIMARY KEY (entity_id, chat_id, turn_id)
    );
    CREATE INDEX turn_witnesses_turn ON turn_witnesses (turn_id);
    CREATE TABLE open_turns (
        turn_started_id BIGINT PRIMARY KEY,
        chat_id {T} NOT NULL,
        payload_json {T} NOT NULL
    );
    CREATE TABLE digests (
        id BIGINT PRIMARY KEY,
        chat_id {T} NOT NULL,
        meanwhile_scene_id BIGINT NOT NULL,
        text {T} NOT NULL
    );
    CREATE TABLE story_threads (
        id BIGINT PRIMARY KEY,
        chat_id {T} NOT NULL,
        scene_id BIGINT NOT NULL,
        title {T} NOT NULL,
        summary {T} NOT NULL
    );
    CREATE TABLE rewound_ranges (
        event_id BIGINT PRIMARY KEY,
        chat_id {T} NOT NULL,
        after_event_id BIGINT NOT NULL,
        reason {T} NOT NULL
    );
    CREATE TABLE derived_replaced (
        event_id BIGINT PRIMARY KEY,
        chat_id {T} NOT NULL,
        beat_id BIGINT,
        scene_id BIGINT
    );
    CREATE INDEX derived_replaced_chat ON derived_replaced (chat_id, event_id);
    CREATE TABLE stream_checkpoints (
        turn_started_id BIGINT PRIMARY KEY,
        chat_id {T} NOT NULL,
        text {T} NOT NULL
    );
    CREATE TABLE world_books (
        chat_id {T} PRIMARY KEY,
        name {T} NOT NULL,
        settings_json {T} NOT NULL
    );
    CREATE TABLE lore_entries (
        chat_id {T} NOT NULL,
        number BIGINT NOT NULL,
        entry_json {T} NOT NULL,
        event_id BIGINT NOT NULL,
        PRIMARY KEY (chat_id, number)
    );

    CREATE TABLE undo_journal (
        seq BIGSERIAL PRIMARY KEY,
        chat_id {T} NOT NULL,
        event_id BIGINT NOT NULL,
        tbl {T} NOT NULL,
        op {T} NOT NULL,
        key_json {T} NOT NULL,
        old_json {T}
    );
    CREATE INDEX undo_journal_chat ON undo_journal (chat_id, event_id);
    CREATE TABLE undo_state (
        id BIGINT PRIMARY KEY CHECK (id = 1),
        recording BIGINT NOT NULL,
        event_id BIGINT NOT NULL,
        since BIGINT NOT NULL
    );
    INSERT INTO undo_state (id, recording, event_id, since) VALUES (1, 0, 0, 0);
    CREATE TABLE undo_since (
        chat_id {T} PRIMARY KEY,
        since BIGINT NOT NULL
    );
    -- one row in the journal per row a journalled event changes; the arguments are the
    -- table's chat column, then its key columns (bot/store/journal.py makes the triggers)
    CREATE FUNCTION storybot_undo_record() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        state undo_state%ROWTYPE;
        changed jsonb;
        keyed jsonb;
    BEGIN
        SELECT * INTO state FROM undo_state WHERE id = 1;
        IF state.recording = 0 THEN
            RETURN NULL;
        END IF;
        IF TG_OP = 'INSERT' THEN changed := to_jsonb(NEW); ELSE changed := to_jsonb(OLD); END IF;
        IF TG_OP = 'DELETE' THEN keyed := changed; ELSE keyed := to_jsonb(NEW); END IF;
        INSERT INTO undo_journal (chat_id, event_id, tbl, op, key_json, old_json)
        VALUES (
            changed ->> TG_ARGV[0],
            state.event_id,
            TG_TABLE_NAME,
            lower(left(TG_OP, 1)),
            (SELECT jsonb_agg(keyed -> k ORDER BY n)
             FROM unnest(TG_ARGV[1:]) WITH ORDINALITY AS key(k, n))::text,
            CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE changed::text END
        );
        RETURN NULL;
    END
    $$;
    """,
    # 2: SQLite's 7 and 8: facts matching a line through a full-text index scoped to their
    # edge (a GIN index over the scope token and the fact's words, as recall does for
    # memories), and how many beats each entity witnessed, kept by the turn handlers.
    f"""
    ALTER TABLE edge_facts ADD COLUMN scope {T} NOT NULL DEFAULT '';
    CREATE INDEX edge_facts_match ON edge_facts
        USING gin (to_tsvector('simple', scope || ' ' || fact_key));
    CREATE TABLE witness_counts (
        chat_id {T} NOT NULL,
        entity_id {T} NOT NULL,
        beats BIGINT NOT NULL,
        PRIMARY KEY (chat_id, entity_id)
    );
    """,
    # 3: SQLite's 9: a fact's words each joined to its edge's scope (SQLite's full-text index
    # reads them; here they are kept so both stores hold the same rows, the GIN index of
    # migration 2 still serves the search).
    f"""
    ALTER TABLE edge_facts ADD COLUMN terms {T} NOT NULL DEFAULT '';
    """,
)

REBUILD_AFTER: frozenset[int] = frozenset({2, 3})
"""Migrations after which the projections are rebuilt from the log (new derived columns)."""
