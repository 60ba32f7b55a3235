-- The case records keydates plans from.
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
    closed               INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE visits (
    case_ref             TEXT NOT NULL REFERENCES cases(case_ref),
    visit_no             INTEGER NOT NULL,
    starts_on            TEXT NOT NULL,
    lead_inspector_email TEXT NOT NULL,
    audited_cases        TEXT NOT NULL DEFAULT '',
    cancelled            INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (case_ref, visit_no)
);

CREATE TABLE seminars (
    seminar_ref TEXT PRIMARY KEY NOT NULL,
    title       TEXT NOT NULL,
    region      TEXT NOT NULL,
    held_on     TEXT NOT NULL,
    venue       TEXT NOT NULL,
    confirmed   INTEGER NOT NULL DEFAULT 0,
    cancelled   INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE delegates (
    seminar_ref    TEXT NOT NULL REFERENCES seminars(seminar_ref),
    authority_code TEXT NOT NULL REFERENCES authorities(code),
    name           TEXT NOT NULL,
    email          TEXT NOT NULL,
    PRIMARY KEY (seminar_ref, email)
);
