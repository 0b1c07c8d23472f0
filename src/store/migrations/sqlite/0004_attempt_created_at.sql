-- When the current attempt of a callback was created: the previous attempt's end for a
-- retry (a call record's createdAt), NULL for a first attempt (its createdAt is the
-- registration or the inbound call).
ALTER TABLE callbacks ADD COLUMN retry_created_at INTEGER;
