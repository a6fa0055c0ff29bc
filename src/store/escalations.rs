//! Queries of `escalation_metadata`, the satellite of `escalation` beads.

use crate::params;
use crate::sql::{Sql, SqlError};

pub fn insert(
    sql: &dyn Sql,
    bead_id: &str,
    severity: &str,
    category: &str,
) -> Result<(), SqlError> {
    sql.execute(
        "INSERT INTO escalation_metadata (bead_id, severity, category) VALUES (?, ?, ?)",
        &params![bead_id, severity, category],
    )?;
    Ok(())
}
