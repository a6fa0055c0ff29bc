-- Finding a rig's oldest idle polecat with an empty hook (every dispatch that needs an agent)
-- went through `idx_agent_status`: every idle agent of the town, hooked or not, each joined to
-- its bead for the rig. The agent's rig is copied onto its metadata row (written with it; the
-- bead stays the source: an insert without it copies it from the bead, a bead moving rigs moves
-- it), so that an index holds exactly the free polecats of each rig. The insert trigger fires
-- only when the row came without a rig, as every extra write is a billed row.
ALTER TABLE agent_metadata ADD COLUMN rig_id TEXT;

UPDATE agent_metadata
   SET rig_id = (SELECT b.rig_id FROM beads b WHERE b.bead_id = agent_metadata.bead_id);

CREATE TRIGGER agent_metadata_rig_on_insert AFTER INSERT ON agent_metadata
WHEN NEW.rig_id IS NULL
BEGIN
  UPDATE agent_metadata
     SET rig_id = (SELECT b.rig_id FROM beads b WHERE b.bead_id = NEW.bead_id)
   WHERE bead_id = NEW.bead_id;
END;

CREATE TRIGGER agent_metadata_rig_on_bead_update AFTER UPDATE OF rig_id ON beads
BEGIN
  UPDATE agent_metadata SET rig_id = NEW.rig_id WHERE bead_id = NEW.bead_id;
END;

CREATE INDEX idx_agent_free_polecats ON agent_metadata (rig_id, status)
  WHERE role = 'polecat' AND current_hook_bead_id IS NULL;
