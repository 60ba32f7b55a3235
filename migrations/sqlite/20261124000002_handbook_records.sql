-- The planning event's agreed date (000 §21, 001 §14), recorded once agreed.
ALTER TABLE cases ADD COLUMN planning_event_on TEXT;

-- The six-month conversation between the senior HMI and an authority's DCS
-- after a seminar, as it actually took place (000 §38).
CREATE TABLE conversations (
    seminar_ref    TEXT NOT NULL REFERENCES seminars(seminar_ref),
    authority_code TEXT NOT NULL REFERENCES authorities(code),
    held_on        TEXT NOT NULL,
    PRIMARY KEY (seminar_ref, authority_code)
);
CREATE TRIGGER conversations_insert AFTER INSERT ON conversations BEGIN INSERT INTO record_changes (kind, key) VALUES ('seminar', NEW.seminar_ref); END;
CREATE TRIGGER conversations_update AFTER UPDATE ON conversations BEGIN INSERT INTO record_changes (kind, key) VALUES ('seminar', NEW.seminar_ref); END;
CREATE TRIGGER conversations_delete AFTER DELETE ON conversations BEGIN INSERT INTO record_changes (kind, key) VALUES ('seminar', OLD.seminar_ref); END;

-- An email held until someone confirms it may go (the plan chase, 000 §28)
-- waits as 'awaiting_confirmation'. SQLite cannot change a CHECK in place,
-- so the outbox is rebuilt with the same rows.
CREATE TABLE outbox_new (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    key              TEXT NOT NULL UNIQUE,
    rule_id          TEXT NOT NULL,
    subject          TEXT NOT NULL,
    authority        TEXT,
    delegate         TEXT,
    anchor_on        TEXT NOT NULL,
    due_on           TEXT NOT NULL,
    send_at          TEXT NOT NULL,
    send_until       TEXT NOT NULL,
    recipients       TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'awaiting_confirmation', 'sending', 'sent', 'failed', 'cancelled', 'missed')),
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
    forced           INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    subject_type     TEXT NOT NULL DEFAULT 'case' CHECK (subject_type IN ('case', 'visit', 'seminar')),
    confirmed_by     TEXT
);
INSERT INTO outbox_new (id, key, rule_id, subject, authority, delegate, anchor_on, due_on, send_at,
    send_until, recipients, status, attempts, next_attempt_at, first_attempt_at, message_id,
    claimed_at, claimed_by, server_reply, last_error, cancelled_by, sent_at, reported_at, forced,
    created_at, updated_at, subject_type)
SELECT id, key, rule_id, subject, authority, delegate, anchor_on, due_on, send_at,
    send_until, recipients, status, attempts, next_attempt_at, first_attempt_at, message_id,
    claimed_at, claimed_by, server_reply, last_error, cancelled_by, sent_at, reported_at, forced,
    created_at, updated_at, subject_type
FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (status, send_at);
CREATE INDEX outbox_limit ON outbox (status, send_until);
CREATE INDEX outbox_subject ON outbox (subject);
