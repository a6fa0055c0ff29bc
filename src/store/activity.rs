//! Whether a town has work in flight (GASTOWN-DOMAIN.md 5.1), one half of what decides between
//! the active and the idle alarm interval; open triage requests, the other, count only while
//! the triage loop can act on them (`tick::activity`).

use crate::sql::{Sql, SqlError};

/// Any agent working or stalled, any idle agent with a hook, any merge request open or in
/// progress, or any pending event.
///
/// The conditions are `CASE` arms, which SQLite tries in order and stops at the first that
/// holds; joined with `OR` it computed every one (~180 us at 10,000 beads where the first arm
/// answers in ~2).
pub fn has_work_in_flight(sql: &dyn Sql) -> Result<bool, SqlError> {
    sql.one(
        "SELECT CASE
           WHEN EXISTS (SELECT 1 FROM agent_metadata WHERE status IN ('working', 'stalled')) THEN 1
           WHEN EXISTS (SELECT 1 FROM agent_metadata
                        WHERE status = 'idle' AND current_hook_bead_id IS NOT NULL) THEN 1
           WHEN EXISTS (SELECT 1 FROM beads
                        WHERE type = 'merge_request' AND status IN ('open', 'in_progress')) THEN 1
           ELSE EXISTS (SELECT 1 FROM town_events WHERE processed_at IS NULL)
         END AS active",
        &[],
    )?
    .bool("active")
}
