-- A rig's agents in registration order, for finding its oldest idle polecat with an empty hook
-- (every dispatch that needs an agent). Through `idx_agent_status` that lookup walked every idle
-- agent of the town, hooked or not, and sorted them: at 10,000 beads a fifth of the tick.
CREATE INDEX idx_beads_agents_of_rig ON beads (rig_id, created_at) WHERE type = 'agent';
