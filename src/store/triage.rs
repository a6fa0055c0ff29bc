//! Queries of triage requests: `issue` beads labelled `gt:triage-request` that are still open.

use crate::params;
use crate::sql::{Sql, SqlError};

/// Matches the label inside the JSON `labels` text (`TRIAGE_LABEL_LIKE`).
const OPEN_REQUESTS: &str = "FROM beads b WHERE b.type = 'issue'
     AND b.labels LIKE '%\"gt:triage-request\"%' AND b.status NOT IN ('closed', 'failed')";

/// Whether an open request of `triage_type` exists for the agent.
pub fn open_exists(sql: &dyn Sql, triage_type: &str, agent_id: &str) -> Result<bool, SqlError> {
    Ok(sql
        .first(
            &format!(
                "SELECT 1 AS x {OPEN_REQUESTS}
                 AND json_extract(b.metadata, '$.triage_type') = ?
                 AND json_extract(b.metadata, '$.agent_bead_id') = ? LIMIT 1"
            ),
            &params![triage_type, agent_id],
        )?
        .is_some())
}

/// Open requests town-wide whose type is not `escalation`.
pub fn open_non_escalation(sql: &dyn Sql) -> Result<i64, SqlError> {
    sql.one(
        &format!(
            "SELECT COUNT(*) AS n {OPEN_REQUESTS}
             AND COALESCE(json_extract(b.metadata, '$.triage_type'), '') <> 'escalation'"
        ),
        &[],
    )?
    .int("n")
}
