-- The authorities a seminar invites (000 Annex H: usually five), whose
-- directors are asked for nominations; recorded before any delegate is.
CREATE TABLE invited_authorities (
    seminar_ref    TEXT NOT NULL REFERENCES seminars(seminar_ref),
    authority_code TEXT NOT NULL REFERENCES authorities(code),
    PRIMARY KEY (seminar_ref, authority_code)
);
CREATE TRIGGER invited_authorities_change AFTER INSERT OR UPDATE OR DELETE ON invited_authorities
    FOR EACH ROW EXECUTE FUNCTION note_record_change('seminar', 'seminar_ref');
