-- holdless store, schema version 2: call records (historical data API) and the inbound
-- call kept with a callback registered over SIP. Times are Unix milliseconds (UTC).

-- One row per callback attempt and per inbound call that ended without a callback.
CREATE TABLE call_records (
    id          TEXT PRIMARY KEY,
    org         TEXT NOT NULL,
    call_target TEXT NOT NULL,       -- '' when the call matched no call target
    ended_at    INTEGER NOT NULL,
    record      TEXT NOT NULL        -- the record's JSON, as the API serves it
);
-- One organization's UTC hour, in (ended_at, id) order: keyset pages.
CREATE INDEX call_records_org_ended ON call_records (org, ended_at, id);

-- The inbound call that registered a callback (JSON), for its first attempt's record.
ALTER TABLE callbacks ADD COLUMN inbound TEXT;
