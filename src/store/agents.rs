//! Queries of agents: an `agent` bead plus its `agent_metadata` row.

use super::page::{After, Page, PageQuery};
use super::rows::{self, AGENT_COLUMNS, AGENT_FROM};
use crate::params;
use crate::sql::{id_pairs, Sql, SqlError, Value};
use crate::vocabulary::model::{Agent, AgentRole, AgentStatus};
use crate::vocabulary::time::{iso, Millis};

/// An agent to register: status idle, no hook, never active.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAgent {
    pub agent_id: String,
    pub role: AgentRole,
    pub name: String,
    pub identity: String,
    pub rig_id: Option<String>,
}

impl NewAgent {
    /// The agent as registered at `created_at`: idle, no hook, never active (the schema's
    /// defaults, which [`insert`] relies on).
    pub fn registered(self, created_at: String) -> Agent {
        Agent {
            agent_id: self.agent_id,
            role: self.role,
            name: self.name,
            identity: self.identity,
            rig_id: self.rig_id,
            status: AgentStatus::Idle,
            current_hook_bead_id: None,
            dispatch_attempts: 0,
            checkpoint: None,
            last_activity_at: None,
            last_event_type: None,
            last_event_at: None,
            active_tools: Vec::new(),
            stalled_at: None,
            created_at,
        }
    }
}

pub fn insert(sql: &dyn Sql, a: &NewAgent, now: Millis) -> Result<(), SqlError> {
    insert_all(sql, std::slice::from_ref(a), now)
}

/// Rows of one multi-row INSERT: the Durable Object binds at most 100 parameters a statement,
/// and a row here binds 5.
const INSERT_ROWS: usize = 20;

/// Agents registered together, [`INSERT_ROWS`] to a statement per table.
pub fn insert_all(sql: &dyn Sql, agents: &[NewAgent], now: Millis) -> Result<(), SqlError> {
    let at = iso(now);
    for chunk in agents.chunks(INSERT_ROWS) {
        let rows = |row: &str| vec![row; chunk.len()].join(", ");
        let beads: Vec<Value> = chunk
            .iter()
            .flat_map(|a| {
                params![
                    a.agent_id.as_str(),
                    a.name.as_str(),
                    a.rig_id.as_deref(),
                    at.as_str(),
                    at.as_str()
                ]
            })
            .collect();
        sql.execute(
            &format!(
                "INSERT INTO beads (bead_id, type, status, title, rig_id, labels, metadata,
                                    created_by, created_at, updated_at)
                 VALUES {}",
                rows("(?, 'agent', 'open', ?, ?, '[]', '{}', 'system', ?, ?)")
            ),
            &beads,
        )?;
        let metadata: Vec<Value> = chunk
            .iter()
            .flat_map(|a| {
                params![
                    a.agent_id.as_str(),
                    a.role.as_str(),
                    a.name.as_str(),
                    a.identity.as_str(),
                    a.rig_id.as_deref()
                ]
            })
            .collect();
        sql.execute(
            &format!(
                "INSERT INTO agent_metadata (bead_id, role, name, identity, rig_id) VALUES {}",
                rows("(?, ?, ?, ?, ?)")
            ),
            &metadata,
        )?;
    }
    Ok(())
}

fn select(sql: &dyn Sql, filter: &str, args: &[Value]) -> Result<Vec<Agent>, SqlError> {
    sql.query(
        &format!("SELECT {AGENT_COLUMNS} FROM {AGENT_FROM} WHERE {filter}"),
        args,
    )?
    .into_iter()
    .map(|r| rows::agent(&r))
    .collect()
}

pub fn get(sql: &dyn Sql, agent_id: &str) -> Result<Option<Agent>, SqlError> {
    Ok(select(sql, "a.bead_id = ?", &params![agent_id])?
        .into_iter()
        .next())
}

/// The agents among `agent_ids`, in no particular order (unknown ids are left out).
pub fn by_ids(sql: &dyn Sql, agent_ids: &[&str]) -> Result<Vec<Agent>, SqlError> {
    select(
        sql,
        "a.bead_id IN (SELECT value FROM json_each(?))",
        &[crate::sql::id_list(agent_ids)],
    )
}

/// Every agent, oldest first.
pub fn list(sql: &dyn Sql) -> Result<Vec<Agent>, SqlError> {
    select(sql, "1 = 1 ORDER BY b.created_at, b.rowid", &[])
}

/// A page of the agents in `(created_at, agent_id)` order.
pub fn page(sql: &dyn Sql, which: &PageQuery) -> Result<Page<Agent>, SqlError> {
    let (after, args, tail) = which.sql("b.created_at", "b.bead_id");
    let found = select(sql, &format!("{after} {tail}"), &args)?;
    Ok(which.page(found, |a| After {
        created_at: a.created_at.clone(),
        id: a.agent_id.clone(),
    }))
}

