-- holdless store, schema version 1. Times are Unix milliseconds (UTC).

CREATE TABLE callbacks (
    id                   TEXT PRIMARY KEY,
    seq                  INTEGER NOT NULL UNIQUE,
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
    requested_at         INTEGER NOT NULL,
    estimated_for        INTEGER NOT NULL,
    ecbt_secs            INTEGER NOT NULL,
    due_at               INTEGER NOT NULL,
    appointment          INTEGER,
    attempts             INTEGER NOT NULL,
    failed_busy          INTEGER NOT NULL,
    failed_no_answer     INTEGER NOT NULL,
    failed_voicemail     INTEGER NOT NULL,
    failed_error         INTEGER NOT NULL,
    last_result          TEXT,
    launched_at          INTEGER,
    agent_connected_at   INTEGER,
    actual_callback_time INTEGER,
    punctuality_secs     INTEGER,
    was_punctual         INTEGER,
    estimate_accuracy    REAL,
    finished_at          INTEGER
);

-- Start-up loads only the active ones.
CREATE INDEX callbacks_active ON callbacks (status)
    WHERE status IN ('pending', 'waitlisted', 'in_progress');
CREATE INDEX callbacks_number ON callbacks (number);
CREATE INDEX callbacks_requested_at ON callbacks (requested_at);

-- One row per dialling attempt (historical reporting).
CREATE TABLE attempts (
    callback_id        TEXT NOT NULL,
    attempt            INTEGER NOT NULL,
    call_target        TEXT NOT NULL,
    launched_at        INTEGER NOT NULL,
    agent_connected_at INTEGER,
    ended_at           INTEGER NOT NULL,
    result             TEXT NOT NULL,
    PRIMARY KEY (callback_id, attempt)
);
CREATE INDEX attempts_ended_at ON attempts (ended_at);

-- Refused registrations, each with its outcome.
CREATE TABLE refusals (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    call_target TEXT NOT NULL,
    widget      TEXT,
    number      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    source      TEXT NOT NULL
);
CREATE INDEX refusals_at ON refusals (at);

-- Learned ECBT state per call target (JSON).
CREATE TABLE estimators (
    call_target TEXT PRIMARY KEY,
    state       TEXT NOT NULL
);
