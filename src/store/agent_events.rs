//! Queries of `agent_events`: each agent's newest reported events, oldest dropped past
//! [`KEEP`].

use crate::params;
use crate::sql::{Sql, SqlError};
use serde_json::Value as Json;

/// Events kept per agent.
pub const KEEP: i64 = 200;

/// Appends one event and drops the agent's events beyond the newest [`KEEP`].
pub fn append(
    sql: &dyn Sql,
    agent_id: &str,
    event_type: &str,
    data: &str,
    at: &str,
) -> Result<(), SqlError> {
    sql.execute(
        "INSERT INTO agent_events (agent_id, event_type, data, created_at) VALUES (?, ?, ?, ?)",
        &params![agent_id, event_type, data, at],
    )?;
    sql.execute(
        "DELETE FROM agent_events WHERE agent_id = ? AND event_id <= (
           SELECT event_id FROM agent_events WHERE agent_id = ? ORDER BY event_id DESC LIMIT 1 OFFSET ?)",
        &params![agent_id, agent_id, KEEP],
    )?;
    Ok(())
}

/// The agent's newest `limit` events, newest first, as `{event_type, data, created_at}`.
pub fn newest(sql: &dyn Sql, agent_id: &str, limit: i64) -> Result<Vec<Json>, SqlError> {
    sql.query(
        "SELECT event_type, data, created_at FROM agent_events WHERE agent_id = ?
         ORDER BY event_id DESC LIMIT ?",
        &params![agent_id, limit],
    )?
    .into_iter()
    .map(|r| {
        let data = r.text("data")?;
        Ok(serde_json::json!({
            "event_type": r.text("event_type")?,
            "data": serde_json::from_slice::<Json>(data.as_bytes()).unwrap_or(Json::String(data)),
            "created_at": r.text("created_at")?,
        }))
    })
    .collect()
}
