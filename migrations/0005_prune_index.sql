-- The tick prunes processed events older than 7 days; without this index that DELETE scanned
-- the whole event log every tick (scripts/bench: 10,011 rows read to return 2).
CREATE INDEX idx_town_events_processed ON town_events (created_at) WHERE processed_at IS NOT NULL;
