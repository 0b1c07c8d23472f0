-- holdless store, schema version 3: values follow Mindful's definitions. Nothing is
-- dropped; what was stored in an old meaning is converted or kept for a recheck.

-- The instant the customer was first called was stored as `actual_callback_time`.
-- Mindful's actualCallbackTime is the wait in seconds (processedAt − createdAt), computed
-- where it is shown from this instant: the column is named for what it holds.
ALTER TABLE callbacks RENAME COLUMN actual_callback_time TO processed_at;

-- estimatePercentAccuracy was a percentage (0–100); it is a fraction (0–1).
UPDATE callbacks SET estimate_accuracy = round(estimate_accuracy / 100.0, 5)
    WHERE estimate_accuracy IS NOT NULL;
UPDATE call_records
    SET record = json_set(record, '$.estimatePercentAccuracy',
        round(json_extract(record, '$.estimatePercentAccuracy') / 100.0, 5))
    WHERE json_type(record, '$.estimatePercentAccuracy') IN ('integer', 'real');

-- wasPunctual was "not later than the tolerance"; it is "within the tolerance, early or
-- late". A launch that was early and marked punctual may now be unpunctual, but the
-- tolerance (call_targets[].punctual_within_secs) is configuration the store does not
-- hold: such rows are listed here, and holdless rechecks them at start-up against the
-- configured call target (rows of call targets no longer configured wait for it).
CREATE TABLE punctuality_recheck (
    kind        TEXT NOT NULL,    -- 'callback' (callbacks.id) or 'record' (call_records.id)
    id          TEXT NOT NULL,
    call_target TEXT NOT NULL,
    early_secs  INTEGER NOT NULL, -- how early the launch was, seconds (> 0)
    PRIMARY KEY (kind, id)
);
INSERT INTO punctuality_recheck (kind, id, call_target, early_secs)
    SELECT 'callback', id, call_target, -punctuality_secs FROM callbacks
    WHERE was_punctual = 1 AND punctuality_secs < 0;
INSERT INTO punctuality_recheck (kind, id, call_target, early_secs)
    SELECT 'record', id, call_target, -json_extract(record, '$.punctuality') FROM call_records
    WHERE json_extract(record, '$.wasPunctual') = 1 AND json_extract(record, '$.punctuality') < 0;
