-- Who each email reached, who the relay refused, and how its sends ended:
-- one refused Cc does not stop the others, a retry does not send twice to
-- those already reached, and an email that breaks the connection every
-- time stops being retried.
ALTER TABLE outbox ADD COLUMN delivered_to TEXT;   -- JSON [address], reached
ALTER TABLE outbox ADD COLUMN refused TEXT;        -- JSON [{address, reply}], refused for good
ALTER TABLE outbox ADD COLUMN broken_sends INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN relay_fault INTEGER NOT NULL DEFAULT 0;  -- 1: waiting for the relay
UPDATE outbox SET relay_fault = 1 WHERE status = 'pending' AND last_error LIKE 'mail relay:%';
