//! Queries of `escalation_metadata`, the satellite of `escalation` beads.

use super::page::{After, Page, PageQuery};
use crate::params;
use crate::sql::{Row, Sql, SqlError};
use crate::vocabulary::time::{iso, Millis};

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

/// An escalation as the people routes and the re-escalation see it: its bead's title, rig and
/// creation time with its metadata row.
#[derive(Debug, Clone, PartialEq)]
pub struct Escalation {
    pub bead_id: String,
    pub title: String,
    pub body: Option<String>,
    pub rig_id: Option<String>,
    pub status: String,
    pub created_at: String,
    pub severity: String,
    pub category: Option<String>,
    pub acknowledged: bool,
    pub acknowledged_at: Option<String>,
    pub re_escalation_count: i64,
}

const COLUMNS: &str = "b.bead_id, b.title, b.body, b.rig_id, b.status, b.created_at, \
     e.severity, e.category, e.acknowledged, e.acknowledged_at, e.re_escalation_count";
const FROM: &str = "escalation_metadata e JOIN beads b ON b.bead_id = e.bead_id";

fn escalation(row: &Row) -> Result<Escalation, SqlError> {
    Ok(Escalation {
        bead_id: row.text("bead_id")?,
        title: row.text("title")?,
        body: row.opt_text("body")?,
        rig_id: row.opt_text("rig_id")?,
        status: row.text("status")?,
        created_at: row.text("created_at")?,
        severity: row.text("severity")?,
        category: row.opt_text("category")?,
        acknowledged: row.bool("acknowledged")?,
        acknowledged_at: row.opt_text("acknowledged_at")?,
        re_escalation_count: row.int("re_escalation_count")?,
    })
}

pub fn get(sql: &dyn Sql, bead_id: &str) -> Result<Option<Escalation>, SqlError> {
    sql.first(
        &format!("SELECT {COLUMNS} FROM {FROM} WHERE e.bead_id = ?"),
        &params![bead_id],
    )?
    .map(|r| escalation(&r))
    .transpose()
}

/// A page of escalations in `(created_at, bead_id)` order, optionally only the unacknowledged.
pub fn page(
    sql: &dyn Sql,
    which: &PageQuery,
    unacknowledged_only: bool,
) -> Result<Page<Escalation>, SqlError> {
    let (after, mut args, tail) = which.sql("b.created_at", "b.bead_id");
    args.push(i64::from(unacknowledged_only).into());
    let found = sql
        .query(
            &format!("SELECT {COLUMNS} FROM {FROM} WHERE {after} AND (? = 0 OR e.acknowledged = 0) {tail}"),
            &args,
        )?
        .into_iter()
        .map(|r| escalation(&r))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(which.page(found, |e| After {
        created_at: e.created_at.clone(),
        id: e.bead_id.clone(),
    }))
}

/// Unacknowledged escalations bumped fewer than `max_bumps` times, oldest first.
pub fn unacknowledged(sql: &dyn Sql, max_bumps: i64) -> Result<Vec<Escalation>, SqlError> {
    sql.query(
        &format!(
            "SELECT {COLUMNS} FROM {FROM}
             WHERE e.acknowledged = 0 AND e.re_escalation_count < ?
             ORDER BY b.created_at, b.bead_id"
        ),
        &params![max_bumps],
    )?
    .into_iter()
    .map(|r| escalation(&r))
    .collect()
}

/// One more bump, to `severity`.
pub fn bump(sql: &dyn Sql, bead_id: &str, severity: &str) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE escalation_metadata
         SET severity = ?, re_escalation_count = re_escalation_count + 1 WHERE bead_id = ?",
        &params![severity, bead_id],
    )?;
    Ok(())
}

/// Marks the escalation acknowledged (once: a second acknowledgement keeps the first time).
pub fn acknowledge(sql: &dyn Sql, bead_id: &str, now: Millis) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE escalation_metadata SET acknowledged = 1, acknowledged_at = ?
         WHERE bead_id = ? AND acknowledged = 0",
        &params![iso(now), bead_id],
    )?;
    Ok(())
}
