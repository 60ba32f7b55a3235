-- Each pass marks overdue pending rows missed; this keeps that a range scan.
CREATE INDEX outbox_limit ON outbox (status, send_until);
