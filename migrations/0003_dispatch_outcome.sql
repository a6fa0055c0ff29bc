-- What the reconciler needs beyond the original schema (GASTOWN-DOMAIN.md 3.2 and 10).

-- Why the bead's most recent dispatch attempt failed; NULL when it succeeded or none was made.
-- The circuit breaker counts only these beads (the original counted every recently dispatched
-- bead, so healthy in-flight work could open it). Set and cleared by the dispatch side effect.
ALTER TABLE beads ADD COLUMN last_dispatch_error TEXT;

-- When the mayor was told that the circuit breaker opened; NULL while it is closed. Set by
-- applying the "breaker opened" notice and cleared by the "breaker closed" one, so the notice is
-- sent once per opening (the original repeated it every tick).
ALTER TABLE town ADD COLUMN breaker_notified_at TEXT;

-- The snapshot reads live (non-terminal) beads, recent failed dispatches and the reconciler's
-- recent nudges without scanning the history, which only grows.
CREATE INDEX idx_beads_status ON beads (status);
CREATE INDEX idx_beads_dispatch_failed ON beads (last_dispatch_attempt_at)
  WHERE last_dispatch_error IS NOT NULL;
CREATE INDEX idx_nudges_source ON agent_nudges (source, created_at);
