-- The daemons running against this database, each with its last heartbeat.
CREATE TABLE instances (
    name       TEXT PRIMARY KEY NOT NULL,
    host       TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    seen_at    TEXT NOT NULL
);
