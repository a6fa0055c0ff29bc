-- The Town domain (GASTOWN-DOMAIN.md section 1): every object is a bead, with satellite tables.
-- Unlike the original (issue #442) the enumerations are CHECKed by the schema as well.
CREATE TABLE beads (
  bead_id TEXT PRIMARY KEY,
  type TEXT NOT NULL CHECK (type IN ('issue','message','escalation','merge_request','convoy','molecule','agent')),
  status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open','in_progress','in_review','closed','failed')),
  title TEXT NOT NULL,
  body TEXT,
  rig_id TEXT,
  parent_bead_id TEXT REFERENCES beads (bead_id),
  assignee_agent_bead_id TEXT,
  priority TEXT NOT NULL DEFAULT 'medium' CHECK (priority IN ('low','medium','high','critical')),
  labels TEXT NOT NULL DEFAULT '[]',
  metadata TEXT NOT NULL DEFAULT '{}',
  dispatch_attempts INTEGER NOT NULL DEFAULT 0,
  last_dispatch_attempt_at TEXT,
  created_by TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  closed_at TEXT
);
CREATE INDEX idx_beads_type_status ON beads (type, status);
CREATE INDEX idx_beads_parent ON beads (parent_bead_id);
CREATE INDEX idx_beads_rig_status ON beads (rig_id, status);
CREATE INDEX idx_beads_assignee ON beads (assignee_agent_bead_id, type, status);

-- History of each bead (status changes, hooks, reviews).
CREATE TABLE bead_events (
  bead_event_id TEXT PRIMARY KEY,
  bead_id TEXT NOT NULL,
  agent_id TEXT,
  event_type TEXT NOT NULL,
  old_value TEXT,
  new_value TEXT,
  metadata TEXT NOT NULL DEFAULT '{}',
  created_at TEXT NOT NULL
);
CREATE INDEX idx_bead_events_bead ON bead_events (bead_id, created_at);
CREATE INDEX idx_bead_events_created ON bead_events (created_at);

-- Agents: a bead of type 'agent' plus this row.
CREATE TABLE agent_metadata (
  bead_id TEXT PRIMARY KEY REFERENCES beads (bead_id),
  role TEXT NOT NULL CHECK (role IN ('polecat','refinery','mayor','witness')),
  name TEXT NOT NULL,
  identity TEXT NOT NULL UNIQUE,
  container_process_id TEXT,
  status TEXT NOT NULL DEFAULT 'idle' CHECK (status IN ('idle','working','stalled','dead','waiting')),
  current_hook_bead_id TEXT REFERENCES beads (bead_id),
  dispatch_attempts INTEGER NOT NULL DEFAULT 0,
  checkpoint TEXT,
  last_activity_at TEXT,
  agent_status_message TEXT,
  agent_status_updated_at TEXT,
  last_event_type TEXT,
  last_event_at TEXT,
  active_tools TEXT NOT NULL DEFAULT '[]',
  stalled_at TEXT
);
CREATE INDEX idx_agent_status ON agent_metadata (status);
CREATE INDEX idx_agent_hook ON agent_metadata (current_hook_bead_id);

-- Merge requests: a bead of type 'merge_request' plus this row.
CREATE TABLE review_metadata (
  bead_id TEXT PRIMARY KEY REFERENCES beads (bead_id),
  branch TEXT NOT NULL,
  target_branch TEXT NOT NULL DEFAULT 'main',
  merge_commit TEXT,
  pr_url TEXT,
  retry_count INTEGER NOT NULL DEFAULT 0,
  auto_merge_ready_since TEXT,
  last_feedback_check_at TEXT
);

-- Convoys: a bead of type 'convoy' plus this row.
CREATE TABLE convoy_metadata (
  bead_id TEXT PRIMARY KEY REFERENCES beads (bead_id),
  total_beads INTEGER NOT NULL DEFAULT 0,
  closed_beads INTEGER NOT NULL DEFAULT 0,
  landed_at TEXT,
  feature_branch TEXT,
  merge_mode TEXT DEFAULT 'review-then-land' CHECK (merge_mode IN ('review-then-land','review-and-merge')),
  staged INTEGER NOT NULL DEFAULT 0
);

-- Escalations: a bead of type 'escalation' plus this row (not touched by the reconciler).
CREATE TABLE escalation_metadata (
  bead_id TEXT PRIMARY KEY REFERENCES beads (bead_id),
  severity TEXT NOT NULL DEFAULT 'medium',
  category TEXT,
  acknowledged INTEGER NOT NULL DEFAULT 0,
  re_escalation_count INTEGER NOT NULL DEFAULT 0,
  acknowledged_at TEXT
);

-- "A blocks-on B" is (bead_id = A, depends_on_bead_id = B, 'blocks').
CREATE TABLE bead_dependencies (
  bead_id TEXT NOT NULL,
  depends_on_bead_id TEXT NOT NULL,
  dependency_type TEXT NOT NULL DEFAULT 'blocks' CHECK (dependency_type IN ('blocks','tracks','parent-child')),
  UNIQUE (bead_id, depends_on_bead_id)
);
CREATE INDEX idx_deps_depends_on ON bead_dependencies (depends_on_bead_id, dependency_type);

CREATE TABLE agent_nudges (
  nudge_id TEXT PRIMARY KEY,
  agent_bead_id TEXT NOT NULL,
  message TEXT NOT NULL,
  mode TEXT NOT NULL DEFAULT 'wait-idle' CHECK (mode IN ('wait-idle','immediate','queue')),
  priority TEXT NOT NULL DEFAULT 'normal' CHECK (priority IN ('normal','urgent')),
  source TEXT NOT NULL DEFAULT 'system',
  created_at TEXT NOT NULL,
  delivered_at TEXT,
  expires_at TEXT
);
CREATE INDEX idx_nudges_pending ON agent_nudges (agent_bead_id, created_at) WHERE delivered_at IS NULL;

CREATE TABLE rigs (
  rig_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  git_url TEXT NOT NULL,
  default_branch TEXT NOT NULL DEFAULT 'main',
  merge_strategy TEXT CHECK (merge_strategy IN ('direct','pr')),
  created_at TEXT NOT NULL
);
