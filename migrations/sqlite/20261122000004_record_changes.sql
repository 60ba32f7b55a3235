-- Which records changed since the last plan, so a pass re-plans only those.
-- Visits and delegates are noted under their case and seminar, which are
-- re-planned whole; an authority's change reaches its cases and seminars.
CREATE TABLE record_changes (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('authority', 'case', 'seminar')),
    key  TEXT NOT NULL
);

CREATE TRIGGER authorities_insert AFTER INSERT ON authorities BEGIN INSERT INTO record_changes (kind, key) VALUES ('authority', NEW.code); END;
CREATE TRIGGER authorities_update AFTER UPDATE ON authorities BEGIN INSERT INTO record_changes (kind, key) VALUES ('authority', NEW.code); END;
CREATE TRIGGER authorities_delete AFTER DELETE ON authorities BEGIN INSERT INTO record_changes (kind, key) VALUES ('authority', OLD.code); END;
CREATE TRIGGER cases_insert AFTER INSERT ON cases BEGIN INSERT INTO record_changes (kind, key) VALUES ('case', NEW.case_ref); END;
CREATE TRIGGER cases_update AFTER UPDATE ON cases BEGIN INSERT INTO record_changes (kind, key) VALUES ('case', NEW.case_ref); END;
CREATE TRIGGER cases_delete AFTER DELETE ON cases BEGIN INSERT INTO record_changes (kind, key) VALUES ('case', OLD.case_ref); END;
CREATE TRIGGER visits_insert AFTER INSERT ON visits BEGIN INSERT INTO record_changes (kind, key) VALUES ('case', NEW.case_ref); END;
CREATE TRIGGER visits_update AFTER UPDATE ON visits BEGIN INSERT INTO record_changes (kind, key) VALUES ('case', NEW.case_ref); END;
CREATE TRIGGER visits_delete AFTER DELETE ON visits BEGIN INSERT INTO record_changes (kind, key) VALUES ('case', OLD.case_ref); END;
CREATE TRIGGER seminars_insert AFTER INSERT ON seminars BEGIN INSERT INTO record_changes (kind, key) VALUES ('seminar', NEW.seminar_ref); END;
CREATE TRIGGER seminars_update AFTER UPDATE ON seminars BEGIN INSERT INTO record_changes (kind, key) VALUES ('seminar', NEW.seminar_ref); END;
CREATE TRIGGER seminars_delete AFTER DELETE ON seminars BEGIN INSERT INTO record_changes (kind, key) VALUES ('seminar', OLD.seminar_ref); END;
CREATE TRIGGER delegates_insert AFTER INSERT ON delegates BEGIN INSERT INTO record_changes (kind, key) VALUES ('seminar', NEW.seminar_ref); END;
CREATE TRIGGER delegates_update AFTER UPDATE ON delegates BEGIN INSERT INTO record_changes (kind, key) VALUES ('seminar', NEW.seminar_ref); INSERT INTO record_changes (kind, key) VALUES ('seminar', OLD.seminar_ref); END;
CREATE TRIGGER delegates_delete AFTER DELETE ON delegates BEGIN INSERT INTO record_changes (kind, key) VALUES ('seminar', OLD.seminar_ref); END;
