-- The day a seminar was cancelled: those invited are told from it.
ALTER TABLE seminars ADD COLUMN cancelled_on TEXT;
