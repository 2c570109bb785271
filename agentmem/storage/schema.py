"""The SQLite schema of a memory directory. SQLite is the source of truth.

Bump :data:`SCHEMA_VERSION` with every change and add the step to
:data:`MIGRATIONS`; a store written by a newer agentmem refuses to open.
"""

import sqlite3

SCHEMA_VERSION = 7

# Only archived events are in it: the entity and time filters read it to drop them without visiting the wide
# events rows (2-3x faster than a join when an entity has thousands of events).
ARCHIVED_INDEX = "CREATE INDEX IF NOT EXISTS events_archived ON events(rid) WHERE archived=1;\n"
# Events with a camera pose, by pose: the planner finds the last frame shot from a shot's exact pose without
# scanning every frame at the location.
CAMERA_INDEX = "CREATE INDEX IF NOT EXISTS events_camera ON events(camera, t_start) WHERE camera IS NOT NULL;\n"

DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS entities (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    merged_into TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS entities_merged ON entities(merged_into);

CREATE TABLE IF NOT EXISTS aliases (
    entity_id TEXT NOT NULL,
    alias TEXT NOT NULL,
    norm TEXT NOT NULL,
    PRIMARY KEY (entity_id, norm)
);
CREATE INDEX IF NOT EXISTS aliases_norm ON aliases(norm);

CREATE TABLE IF NOT EXISTS attributes (
    id INTEGER PRIMARY KEY,
    entity_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    t_from REAL NOT NULL,
    t_to REAL,
    source TEXT
);
CREATE INDEX IF NOT EXISTS attributes_entity ON attributes(entity_id, key, t_from);

CREATE TABLE IF NOT EXISTS entity_vectors (
    id INTEGER PRIMARY KEY,
    entity_id TEXT NOT NULL,
    modality TEXT NOT NULL,
    vec BLOB NOT NULL,
    source TEXT NOT NULL,
    t REAL
);
CREATE INDEX IF NOT EXISTS entity_vectors_entity ON entity_vectors(entity_id, modality);

CREATE TABLE IF NOT EXISTS media (
    id INTEGER PRIMARY KEY,
    owner TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    path TEXT,
    t REAL,
    caption TEXT,
    kind TEXT NOT NULL,
    vec BLOB
);
CREATE INDEX IF NOT EXISTS media_owner ON media(owner, owner_id);

CREATE TABLE IF NOT EXISTS events (
    rid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    t_start REAL NOT NULL,
    t_end REAL NOT NULL,
    text TEXT NOT NULL,
    search_text TEXT NOT NULL,
    location TEXT,
    camera TEXT,
    provenance TEXT NOT NULL,
    importance REAL NOT NULL,
    grp TEXT,
    ingested_at REAL NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0,
    vec BLOB
);
CREATE INDEX IF NOT EXISTS events_t ON events(t_start);
CREATE INDEX IF NOT EXISTS events_grp ON events(grp, t_start);
{ARCHIVED_INDEX}
CREATE TABLE IF NOT EXISTS event_entities (
    entity_id TEXT NOT NULL,
    t_start REAL NOT NULL,
    rid INTEGER NOT NULL,
    t_end REAL NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (entity_id, t_start, rid, role)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS event_entities_rid ON event_entities(rid);

CREATE VIRTUAL TABLE IF NOT EXISTS events_fts USING fts5(
    search_text, content='events', content_rowid='rid', tokenize='porter unicode61'
);

CREATE TABLE IF NOT EXISTS groups (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE VIRTUAL TABLE IF NOT EXISTS window_fts USING fts5(doc, tokenize='porter unicode61');
CREATE VIRTUAL TABLE IF NOT EXISTS group_fts USING fts5(doc, tokenize='porter unicode61');

{OUTBOX}
CREATE TABLE IF NOT EXISTS relations (
    id INTEGER PRIMARY KEY,
    subject TEXT NOT NULL,
    predicate TEXT NOT NULL,
    object TEXT NOT NULL,
    t_from REAL NOT NULL,
    t_to REAL,
    weight REAL NOT NULL,
    evidence TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS relations_subject ON relations(subject, predicate);
CREATE INDEX IF NOT EXISTS relations_object ON relations(object);

CREATE TABLE IF NOT EXISTS merges (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    reason TEXT NOT NULL,
    score REAL NOT NULL,
    at REAL NOT NULL,
    undone_at REAL
);
"""

# Version 2: the relation graph and its compression (package ``graph``). Event nodes and the
# participates_in / located_at / next edges are read from the tables above; these hold the rest.
GRAPH_DDL = """
CREATE TABLE IF NOT EXISTS graph_nodes (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    level INTEGER NOT NULL,
    label TEXT NOT NULL,
    t_start REAL,
    t_end REAL,
    summary TEXT NOT NULL DEFAULT '',
    vec BLOB,
    data TEXT NOT NULL DEFAULT '{}',
    parent TEXT,
    archived INTEGER NOT NULL DEFAULT 0,
    seq INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS graph_nodes_type ON graph_nodes(type, archived, t_start);
CREATE INDEX IF NOT EXISTS graph_nodes_parent ON graph_nodes(parent);

CREATE TABLE IF NOT EXISTS graph_edges (
    id INTEGER PRIMARY KEY,
    src TEXT NOT NULL,
    dst TEXT NOT NULL,
    type TEXT NOT NULL,
    predicate TEXT NOT NULL DEFAULT '',
    t_from REAL NOT NULL,
    t_to REAL,
    weight REAL NOT NULL,
    evidence TEXT NOT NULL DEFAULT '[]',
    t_last REAL NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0,
    seq INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS graph_edges_key ON graph_edges(src, type, predicate, dst, t_from);
CREATE INDEX IF NOT EXISTS graph_edges_dst ON graph_edges(dst, type);

CREATE TABLE IF NOT EXISTS graph_event_episode (
    rid INTEGER PRIMARY KEY,
    episode TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS graph_event_episode_ep ON graph_event_episode(episode);

CREATE TABLE IF NOT EXISTS graph_archive (
    id INTEGER PRIMARY KEY,
    run INTEGER NOT NULL,
    kind TEXT NOT NULL,
    ref TEXT NOT NULL,
    payload TEXT NOT NULL DEFAULT '{}',
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS graph_archive_run ON graph_archive(run, kind);
CREATE INDEX IF NOT EXISTS graph_archive_ref ON graph_archive(kind, ref);

CREATE TABLE IF NOT EXISTS graph_runs (
    id INTEGER PRIMARY KEY,
    started_at REAL NOT NULL,
    finished_at REAL,
    steps TEXT NOT NULL DEFAULT '[]',
    policy TEXT NOT NULL DEFAULT '{}',
    report TEXT NOT NULL DEFAULT '{}',
    restored_at REAL
);
"""

# AUTOINCREMENT: a sequence number is never reused once its row is acknowledged, so a writer that read a batch can
# never acknowledge a row that another writer queued later under the same number (version 4).
OUTBOX = """CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL,
    collection TEXT NOT NULL,
    ref INTEGER NOT NULL
);
"""
OUTBOX_V4 = (
    OUTBOX.replace("outbox (", "outbox_v4 (")
    + "INSERT INTO outbox_v4(seq, op, collection, ref) SELECT seq, op, collection, ref FROM outbox;\n"
    "DROP TABLE outbox;\nALTER TABLE outbox_v4 RENAME TO outbox;\n"
)

# Posed frames (pixels by path) and checkpoints of the static voxel map (version 5).
FRAMES_DDL = """
CREATE TABLE IF NOT EXISTS frames (
    fid INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    t REAL NOT NULL,
    c2w BLOB NOT NULL,
    intrinsics TEXT NOT NULL,
    rgb_path TEXT NOT NULL,
    depth_path TEXT,
    depth_scale REAL NOT NULL DEFAULT 1.0,
    mask_path TEXT,
    source TEXT NOT NULL DEFAULT '{}',
    archived INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS frames_t ON frames(t);
CREATE TABLE IF NOT EXISTS map_arrays (name TEXT PRIMARY KEY, dtype TEXT NOT NULL, shape TEXT NOT NULL, data BLOB);
"""

# Per frame, written with it: how far it sees through each cell of a coarse grid (float16 bytes; see
# agentmem.spatial.frames.reach_of), and the 3D position of each entity its instance map shows (version 6).
FRAMES_V6 = """
CREATE TABLE IF NOT EXISTS frame_reach (fid INTEGER PRIMARY KEY REFERENCES frames(fid), data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS entity_positions (
    fid INTEGER NOT NULL REFERENCES frames(fid),
    entity TEXT NOT NULL,
    t REAL NOT NULL,
    x REAL NOT NULL,
    y REAL NOT NULL,
    z REAL NOT NULL,
    pixels INTEGER NOT NULL,
    PRIMARY KEY (fid, entity)
);
CREATE INDEX IF NOT EXISTS entity_positions_t ON entity_positions(entity, t);
"""

DDL = (
    DDL.replace("{ARCHIVED_INDEX}", ARCHIVED_INDEX + CAMERA_INDEX).replace("{OUTBOX}", OUTBOX)
    + GRAPH_DDL
    + FRAMES_DDL
    + FRAMES_V6
)

MIGRATIONS: dict[int, str] = {
    2: GRAPH_DDL,
    3: ARCHIVED_INDEX + CAMERA_INDEX,
    4: OUTBOX_V4,
    5: FRAMES_DDL,
    6: FRAMES_V6,
    # Version 7 changes no table: it rewrites stored file paths (owned relative to the memory folder, referenced
    # absolute) in Python, by agentmem.storage.paths.migrate_paths (see Store._init_schema).
    7: "",
}


def sql_statements(script: str) -> list[str]:
    """Split an SQL script into complete statements.

    Examples
    --------
    >>> sql_statements("CREATE TABLE a(x); CREATE TABLE b(y TEXT DEFAULT ';');")
    ['CREATE TABLE a(x);', "CREATE TABLE b(y TEXT DEFAULT ';');"]
    """
    out, cur = [], ""
    for piece in script.split(";"):
        cur += piece + ";"
        if sqlite3.complete_statement(cur):
            if cur.strip(" \n\t;"):
                out.append(cur.strip())
            cur = ""
    return out
