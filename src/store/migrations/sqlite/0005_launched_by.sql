-- holdless store, schema version 5: the node instance dialling a callback in progress
-- (several nodes share a PostgreSQL store; on SQLite, one node alone, it stays NULL).
ALTER TABLE callbacks ADD COLUMN launched_by INTEGER;