/// The oldest agent with `role` (in `rig_id` when given), whatever its status.
pub fn first_with_role(
    sql: &dyn Sql,
    role: AgentRole,
    rig_id: Option<&str>,
) -> Result<Option<Agent>, SqlError> {
    Ok(select(
        sql,
        "a.role = ? AND (? IS NULL OR b.rig_id = ?) ORDER BY b.created_at, b.rowid LIMIT 1",
        &params![role.as_str(), rig_id, rig_id],
    )?
    .into_iter()
    .next())
}

/// The first registered idle polecat of the rig with nothing on its hook.
pub fn idle_unhooked_polecat(sql: &dyn Sql, rig_id: &str) -> Result<Option<Agent>, SqlError> {
    Ok(idle_unhooked_polecats(sql, rig_id, 1)?.into_iter().next())
}

/// The rig's first `limit` registered idle polecats with nothing on their hooks, oldest first.
pub fn idle_unhooked_polecats(
    sql: &dyn Sql,
    rig_id: &str,
    limit: usize,
) -> Result<Vec<Agent>, SqlError> {
    select(
        sql,
        // `a.rig_id` (the bead's rig, copied by migration 0007) narrows the search to the rig's
        // free polecats through `idx_agent_free_polecats`, whose entries for one rig and status
        // run in rowid (registration) order: the first is the answer, read alone. Ordered by the
        // bead's `created_at` instead, every free polecat of the rig was read and sorted, for
        // each dispatch of a tick that had registered dozens of them.
        "a.rig_id = ? AND a.role = 'polecat' AND a.status = 'idle'
         AND a.current_hook_bead_id IS NULL ORDER BY a.rowid LIMIT ?",
        &params![rig_id, limit as i64],
    )
}

/// How many free polecats (idle, unhooked: what [`idle_unhooked_polecat`] finds) each of
/// `rig_ids` has; a rig without any is left out.
pub fn free_polecats_by_rig(
    sql: &dyn Sql,
    rig_ids: &[&str],
) -> Result<std::collections::HashMap<String, usize>, SqlError> {
    // Pinned to `idx_agent_free_polecats`: without it the Durable Object's SQLite planned a walk
    // of every idle agent (`idx_agent_status`), and other versions one of every unhooked agent.
    sql.query(
        "SELECT rig_id, COUNT(*) AS n FROM agent_metadata INDEXED BY idx_agent_free_polecats
         WHERE rig_id IN (SELECT value FROM json_each(?)) AND role = 'polecat'
           AND status = 'idle' AND current_hook_bead_id IS NULL
         GROUP BY rig_id",
        &[crate::sql::id_list(rig_ids)],
    )?
    .into_iter()
    .map(|r| Ok((r.text("rig_id")?, r.int("n")? as usize)))
    .collect()
}

/// Agents whose hook holds `bead_id`.
pub fn hooked_to(sql: &dyn Sql, bead_id: &str) -> Result<Vec<Agent>, SqlError> {
    select(
        sql,
        "a.current_hook_bead_id = ? ORDER BY b.created_at, b.rowid",
        &params![bead_id],
    )
}

/// The agents hooked to any of `bead_ids`, in no particular order.
pub fn hooked_to_any(sql: &dyn Sql, bead_ids: &[&str]) -> Result<Vec<Agent>, SqlError> {
    select(
        sql,
        "a.current_hook_bead_id IN (SELECT value FROM json_each(?))",
        &[crate::sql::id_list(bead_ids)],
    )
}

/// Puts `bead_id` on the agent's hook with `status` (idle when hooking, working when hooking to
/// dispatch at once): not stalled, active now, status message cleared.
pub fn hook(
    sql: &dyn Sql,
    agent_id: &str,
    bead_id: &str,
    status: AgentStatus,
    now: Millis,
) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE agent_metadata SET current_hook_bead_id = ?, status = ?, stalled_at = NULL,
                last_activity_at = ?, agent_status_message = NULL, agent_status_updated_at = ?
         WHERE bead_id = ?",
        &params![bead_id, status.as_str(), iso(now), iso(now), agent_id],
    )?;
    Ok(())
}

/// [`hook`] of many agents in one statement: each `(agent, bead)` pair.
pub fn hook_all(
    sql: &dyn Sql,
    hooks: &[(&str, &str)],
    status: AgentStatus,
    now: Millis,
) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE agent_metadata SET current_hook_bead_id = h.value ->> 1, status = ?,
                stalled_at = NULL, last_activity_at = ?, agent_status_message = NULL,
                agent_status_updated_at = ?
         FROM json_each(?) AS h WHERE agent_metadata.bead_id = h.value ->> 0",
        &params![status.as_str(), iso(now), iso(now), id_pairs(hooks)],
    )?;
    Ok(())
}

