-- One row per planned email occurrence. The key makes planning idempotent;
-- the status column is the only place that decides whether an email goes.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    key              TEXT NOT NULL UNIQUE,
    rule_id          TEXT NOT NULL,
    subject          TEXT NOT NULL,
    authority        TEXT,
    delegate         TEXT,
    anchor_on        TEXT NOT NULL,
    due_on           TEXT NOT NULL,
    send_at          TEXT NOT NULL,   -- UTC, RFC 3339 with Z: sorts as text
    send_until       TEXT NOT NULL,   -- UTC; past this an unsent row is missed
    recipients       TEXT NOT NULL,   -- JSON {to, cc, reply_to}
    status           TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'cancelled', 'missed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT,
    first_attempt_at TEXT,
    message_id       TEXT,
    claimed_at       TEXT,
    claimed_by       TEXT,
    server_reply     TEXT,
    last_error       TEXT,
    cancelled_by     TEXT CHECK (cancelled_by IN ('plan', 'admin')),
    sent_at          TEXT,
    reported_at      TEXT,
    forced           INTEGER NOT NULL DEFAULT 0,  -- an admin said retry: no time limit
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);

CREATE INDEX outbox_due ON outbox (status, send_at);

-- Small facts the daemon keeps between passes (last pass, last digest).
CREATE TABLE daemon_state (
    name  TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
