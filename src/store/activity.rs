//! Whether a town has work in flight (GASTOWN-DOMAIN.md 5.1): it decides between the active and
//! the idle alarm interval.

use crate::sql::{Sql, SqlError};

/// Any agent working or stalled, any idle agent with a hook, any merge request open or in
/// progress, any open triage request, or any pending event.
///
/// The conditions are `CASE` arms, which SQLite tries in order and stops at the first that
/// holds; joined with `OR` it computed every one, the scan of open issues' labels included
/// (~180 us at 10,000 beads where the first arm answers in ~2).
pub fn has_active_work(sql: &dyn Sql) -> Result<bool, SqlError> {
    sql.one(
        "SELECT CASE
           WHEN EXISTS (SELECT 1 FROM agent_metadata WHERE status IN ('working', 'stalled')) THEN 1
           WHEN EXISTS (SELECT 1 FROM agent_metadata
                        WHERE status = 'idle' AND current_hook_bead_id IS NOT NULL) THEN 1
           WHEN EXISTS (SELECT 1 FROM beads
                        WHERE type = 'merge_request' AND status IN ('open', 'in_progress')) THEN 1
           WHEN EXISTS (SELECT 1 FROM town_events WHERE processed_at IS NULL) THEN 1
           ELSE EXISTS (SELECT 1 FROM beads WHERE type = 'issue' AND status = 'open'
                        AND labels LIKE '%\"gt:triage-request\"%')
         END AS active",
        &[],
    )?
    .bool("active")
}