/// Empties the hook: idle, checkpoint cleared.
pub fn unhook(sql: &dyn Sql, agent_id: &str) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE agent_metadata SET current_hook_bead_id = NULL, status = 'idle',
                stalled_at = NULL, checkpoint = NULL
         WHERE bead_id = ?",
        &params![agent_id],
    )?;
    Ok(())
}

/// Sets the status and `stalled_at` together.
pub fn set_status(
    sql: &dyn Sql,
    agent_id: &str,
    status: AgentStatus,
    stalled_at: Option<&str>,
) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE agent_metadata SET status = ?, stalled_at = ? WHERE bead_id = ?",
        &params![status.as_str(), stalled_at, agent_id],
    )?;
    Ok(())
}

/// What a heartbeat reports besides "alive"; `None` keeps the stored value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Watermark {
    pub last_event_type: Option<String>,
    pub last_event_at: Option<String>,
    pub active_tools: Option<Vec<String>>,
}

/// Proof of life: active now, idle becomes working, agent attempts reset, watermark kept.
pub fn touch(sql: &dyn Sql, agent_id: &str, w: &Watermark, now: Millis) -> Result<(), SqlError> {
    let tools = w
        .active_tools
        .as_ref()
        .map(|t| serde_json::to_string(t).expect("tools serialize"));
    sql.execute(
        "UPDATE agent_metadata SET last_activity_at = ?,
                status = CASE status WHEN 'idle' THEN 'working' ELSE status END,
                dispatch_attempts = 0,
                last_event_type = COALESCE(?, last_event_type),
                last_event_at = COALESCE(?, last_event_at),
                active_tools = COALESCE(?, active_tools)
         WHERE bead_id = ?",
        &params![
            iso(now),
            w.last_event_type.as_deref(),
            w.last_event_at.as_deref(),
            tools,
            agent_id
        ],
    )?;
    Ok(())
}

pub fn clear_checkpoint(sql: &dyn Sql, agent_id: &str) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE agent_metadata SET checkpoint = NULL WHERE bead_id = ?",
        &params![agent_id],
    )?;
    Ok(())
}

pub fn reset_dispatch_attempts(sql: &dyn Sql, agent_id: &str) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE agent_metadata SET dispatch_attempts = 0 WHERE bead_id = ?",
        &params![agent_id],
    )?;
    Ok(())
}

/// Deletes the agent's satellites (metadata row and nudges); the bead goes separately.
pub fn delete_satellites(sql: &dyn Sql, agent_id: &str) -> Result<(), SqlError> {
    sql.execute(
        "DELETE FROM agent_nudges WHERE agent_bead_id = ?",
        &params![agent_id],
    )?;
    sql.execute(
        "DELETE FROM agent_metadata WHERE bead_id = ?",
        &params![agent_id],
    )?;
    Ok(())
}

/// Which of `identities` are taken (one indexed read, however many).
pub fn taken_identities(
    sql: &dyn Sql,
    identities: &[String],
) -> Result<std::collections::HashSet<String>, SqlError> {
    sql.query(
        "SELECT identity FROM agent_metadata WHERE identity IN (SELECT value FROM json_each(?))",
        &[crate::sql::id_list(identities)],
    )?
    .into_iter()
    .map(|r| r.text("identity"))
    .collect()
}

/// The first of the next `count` `Polecat-N` numbers, advancing the town's sequence past them.
pub fn next_polecat_numbers(sql: &dyn Sql, count: usize) -> Result<i64, SqlError> {
    let count = count as i64;
    sql.one(
        "UPDATE town SET polecat_seq = polecat_seq + ? WHERE singleton = 1
         RETURNING polecat_seq - ? AS n",
        &params![count, count],
    )?
    .int("n")
}

/// The agent's own words about what it is doing (`POST …/status`).
pub fn set_status_message(
    sql: &dyn Sql,
    agent_id: &str,
    message: &str,
    now: Millis,
) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE agent_metadata SET agent_status_message = ?, agent_status_updated_at = ?
         WHERE bead_id = ?",
        &params![message, iso(now), agent_id],
    )?;
    Ok(())
}

/// Every agent's status message that is set: `(agent_id, message, updated_at)`.
pub fn status_messages(sql: &dyn Sql) -> Result<Vec<(String, String, String)>, SqlError> {
    sql.query(
        "SELECT bead_id, agent_status_message, agent_status_updated_at FROM agent_metadata
         WHERE agent_status_message IS NOT NULL ORDER BY bead_id",
        &[],
    )?
    .into_iter()
    .map(|r| {
        Ok((
            r.text("bead_id")?,
            r.text("agent_status_message")?,
            r.opt_text("agent_status_updated_at")?.unwrap_or_default(),
        ))
    })
    .collect()
}

/// Where the agent's next dispatch resumes from.
pub fn set_checkpoint(sql: &dyn Sql, agent_id: &str, checkpoint: &str) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE agent_metadata SET checkpoint = ? WHERE bead_id = ?",
        &params![checkpoint, agent_id],
    )?;
    Ok(())
}
