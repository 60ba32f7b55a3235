-- The whole schema as SQLite reaches it through its migrations, in
-- PostgreSQL's words. Dates and times stay text (ISO 8601 / RFC 3339 with Z)
-- so they sort the same on both backends; flags stay integers.
CREATE TABLE authorities (
    code              TEXT PRIMARY KEY NOT NULL,
    name              TEXT NOT NULL,
    region            TEXT NOT NULL,
    dcs_name          TEXT NOT NULL,
    dcs_email         TEXT NOT NULL,
    coordinator_email TEXT
);

CREATE TABLE cases (
    case_ref             TEXT PRIMARY KEY NOT NULL,
    authority_code       TEXT NOT NULL REFERENCES authorities(code),
    judgement            TEXT NOT NULL CHECK (judgement IN ('requires_improvement', 'inadequate')),
    report_received_on   TEXT NOT NULL,
    plan_received_on     TEXT,
    lead_inspector_email TEXT NOT NULL,
    dfe_link_email       TEXT,
    closed               BIGINT NOT NULL DEFAULT 0,
    planning_event_on    TEXT
);

CREATE TABLE visits (
    case_ref             TEXT NOT NULL REFERENCES cases(case_ref),
    visit_no             BIGINT NOT NULL,
    starts_on            TEXT NOT NULL,
    lead_inspector_email TEXT NOT NULL,
    audited_cases        TEXT NOT NULL DEFAULT '',
    cancelled            BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (case_ref, visit_no)
);

CREATE TABLE seminars (
    seminar_ref TEXT PRIMARY KEY NOT NULL,
    title       TEXT NOT NULL,
    region      TEXT NOT NULL,
    held_on     TEXT NOT NULL,
    venue       TEXT NOT NULL,
    confirmed   BIGINT NOT NULL DEFAULT 0,
    cancelled   BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE delegates (
    seminar_ref    TEXT NOT NULL REFERENCES seminars(seminar_ref),
    authority_code TEXT NOT NULL REFERENCES authorities(code),
    name           TEXT NOT NULL,
    email          TEXT NOT NULL,
    PRIMARY KEY (seminar_ref, email)
);

CREATE TABLE conversations (
    seminar_ref    TEXT NOT NULL REFERENCES seminars(seminar_ref),
    authority_code TEXT NOT NULL REFERENCES authorities(code),
    held_on        TEXT NOT NULL,
    PRIMARY KEY (seminar_ref, authority_code)
);

CREATE TABLE outbox (
    id               BIGSERIAL PRIMARY KEY,
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
    attempts         BIGINT NOT NULL DEFAULT 0,
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
    forced           BIGINT NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    subject_type     TEXT NOT NULL DEFAULT 'case' CHECK (subject_type IN ('case', 'visit', 'seminar')),
    confirmed_by     TEXT
);
CREATE INDEX outbox_due ON outbox (status, send_at);
CREATE INDEX outbox_limit ON outbox (status, send_until);
-- text_pattern_ops: reconciling a case finds its visits' rows by prefix.
CREATE INDEX outbox_subject ON outbox (subject text_pattern_ops);

CREATE TABLE daemon_state (
    name  TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE record_changes (
    seq  BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('authority', 'case', 'seminar')),
    key  TEXT NOT NULL
);

-- Each record change is noted under what is re-planned: visits under their
-- case; delegates and conversations under their seminar.
CREATE FUNCTION note_record_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind TEXT := TG_ARGV[0];
    col  TEXT := TG_ARGV[1];
    new_key TEXT;
    old_key TEXT;
BEGIN
    IF TG_OP <> 'DELETE' THEN
        new_key := to_jsonb(NEW) ->> col;
        INSERT INTO record_changes (kind, key) VALUES (kind, new_key);
    END IF;
    IF TG_OP <> 'INSERT' THEN
        old_key := to_jsonb(OLD) ->> col;
        IF TG_OP = 'DELETE' OR old_key IS DISTINCT FROM new_key THEN
            INSERT INTO record_changes (kind, key) VALUES (kind, old_key);
        END IF;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER authorities_change AFTER INSERT OR UPDATE OR DELETE ON authorities
    FOR EACH ROW EXECUTE FUNCTION note_record_change('authority', 'code');
CREATE TRIGGER cases_change AFTER INSERT OR UPDATE OR DELETE ON cases
    FOR EACH ROW EXECUTE FUNCTION note_record_change('case', 'case_ref');
CREATE TRIGGER visits_change AFTER INSERT OR UPDATE OR DELETE ON visits
    FOR EACH ROW EXECUTE FUNCTION note_record_change('case', 'case_ref');
CREATE TRIGGER seminars_change AFTER INSERT OR UPDATE OR DELETE ON seminars
    FOR EACH ROW EXECUTE FUNCTION note_record_change('seminar', 'seminar_ref');
CREATE TRIGGER delegates_change AFTER INSERT OR UPDATE OR DELETE ON delegates
    FOR EACH ROW EXECUTE FUNCTION note_record_change('seminar', 'seminar_ref');
CREATE TRIGGER conversations_change AFTER INSERT OR UPDATE OR DELETE ON conversations
    FOR EACH ROW EXECUTE FUNCTION note_record_change('seminar', 'seminar_ref');

-- Other instances hear of a change at once instead of at their next poll.
CREATE FUNCTION announce_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('keydates_changes', '');
    RETURN NULL;
END $$;
CREATE TRIGGER record_changes_announce AFTER INSERT ON record_changes
    FOR EACH STATEMENT EXECUTE FUNCTION announce_change();

CREATE TABLE audit_log (
    id      BIGSERIAL PRIMARY KEY,
    at      TEXT NOT NULL,
    "user"  TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_target ON audit_log (target);

CREATE TABLE attempts (
    id        BIGSERIAL PRIMARY KEY,
    outbox_id BIGINT NOT NULL,
    at        TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    detail    TEXT
);
CREATE INDEX attempts_outbox ON attempts (outbox_id);

CREATE FUNCTION note_attempt() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO attempts (outbox_id, at, outcome, detail) VALUES (
        NEW.id,
        NEW.updated_at,
        CASE NEW.status WHEN 'pending' THEN 'to be retried' ELSE NEW.status END,
        CASE NEW.status WHEN 'sent' THEN NEW.server_reply ELSE NEW.last_error END
    );
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_attempt AFTER UPDATE OF status ON outbox
    FOR EACH ROW WHEN (OLD.status = 'sending' AND NEW.status <> 'sending')
    EXECUTE FUNCTION note_attempt();

-- The daemons running against this database, each with its last heartbeat.
CREATE TABLE instances (
    name       TEXT PRIMARY KEY NOT NULL,
    host       TEXT NOT NULL,
    pid        BIGINT NOT NULL,
    started_at TEXT NOT NULL,
    seen_at    TEXT NOT NULL
);
