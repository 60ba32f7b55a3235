-- A seminar's own timetable, as "TIME SESSION" pairs separated by ";"
-- (NULL: none recorded; the config's default applies).
ALTER TABLE seminars ADD COLUMN timetable TEXT;
