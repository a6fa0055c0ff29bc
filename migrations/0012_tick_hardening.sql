-- Hardening of the tick (issue 20).

-- When a failed event may be tried again (epoch ms); NULL = due now. The drain skips an event
-- until then, so a transient failure gets time to clear before the event is poisoned.
ALTER TABLE town_events ADD COLUMN next_attempt_at INTEGER;

-- When the tick last asked the container about this agent (epoch ms); NULL = never. The
-- observation asks a bounded number of agents per tick, the least recently observed first, so
-- every working agent is seen within a bounded number of ticks.
ALTER TABLE agent_metadata ADD COLUMN last_observed_at INTEGER;
