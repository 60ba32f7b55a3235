-- The type of record each outbox row is about, so a subject is read back as
-- what it is (a case, a visit of a case, or a seminar) instead of guessed.
ALTER TABLE outbox ADD COLUMN subject_type TEXT NOT NULL DEFAULT 'case'
    CHECK (subject_type IN ('case', 'visit', 'seminar'));

UPDATE outbox SET subject_type = CASE
    WHEN delegate IS NOT NULL OR subject IN (SELECT seminar_ref FROM seminars) THEN 'seminar'
    WHEN instr(subject, '#') > 0 THEN 'visit'
    ELSE 'case'
END;
