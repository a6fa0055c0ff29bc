//! Queries of `bead_dependencies`: the edges between beads and the walks the domain needs.

use super::rows::{self, BEAD_COLUMNS, DEPENDENCY_COLUMNS};
use crate::params;
use crate::sql::{Sql, SqlError};
use crate::vocabulary::model::{Bead, BeadType, Dependency, DependencyType};

/// Adds `bead_id -> depends_on` unless an edge between them (in that direction) exists;
/// returns whether it was added.
pub fn insert(
    sql: &dyn Sql,
    bead_id: &str,
    depends_on: &str,
    kind: DependencyType,
) -> Result<bool, SqlError> {
    Ok(sql.execute(
        "INSERT INTO bead_dependencies (bead_id, depends_on_bead_id, dependency_type)
         VALUES (?, ?, ?) ON CONFLICT (bead_id, depends_on_bead_id) DO NOTHING",
        &params![bead_id, depends_on, kind.as_str()],
    )? > 0)
}

/// The edge `bead_id -> depends_on`, if any.
pub fn get(sql: &dyn Sql, bead_id: &str, depends_on: &str) -> Result<Option<Dependency>, SqlError> {
    sql.first(
        &format!(
            "SELECT {DEPENDENCY_COLUMNS} FROM bead_dependencies d
             WHERE d.bead_id = ? AND d.depends_on_bead_id = ?"
        ),
        &params![bead_id, depends_on],
    )?
    .map(|r| rows::dependency(&r))
    .transpose()
}

/// Every edge that starts or ends at `bead_id`.
pub fn touching(sql: &dyn Sql, bead_id: &str) -> Result<Vec<Dependency>, SqlError> {
    sql.query(
        &format!(
            "SELECT {DEPENDENCY_COLUMNS} FROM bead_dependencies d
             WHERE d.bead_id = ? OR d.depends_on_bead_id = ? ORDER BY d.rowid"
        ),
        &params![bead_id, bead_id],
    )?
    .into_iter()
    .map(|r| rows::dependency(&r))
    .collect()
}

/// The beads `bead_id` points at with edges of `kind`, of type `target_type` when given.
pub fn targets(
    sql: &dyn Sql,
    bead_id: &str,
    kind: DependencyType,
    target_type: Option<BeadType>,
) -> Result<Vec<Bead>, SqlError> {
    sql.query(
        &format!(
            "SELECT {BEAD_COLUMNS} FROM bead_dependencies d
             JOIN beads b ON b.bead_id = d.depends_on_bead_id
             WHERE d.bead_id = ? AND d.dependency_type = ? AND (? IS NULL OR b.type = ?)
             ORDER BY d.rowid"
        ),
        &params![
            bead_id,
            kind.as_str(),
            target_type.map(|t| t.as_str()),
            target_type.map(|t| t.as_str())
        ],
    )?
    .into_iter()
    .map(|r| rows::bead(&r))
    .collect()
}

/// The beads that point at `bead_id` with edges of `kind`, of type `source_type` when given.
pub fn sources(
    sql: &dyn Sql,
    bead_id: &str,
    kind: DependencyType,
    source_type: Option<BeadType>,
) -> Result<Vec<Bead>, SqlError> {
    sql.query(
        &format!(
            "SELECT {BEAD_COLUMNS} FROM bead_dependencies d
             JOIN beads b ON b.bead_id = d.bead_id
             WHERE d.depends_on_bead_id = ? AND d.dependency_type = ? AND (? IS NULL OR b.type = ?)
             ORDER BY b.created_at, b.rowid"
        ),
        &params![
            bead_id,
            kind.as_str(),
            source_type.map(|t| t.as_str()),
            source_type.map(|t| t.as_str())
        ],
    )?
    .into_iter()
    .map(|r| rows::bead(&r))
    .collect()
}

/// Whether `from` reaches `to` by following `blocks` edges (`from` waits on ... on `to`).
pub fn blocks_path(sql: &dyn Sql, from: &str, to: &str) -> Result<bool, SqlError> {
    Ok(sql
        .first(
            "WITH RECURSIVE reach(id) AS (
               SELECT ?
               UNION
               SELECT d.depends_on_bead_id FROM bead_dependencies d JOIN reach r ON d.bead_id = r.id
               WHERE d.dependency_type = 'blocks')
             SELECT 1 AS hit FROM reach WHERE id = ?",
            &params![from, to],
        )?
        .is_some())
}
