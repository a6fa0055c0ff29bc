//! Queries of triage requests: `issue` beads labelled `gt:triage-request` that are still open.

use super::rows::{self, BEAD_COLUMNS};
use crate::params;
use crate::sql::{Sql, SqlError};
use crate::vocabulary::model::Bead;

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

/// Requests waiting for a decision: open (they are assigned to their agent but never hooked,
/// so they stay open until resolved). Read through the (type, status) index.
const PENDING: &str = "FROM beads b WHERE b.type = 'issue' AND b.status = 'open'
     AND b.labels LIKE '%\"gt:triage-request\"%'";

/// The pending requests, oldest first, at most `limit`, and how many there are in all.
pub fn pending(sql: &dyn Sql, limit: u32) -> Result<(Vec<Bead>, i64), SqlError> {
    let total = sql
        .one(&format!("SELECT COUNT(*) AS n {PENDING}"), &[])?
        .int("n")?;
    if total == 0 || limit == 0 {
        return Ok((Vec::new(), total));
    }
    let listed = sql
        .query(
            &format!("SELECT {BEAD_COLUMNS} {PENDING} ORDER BY b.created_at, b.bead_id LIMIT ?"),
            &params![limit],
        )?
        .into_iter()
        .map(|r| rows::bead(&r))
        .collect::<Result<_, _>>()?;
    Ok((listed, total))
}

/// The patrol's current triage batch (`gt:triage`, created by `patrol`): one still open or in
/// progress, else the newest that failed at or after `failed_since`. The statuses are one `IN`
/// so that the read stays on `idx_beads_type_status` (an `OR` of two status conditions read
/// every issue of the town, closed history included).
pub fn current_batch(sql: &dyn Sql, failed_since: &str) -> Result<Option<Bead>, SqlError> {
    sql.first(
        &format!(
            "SELECT {BEAD_COLUMNS} FROM beads b
             WHERE b.type = 'issue' AND b.status IN ('open', 'in_progress', 'failed')
               AND (b.status <> 'failed' OR b.updated_at >= ?)
               AND b.created_by = 'patrol' AND b.labels LIKE '%\"gt:triage\"%'
             ORDER BY b.status = 'failed', b.updated_at DESC LIMIT 1"
        ),
        &params![failed_since],
    )?
    .map(|r| rows::bead(&r))
    .transpose()
}
