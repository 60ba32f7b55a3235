-- Each send's outcome, kept as the email's history: when, what happened,
-- and the server's reply or the error. Written by the database itself when
-- a claimed row leaves 'sending', so no outcome goes unrecorded.
CREATE TABLE attempts (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    outbox_id INTEGER NOT NULL,
    at        TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    detail    TEXT
);
CREATE INDEX attempts_outbox ON attempts (outbox_id);
CREATE TRIGGER outbox_attempt AFTER UPDATE OF status ON outbox
WHEN OLD.status = 'sending' AND NEW.status <> 'sending'
BEGIN
    INSERT INTO attempts (outbox_id, at, outcome, detail) VALUES (
        NEW.id,
        NEW.updated_at,
        CASE NEW.status WHEN 'pending' THEN 'to be retried' ELSE NEW.status END,
        CASE NEW.status WHEN 'sent' THEN NEW.server_reply ELSE NEW.last_error END
    );
END;
