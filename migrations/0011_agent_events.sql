-- What an agent's session reports as it works (the container's fire-and-forget agent events):
-- kept per agent, the newest few hundred, and shown with the agent's bead on the debug view.
CREATE TABLE agent_events (
  event_id INTEGER PRIMARY KEY,
  agent_id TEXT NOT NULL,
  event_type TEXT NOT NULL,
  data TEXT NOT NULL,
  created_at TEXT NOT NULL
);
-- Ordered by event_id within an agent (an index's rows end with the row id).
CREATE INDEX idx_agent_events_agent ON agent_events (agent_id);
