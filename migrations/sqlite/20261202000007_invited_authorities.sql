-- The authorities a seminar invites (000 Annex H: usually five), whose
-- directors are asked for nominations; recorded before any delegate is.
CREATE TABLE invited_authorities (
    seminar_ref    TEXT NOT NULL REFERENCES seminars(seminar_ref),
    authority_code TEXT NOT NULL REFERENCES authorities(code),
    PRIMARY KEY (seminar_ref, authority_code)
);
CREATE TRIGGER invited_authorities_insert AFTER INSERT ON invited_authorities BEGIN INSERT INTO record_changes (kind, key) VALUES ('seminar', NEW.seminar_ref); END;
CREATE TRIGGER invited_authorities_update AFTER UPDATE ON invited_authorities BEGIN INSERT INTO record_changes (kind, key) VALUES ('seminar', NEW.seminar_ref); END;
CREATE TRIGGER invited_authorities_delete AFTER DELETE ON invited_authorities BEGIN INSERT INTO record_changes (kind, key) VALUES ('seminar', OLD.seminar_ref); END;
