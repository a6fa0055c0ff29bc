//! Queries of the `rigs` registry.

use super::rows::{self, RIG_COLUMNS};
use crate::params;
use crate::sql::{Sql, SqlError};
use crate::vocabulary::model::Rig;
use crate::vocabulary::time::{iso, Millis};

pub fn insert(
    sql: &dyn Sql,
    rig_id: &str,
    name: &str,
    git_url: &str,
    default_branch: &str,
    now: Millis,
) -> Result<(), SqlError> {
    sql.execute(
        "INSERT INTO rigs (rig_id, name, git_url, default_branch, created_at)
         VALUES (?, ?, ?, ?, ?)",
        &params![rig_id, name, git_url, default_branch, iso(now)],
    )?;
    Ok(())
}

pub fn get(sql: &dyn Sql, rig_id: &str) -> Result<Option<Rig>, SqlError> {
    sql.first(
        &format!("SELECT {RIG_COLUMNS} FROM rigs g WHERE g.rig_id = ?"),
        &params![rig_id],
    )?
    .map(|r| rows::rig(&r))
    .transpose()
}

/// Every rig, oldest first.
pub fn list(sql: &dyn Sql) -> Result<Vec<Rig>, SqlError> {
    sql.query(
        &format!("SELECT {RIG_COLUMNS} FROM rigs g ORDER BY g.created_at, g.rowid"),
        &[],
    )?
    .into_iter()
    .map(|r| rows::rig(&r))
    .collect()
}
