-- The next number of a `Polecat-N` name once the name pool is used up, so naming a new polecat
-- is one read instead of a probe per candidate.
ALTER TABLE town ADD COLUMN polecat_seq INTEGER NOT NULL DEFAULT 21;
