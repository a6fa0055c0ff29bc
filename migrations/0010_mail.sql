-- Mail between agents (the plugin's gt_mail_send / gt_mail_check): sent to one agent, shown by
-- prime while undelivered, marked delivered when the agent checks its mail.
CREATE TABLE mail (
  mail_id TEXT PRIMARY KEY,
  from_agent_id TEXT NOT NULL,
  to_agent_id TEXT NOT NULL,
  subject TEXT NOT NULL,
  body TEXT NOT NULL,
  created_at TEXT NOT NULL,
  delivered_at TEXT
);
CREATE INDEX idx_mail_undelivered ON mail (to_agent_id, created_at) WHERE delivered_at IS NULL;
