-- The day keydates first knew a seminar confirmed: its invitations go from
-- that day. Seminars already confirmed keep the day their invitations were
-- planned for (the last one allowed): their held_on stands in, never earlier.
ALTER TABLE seminars ADD COLUMN confirmed_on TEXT;
UPDATE seminars SET confirmed_on = held_on WHERE confirmed = 1;
