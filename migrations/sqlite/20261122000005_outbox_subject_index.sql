-- Reconciling one changed case or seminar finds its rows by subject.
CREATE INDEX outbox_subject ON outbox (subject);
