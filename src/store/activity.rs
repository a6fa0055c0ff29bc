//! Whether a town has work in flight (GASTOWN-DOMAIN.md 5.1): it decides between the active and
//! the idle alarm interval.

use crate::sql::{Sql, SqlError};

/// Any agent working or stalled, any idle agent with a hook, any merge request open or in
/// progress, any open triage request, or any pending event.
pub fn has_active_work(sql: &dyn Sql) -> Result<bool, SqlError> {
    sql.one(
        "SELECT
           EXISTS (SELECT 1 FROM agent_metadata WHERE status IN ('working', 'stalled'))
        OR EXISTS (SELECT 1 FROM agent_metadata WHERE status = 'idle' AND current_hook_bead_id IS NOT NULL)
        OR EXISTS (SELECT 1 FROM beads WHERE type = 'merge_request' AND status IN ('open', 'in_progress'))
        OR EXISTS (SELECT 1 FROM beads WHERE type = 'issue' AND status = 'open'
                     AND labels LIKE '%\"gt:triage-request\"%')
        OR EXISTS (SELECT 1 FROM town_events WHERE processed_at IS NULL) AS active",
        &[],
    )?
    .bool("active")
}
