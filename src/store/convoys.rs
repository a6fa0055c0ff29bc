//! Queries of convoys: a `convoy` bead plus its `convoy_metadata` row.

use super::rows::{self, CONVOY_COLUMNS};
use crate::params;
use crate::sql::{Sql, SqlError};
use crate::vocabulary::model::{Convoy, MergeMode};
use crate::vocabulary::time::{iso, Millis};

pub fn insert(
    sql: &dyn Sql,
    bead_id: &str,
    total_beads: i64,
    feature_branch: &str,
    merge_mode: MergeMode,
    staged: bool,
) -> Result<(), SqlError> {
    sql.execute(
        "INSERT INTO convoy_metadata (bead_id, total_beads, closed_beads, feature_branch,
                                      merge_mode, staged)
         VALUES (?, ?, 0, ?, ?, ?)",
        &params![
            bead_id,
            total_beads,
            feature_branch,
            merge_mode.as_str(),
            staged
        ],
    )?;
    Ok(())
}

pub fn get(sql: &dyn Sql, bead_id: &str) -> Result<Option<Convoy>, SqlError> {
    sql.first(
        &format!("SELECT {CONVOY_COLUMNS} FROM convoy_metadata c WHERE c.bead_id = ?"),
        &params![bead_id],
    )?
    .map(|r| rows::convoy(&r))
    .transpose()
}

pub fn set_staged(sql: &dyn Sql, bead_id: &str, staged: bool) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE convoy_metadata SET staged = ? WHERE bead_id = ?",
        &params![staged, bead_id],
    )?;
    Ok(())
}

pub fn set_closed_beads(sql: &dyn Sql, bead_id: &str, closed: i64) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE convoy_metadata SET closed_beads = ? WHERE bead_id = ?",
        &params![closed, bead_id],
    )?;
    Ok(())
}

pub fn set_landed(sql: &dyn Sql, bead_id: &str, now: Millis) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE convoy_metadata SET landed_at = ? WHERE bead_id = ?",
        &params![iso(now), bead_id],
    )?;
    Ok(())
}

/// Ids of the convoys that `bead_id` is a member of (`tracks` edges to a convoy bead).
pub fn tracking(sql: &dyn Sql, bead_id: &str) -> Result<Vec<String>, SqlError> {
    sql.query(
        "SELECT c.bead_id FROM bead_dependencies d
         JOIN convoy_metadata c ON c.bead_id = d.depends_on_bead_id
         WHERE d.bead_id = ? AND d.dependency_type = 'tracks' ORDER BY d.rowid",
        &params![bead_id],
    )?
    .into_iter()
    .map(|r| r.text("bead_id"))
    .collect()
}

/// Members of the convoy that are done: issue beads tracking it that are closed or failed
/// and have no open or in-progress merge request tracking them (GASTOWN-DOMAIN.md 1.4).
pub fn done_members(sql: &dyn Sql, convoy_id: &str) -> Result<i64, SqlError> {
    sql.one(
        "SELECT COUNT(*) AS n FROM bead_dependencies d
         JOIN beads b ON b.bead_id = d.bead_id
         WHERE d.depends_on_bead_id = ? AND d.dependency_type = 'tracks' AND b.type = 'issue'
           AND b.status IN ('closed', 'failed')
           AND NOT EXISTS (
             SELECT 1 FROM bead_dependencies m JOIN beads mr ON mr.bead_id = m.bead_id
             WHERE m.depends_on_bead_id = b.bead_id AND m.dependency_type = 'tracks'
               AND mr.type = 'merge_request' AND mr.status IN ('open', 'in_progress'))",
        &params![convoy_id],
    )?
    .int("n")
}
