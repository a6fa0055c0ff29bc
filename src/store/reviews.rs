//! Queries of merge requests: a `merge_request` bead plus its `review_metadata` row.

use super::page::{After, Page, PageQuery};
use super::rows::{self, BEAD_COLUMNS, REVIEW_COLUMNS};
use crate::params;
use crate::sql::{Sql, SqlError};
use crate::vocabulary::model::{Bead, Review};

pub fn insert(
    sql: &dyn Sql,
    bead_id: &str,
    branch: &str,
    target_branch: &str,
    pr_url: Option<&str>,
) -> Result<(), SqlError> {
    sql.execute(
        "INSERT INTO review_metadata (bead_id, branch, target_branch, pr_url) VALUES (?, ?, ?, ?)",
        &params![bead_id, branch, target_branch, pr_url],
    )?;
    Ok(())
}

pub fn get(sql: &dyn Sql, bead_id: &str) -> Result<Option<Review>, SqlError> {
    sql.first(
        &format!("SELECT {REVIEW_COLUMNS} FROM review_metadata r WHERE r.bead_id = ?"),
        &params![bead_id],
    )?
    .map(|r| rows::review(&r))
    .transpose()
}

pub fn set_pr_url(sql: &dyn Sql, bead_id: &str, pr_url: &str) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE review_metadata SET pr_url = ? WHERE bead_id = ?",
        &params![pr_url, bead_id],
    )?;
    Ok(())
}

pub fn set_merge_commit(sql: &dyn Sql, bead_id: &str, commit: &str) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE review_metadata SET merge_commit = ? WHERE bead_id = ?",
        &params![commit, bead_id],
    )?;
    Ok(())
}

/// A page of the merge requests in `(created_at, bead_id)` order.
pub fn page(sql: &dyn Sql, which: &PageQuery) -> Result<Page<(Bead, Review)>, SqlError> {
    let (after, args, tail) = which.sql("b.created_at", "b.bead_id");
    let found = sql
        .query(
            &format!(
                "SELECT {BEAD_COLUMNS}, r.branch, r.target_branch, r.merge_commit, r.pr_url,
                        r.retry_count, r.auto_merge_ready_since, r.last_feedback_check_at
                 FROM beads b JOIN review_metadata r ON r.bead_id = b.bead_id
                 WHERE b.type = 'merge_request' AND {after} {tail}"
            ),
            &args,
        )?
        .into_iter()
        .map(|row| Ok((rows::bead(&row)?, rows::review(&row)?)))
        .collect::<Result<Vec<_>, SqlError>>()?;
    Ok(which.page(found, |(b, _)| After {
        created_at: b.created_at.clone(),
        id: b.bead_id.clone(),
    }))
}

/// The agent's most recently updated merge request that is not closed or failed.
pub fn latest_live_assigned_to(sql: &dyn Sql, agent_id: &str) -> Result<Option<Bead>, SqlError> {
    sql.first(
        &format!(
            "SELECT {BEAD_COLUMNS} FROM beads b
             WHERE b.type = 'merge_request' AND b.assignee_agent_bead_id = ?
               AND b.status NOT IN ('closed', 'failed')
             ORDER BY b.updated_at DESC, b.rowid DESC LIMIT 1"
        ),
        &params![agent_id],
    )?
    .map(|r| rows::bead(&r))
    .transpose()
}
