-- holdless store on PostgreSQL, schema version 2: several nodes on one database.
-- Every node announces itself in `nodes` (a heartbeat); one of them leads (`leader`, a
-- lease renewed by the leader's heartbeat). Only the leader runs the callback engine and
-- writes callbacks; the others forward to it. Times are the database's own clock (Unix
-- milliseconds), so the nodes' clocks never decide who leads.

CREATE FUNCTION holdless_now_ms() RETURNS BIGINT
    AS $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT $$
    LANGUAGE SQL VOLATILE;

CREATE TABLE nodes (
    id           TEXT PRIMARY KEY,
    instance     BIGINT NOT NULL,      -- this run of the node (random at start-up)
    admin        TEXT,                 -- where the others forward to (host:port)
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    wants_lead   BOOLEAN NOT NULL      -- willing to lead (false while draining)
);

-- At most one row: the node instance that leads, until expires_at.
CREATE TABLE leader (
    one        BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
    node       TEXT NOT NULL,
    instance   BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- The node instance dialling a callback in progress: a new leader leaves it alone while
-- that instance lives (a draining node finishing its calls) and ends its attempt when
-- the instance is gone.
ALTER TABLE callbacks ADD COLUMN launched_by BIGINT;
