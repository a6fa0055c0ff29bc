//! Queries of `agent_nudges`: messages waiting for an agent.

use super::rows::{self, NUDGE_COLUMNS};
use crate::params;
use crate::sql::{Sql, SqlError};
use crate::vocabulary::model::{Nudge, NudgeMode, NudgePriority};
use crate::vocabulary::time::{iso, Millis};

/// A nudge to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNudge {
    pub nudge_id: String,
    pub agent_bead_id: String,
    pub message: String,
    pub mode: NudgeMode,
    pub priority: NudgePriority,
    pub source: String,
    pub expires_at: Option<String>,
}

pub fn insert(sql: &dyn Sql, n: &NewNudge, now: Millis) -> Result<(), SqlError> {
    sql.execute(
        "INSERT INTO agent_nudges (nudge_id, agent_bead_id, message, mode, priority, source,
                                   created_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        &params![
            n.nudge_id.as_str(),
            n.agent_bead_id.as_str(),
            n.message.as_str(),
            n.mode.as_str(),
            n.priority.as_str(),
            n.source.as_str(),
            iso(now),
            n.expires_at.as_deref()
        ],
    )?;
    Ok(())
}

pub fn get(sql: &dyn Sql, nudge_id: &str) -> Result<Option<Nudge>, SqlError> {
    sql.first(
        &format!("SELECT {NUDGE_COLUMNS} FROM agent_nudges n WHERE n.nudge_id = ?"),
        &params![nudge_id],
    )?
    .map(|r| rows::nudge(&r))
    .transpose()
}

/// The agent's undelivered, unexpired nudges: urgent first, then oldest first.
pub fn pending(sql: &dyn Sql, agent_id: &str, now: Millis) -> Result<Vec<Nudge>, SqlError> {
    sql.query(
        &format!(
            "SELECT {NUDGE_COLUMNS} FROM agent_nudges n
             WHERE n.agent_bead_id = ? AND n.delivered_at IS NULL
               AND (n.expires_at IS NULL OR n.expires_at > ?)
             ORDER BY CASE n.priority WHEN 'urgent' THEN 0 ELSE 1 END, n.created_at, n.rowid"
        ),
        &params![agent_id, iso(now)],
    )?
    .into_iter()
    .map(|r| rows::nudge(&r))
    .collect()
}

pub fn mark_delivered(sql: &dyn Sql, nudge_id: &str, now: Millis) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE agent_nudges SET delivered_at = ? WHERE nudge_id = ? AND delivered_at IS NULL",
        &params![iso(now), nudge_id],
    )?;
    Ok(())
}

/// Marks every undelivered nudge whose expiry has passed as delivered; returns how many.
pub fn expire(sql: &dyn Sql, now: Millis) -> Result<u64, SqlError> {
    sql.execute(
        "UPDATE agent_nudges SET delivered_at = ?
         WHERE delivered_at IS NULL AND expires_at IS NOT NULL AND expires_at <= ?",
        &params![iso(now), iso(now)],
    )
}
