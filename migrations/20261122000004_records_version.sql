-- A counter bumped by every change to a record, so that a pass in which
-- nothing changed can skip planning.
CREATE TABLE records_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO records_version (id, version) VALUES (1, 0);

CREATE TRIGGER authorities_insert AFTER INSERT ON authorities BEGIN UPDATE records_version SET version = version + 1; END;
CREATE TRIGGER authorities_update AFTER UPDATE ON authorities BEGIN UPDATE records_version SET version = version + 1; END;
CREATE TRIGGER authorities_delete AFTER DELETE ON authorities BEGIN UPDATE records_version SET version = version + 1; END;
CREATE TRIGGER cases_insert AFTER INSERT ON cases BEGIN UPDATE records_version SET version = version + 1; END;
CREATE TRIGGER cases_update AFTER UPDATE ON cases BEGIN UPDATE records_version SET version = version + 1; END;
CREATE TRIGGER cases_delete AFTER DELETE ON cases BEGIN UPDATE records_version SET version = version + 1; END;
CREATE TRIGGER visits_insert AFTER INSERT ON visits BEGIN UPDATE records_version SET version = version + 1; END;
CREATE TRIGGER visits_update AFTER UPDATE ON visits BEGIN UPDATE records_version SET version = version + 1; END;
CREATE TRIGGER visits_delete AFTER DELETE ON visits BEGIN UPDATE records_version SET version = version + 1; END;
CREATE TRIGGER seminars_insert AFTER INSERT ON seminars BEGIN UPDATE records_version SET version = version + 1; END;
CREATE TRIGGER seminars_update AFTER UPDATE ON seminars BEGIN UPDATE records_version SET version = version + 1; END;
CREATE TRIGGER seminars_delete AFTER DELETE ON seminars BEGIN UPDATE records_version SET version = version + 1; END;
CREATE TRIGGER delegates_insert AFTER INSERT ON delegates BEGIN UPDATE records_version SET version = version + 1; END;
CREATE TRIGGER delegates_update AFTER UPDATE ON delegates BEGIN UPDATE records_version SET version = version + 1; END;
CREATE TRIGGER delegates_delete AFTER DELETE ON delegates BEGIN UPDATE records_version SET version = version + 1; END;
