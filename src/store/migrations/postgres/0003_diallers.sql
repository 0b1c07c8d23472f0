-- holdless store on PostgreSQL, schema version 3: the leader spreads callback launches
-- over the live nodes that dial (`[calls] dial_callbacks`, and not draining).
ALTER TABLE nodes ADD COLUMN dials BOOLEAN NOT NULL DEFAULT false;
