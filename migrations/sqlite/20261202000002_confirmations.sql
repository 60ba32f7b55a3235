-- Who has confirmed a held email, one row per role asked (000 §28: the lead
-- inspector and the senior HMI both). The email goes once every role has.
CREATE TABLE confirmations (
    outbox_id    INTEGER NOT NULL REFERENCES outbox (id),
    role         TEXT NOT NULL,
    confirmed_by TEXT NOT NULL,
    confirmed_at TEXT NOT NULL,
    PRIMARY KEY (outbox_id, role)
);
