-- How many times a seminar's day or venue has changed: the SEQUENCE of its
-- calendar invitation (RFC 5546), so that a new one replaces the old.
ALTER TABLE seminars ADD COLUMN sequence INTEGER NOT NULL DEFAULT 0;
