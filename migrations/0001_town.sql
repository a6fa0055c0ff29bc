-- The town itself (one row while the town exists) and its event log.
CREATE TABLE town (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  town_id TEXT NOT NULL,
  owner_user_id TEXT NOT NULL,
  config TEXT NOT NULL DEFAULT '{}',
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  clock_offset_ms INTEGER NOT NULL DEFAULT 0,
  draining INTEGER NOT NULL DEFAULT 0,
  drain_nonce TEXT,
  drain_started_at INTEGER,
  container_instance_id TEXT
);

-- Facts reported to the town, applied by the next tick (GASTOWN-DOMAIN.md 2.1). `rowid` breaks
-- ties between equal `created_at` values so the drain order is total.
CREATE TABLE town_events (
  event_id TEXT PRIMARY KEY,
  event_type TEXT NOT NULL,
  agent_id TEXT,
  bead_id TEXT,
  payload TEXT NOT NULL DEFAULT '{}',
  created_at TEXT NOT NULL,
  processed_at TEXT,
  retry_count INTEGER NOT NULL DEFAULT 0,
  poisoned INTEGER NOT NULL DEFAULT 0,
  last_error TEXT
);
CREATE INDEX idx_town_events_pending ON town_events (created_at) WHERE processed_at IS NULL;
CREATE INDEX idx_town_events_type ON town_events (event_type);

-- Answers already given to requests that carried an Idempotency-Key.
CREATE TABLE idempotency_keys (
  key TEXT PRIMARY KEY,
  request TEXT NOT NULL,
  status INTEGER NOT NULL,
  body TEXT NOT NULL,
  created_at TEXT NOT NULL
);

-- The metrics of recent ticks exactly as written to Analytics Engine (bounded, pruned per tick).
CREATE TABLE tick_metrics (
  tick_id INTEGER PRIMARY KEY AUTOINCREMENT,
  at TEXT NOT NULL,
  point TEXT NOT NULL
);
