-- holdless store on PostgreSQL, schema version 1: the SQLite schema at its version 4, in
-- PostgreSQL's types. Times are Unix milliseconds (UTC) in BIGINT, as on SQLite, so both
-- stores hold the same values. Values have Mindful's meanings from the start: nothing to
-- recheck (SQLite's punctuality_recheck has no counterpart).

CREATE TABLE callbacks (
    id                   TEXT PRIMARY KEY,
    seq                  BIGINT NOT NULL UNIQUE,
    organization         TEXT NOT NULL,
    call_target          TEXT NOT NULL,
    widget               TEXT,
    number               TEXT NOT NULL,
    kind                 TEXT NOT NULL,
    status               TEXT NOT NULL,
    source               TEXT NOT NULL,
    channel              TEXT,
    user_data            TEXT NOT NULL,   -- JSON object
    sip_headers          TEXT NOT NULL,   -- JSON array of [name, value]
    requested_at         BIGINT NOT NULL,
    estimated_for        BIGINT NOT NULL,
    ecbt_secs            BIGINT NOT NULL,
    due_at               BIGINT NOT NULL,
    appointment          BIGINT,
    attempts             BIGINT NOT NULL,
    failed_busy          BIGINT NOT NULL,
    failed_no_answer     BIGINT NOT NULL,
    failed_voicemail     BIGINT NOT NULL,
    failed_error         BIGINT NOT NULL,
    last_result          TEXT,
    launched_at          BIGINT,
    agent_connected_at   BIGINT,
    processed_at         BIGINT,
    punctuality_secs     BIGINT,
    was_punctual         BOOLEAN,
    estimate_accuracy    DOUBLE PRECISION,
    finished_at          BIGINT,
    inbound              TEXT,            -- JSON: the inbound call that registered it
    retry_created_at     BIGINT
);
CREATE INDEX callbacks_active ON callbacks (status)
    WHERE status IN ('pending', 'waitlisted', 'in_progress');
CREATE INDEX callbacks_number ON callbacks (number);
CREATE INDEX callbacks_requested_at ON callbacks (requested_at);

CREATE TABLE attempts (
    callback_id        TEXT NOT NULL,
    attempt            BIGINT NOT NULL,
    call_target        TEXT NOT NULL,
    launched_at        BIGINT NOT NULL,
    agent_connected_at BIGINT,
    ended_at           BIGINT NOT NULL,
    result             TEXT NOT NULL,
    PRIMARY KEY (callback_id, attempt)
);
CREATE INDEX attempts_ended_at ON attempts (ended_at);

CREATE TABLE refusals (
    id          BIGSERIAL PRIMARY KEY,
    at          BIGINT NOT NULL,
    call_target TEXT NOT NULL,
    widget      TEXT,
    number      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    source      TEXT NOT NULL
);
CREATE INDEX refusals_at ON refusals (at);

CREATE TABLE estimators (
    call_target TEXT PRIMARY KEY,
    state       TEXT NOT NULL
);

-- COLLATE "C": keyset pages order ids bytewise, as SQLite does, whatever the locale.
CREATE TABLE call_records (
    id          TEXT COLLATE "C" PRIMARY KEY,
    org         TEXT NOT NULL,
    call_target TEXT NOT NULL,
    ended_at    BIGINT NOT NULL,
    record      TEXT NOT NULL
);
CREATE INDEX call_records_org_ended ON call_records (org, ended_at, id);
