//! Queries of `beads` and their history `bead_events`.

use super::page::{After, Page, PageQuery};
use super::rows::{self, BEAD_COLUMNS, BEAD_EVENT_COLUMNS};
use crate::params;
use crate::sql::{id_pairs, Sql, SqlError, Value};
use crate::vocabulary::model::{Bead, BeadEvent, BeadStatus, BeadType, Priority};
use crate::vocabulary::time::{iso, Millis};
use serde_json::{Map, Value as Json};

/// A bead to insert (status `open`, no dispatch attempts).
#[derive(Debug, Clone, PartialEq)]
pub struct NewBead {
    pub bead_id: String,
    pub bead_type: BeadType,
    pub title: String,
    pub body: Option<String>,
    pub rig_id: Option<String>,
    pub parent_bead_id: Option<String>,
    pub assignee_agent_bead_id: Option<String>,
    pub priority: Priority,
    pub labels: Vec<String>,
    pub metadata: Map<String, Json>,
    pub created_by: Option<String>,
}

impl NewBead {
    /// A bare bead: medium priority, no labels, empty metadata.
    pub fn new(bead_id: &str, bead_type: BeadType, title: &str) -> Self {
        Self {
            bead_id: bead_id.to_owned(),
            bead_type,
            title: title.to_owned(),
            body: None,
            rig_id: None,
            parent_bead_id: None,
            assignee_agent_bead_id: None,
            priority: Priority::Medium,
            labels: Vec::new(),
            metadata: Map::new(),
            created_by: None,
        }
    }
}

pub fn insert(sql: &dyn Sql, b: &NewBead, now: Millis) -> Result<(), SqlError> {
    let labels = serde_json::to_string(&b.labels).expect("labels serialize");
    let metadata = Json::Object(b.metadata.clone()).to_string();
    sql.execute(
        "INSERT INTO beads (bead_id, type, status, title, body, rig_id, parent_bead_id,
                            assignee_agent_bead_id, priority, labels, metadata, created_by,
                            created_at, updated_at)
         VALUES (?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &params![
            b.bead_id.as_str(),
            b.bead_type.as_str(),
            b.title.as_str(),
            b.body.as_deref(),
            b.rig_id.as_deref(),
            b.parent_bead_id.as_deref(),
            b.assignee_agent_bead_id.as_deref(),
            b.priority.as_str(),
            labels,
            metadata,
            b.created_by.as_deref(),
            iso(now),
            iso(now)
        ],
    )?;
    Ok(())
}

pub fn get(sql: &dyn Sql, bead_id: &str) -> Result<Option<Bead>, SqlError> {
    sql.first(
        &format!("SELECT {BEAD_COLUMNS} FROM beads b WHERE b.bead_id = ?"),
        &params![bead_id],
    )?
    .map(|r| rows::bead(&r))
    .transpose()
}

/// Those of `bead_ids` that are beads other than merge requests (unknown ids are left out).
pub fn not_merge_requests(
    sql: &dyn Sql,
    bead_ids: &[&str],
) -> Result<std::collections::HashSet<String>, SqlError> {
    sql.query(
        "SELECT bead_id FROM beads
         WHERE bead_id IN (SELECT value FROM json_each(?)) AND type <> 'merge_request'",
        &[crate::sql::id_list(bead_ids)],
    )?
    .into_iter()
    .map(|r| r.text("bead_id"))
    .collect()
}

/// The beads among `bead_ids`, in no particular order (unknown ids are left out).
pub fn by_ids(sql: &dyn Sql, bead_ids: &[&str]) -> Result<Vec<Bead>, SqlError> {
    sql.query(
        &format!(
            "SELECT {BEAD_COLUMNS} FROM beads b WHERE b.bead_id IN (SELECT value FROM json_each(?))"
        ),
        &[crate::sql::id_list(bead_ids)],
    )?
    .into_iter()
    .map(|r| rows::bead(&r))
    .collect()
}

/// Which beads [`list`] returns; `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub status: Option<BeadStatus>,
    pub bead_type: Option<BeadType>,
    pub rig_id: Option<String>,
}

/// Beads matching `filter`, oldest first (agent beads only when asked for by type).
pub fn list(sql: &dyn Sql, filter: &Filter) -> Result<Vec<Bead>, SqlError> {
    let (clauses, args) = filter.sql();
    sql.query(
        &format!(
            "SELECT {BEAD_COLUMNS} FROM beads b WHERE {} ORDER BY b.created_at, b.rowid",
            clauses.join(" AND ")
        ),
        &args,
    )?
    .into_iter()
    .map(|r| rows::bead(&r))
    .collect()
}

/// A page of the beads matching `filter`, in `(created_at, bead_id)` order.
pub fn page(sql: &dyn Sql, filter: &Filter, which: &PageQuery) -> Result<Page<Bead>, SqlError> {
    let (mut clauses, mut args) = filter.sql();
    let (after, after_args, tail) = which.sql("b.created_at", "b.bead_id");
    clauses.push(&after);
    args.extend(after_args);
    let found = sql
        .query(
            &format!(
                "SELECT {BEAD_COLUMNS} FROM beads b WHERE {} {tail}",
                clauses.join(" AND ")
            ),
            &args,
        )?
        .into_iter()
        .map(|r| rows::bead(&r))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(which.page(found, |b| After {
        created_at: b.created_at.clone(),
        id: b.bead_id.clone(),
    }))
}

impl Filter {
    /// The filter's conditions on `beads b` and their arguments.
    fn sql(&self) -> (Vec<&str>, Vec<Value>) {
        let mut clauses = Vec::new();
        let mut args: Vec<Value> = Vec::new();
        if let Some(s) = self.status {
            clauses.push("b.status = ?");
            args.push(s.as_str().into());
        }
        match self.bead_type {
            Some(t) => {
                clauses.push("b.type = ?");
                args.push(t.as_str().into());
            }
            None => clauses.push("b.type <> 'agent'"),
        }
        if let Some(r) = &self.rig_id {
            clauses.push("b.rig_id = ?");
            args.push(r.into());
        }
        (clauses, args)
    }
}

/// Beads whose assignee is `agent_id`.
pub fn assigned_to(sql: &dyn Sql, agent_id: &str) -> Result<Vec<Bead>, SqlError> {
    sql.query(
        &format!(
            "SELECT {BEAD_COLUMNS} FROM beads b WHERE b.assignee_agent_bead_id = ?
             ORDER BY b.created_at, b.rowid"
        ),
        &params![agent_id],
    )?
    .into_iter()
    .map(|r| rows::bead(&r))
    .collect()
}

/// Writes a new status; `closed_at` is set when given and kept otherwise.
pub fn set_status(
    sql: &dyn Sql,
    bead_id: &str,
    status: BeadStatus,
    closed_at: Option<&str>,
    now: Millis,
) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE beads SET status = ?, closed_at = COALESCE(?, closed_at), updated_at = ?
         WHERE bead_id = ?",
        &params![status.as_str(), closed_at, iso(now), bead_id],
    )?;
    Ok(())
}

pub fn set_assignee(
    sql: &dyn Sql,
    bead_id: &str,
    assignee: Option<&str>,
    now: Millis,
) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE beads SET assignee_agent_bead_id = ?, updated_at = ? WHERE bead_id = ?",
        &params![assignee, iso(now), bead_id],
    )?;
    Ok(())
}

/// The assignee and the status in one write (a dispatch hooking a bead it starts at once).
pub fn set_assignee_and_status(
    sql: &dyn Sql,
    bead_id: &str,
    assignee: &str,
    status: BeadStatus,
    now: Millis,
) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE beads SET assignee_agent_bead_id = ?, status = ?, updated_at = ? WHERE bead_id = ?",
        &params![assignee, status.as_str(), iso(now), bead_id],
    )?;
    Ok(())
}

/// [`set_assignee_and_status`] of many beads in one statement: each `(bead, assignee)` pair.
pub fn set_assignees_and_status(
    sql: &dyn Sql,
    assignments: &[(&str, &str)],
    status: BeadStatus,
    now: Millis,
) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE beads SET assignee_agent_bead_id = s.value ->> 1, status = ?, updated_at = ?
         FROM json_each(?) AS s WHERE beads.bead_id = s.value ->> 0",
        &params![status.as_str(), iso(now), id_pairs(assignments)],
    )?;
    Ok(())
}

pub fn set_metadata(
    sql: &dyn Sql,
    bead_id: &str,
    metadata: &Map<String, Json>,
    now: Millis,
) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE beads SET metadata = ?, updated_at = ? WHERE bead_id = ?",
        &params![
            Json::Object(metadata.clone()).to_string(),
            iso(now),
            bead_id
        ],
    )?;
    Ok(())
}

pub fn set_body(sql: &dyn Sql, bead_id: &str, body: &str, now: Millis) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE beads SET body = ?, updated_at = ? WHERE bead_id = ?",
        &params![body, iso(now), bead_id],
    )?;
    Ok(())
}

/// Deletes a bead with its history and every dependency edge that names it.
pub fn delete(sql: &dyn Sql, bead_id: &str) -> Result<(), SqlError> {
    sql.execute(
        "DELETE FROM bead_events WHERE bead_id = ?",
        &params![bead_id],
    )?;
    sql.execute(
        "DELETE FROM bead_dependencies WHERE bead_id = ? OR depends_on_bead_id = ?",
        &params![bead_id, bead_id],
    )?;
    sql.execute("DELETE FROM beads WHERE bead_id = ?", &params![bead_id])?;
    Ok(())
}

/// A history entry to append.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewEvent<'a> {
    pub bead_id: &'a str,
    pub agent_id: Option<&'a str>,
    pub event_type: &'a str,
    pub old_value: Option<&'a str>,
    pub new_value: Option<&'a str>,
    pub metadata: Map<String, Json>,
}

pub fn log_event(
    sql: &dyn Sql,
    event_id: &str,
    e: &NewEvent<'_>,
    now: Millis,
) -> Result<(), SqlError> {
    log_events(sql, &[(event_id, e)], now)
}

/// Entries per `INSERT` of [`log_events`]: 8 bound values each, under the Durable Object's 100.
const EVENTS_PER_INSERT: usize = 12;

/// Appends history entries in the given order (as `rowid` keeps it), up to
/// [`EVENTS_PER_INSERT`] per statement. Bound as plain values: a JSON array read through
/// `json_each` took about twice as long per row natively (each column extracted from its text).
pub fn log_events(
    sql: &dyn Sql,
    events: &[(&str, &NewEvent<'_>)],
    now: Millis,
) -> Result<(), SqlError> {
    let at = iso(now);
    for chunk in events.chunks(EVENTS_PER_INSERT) {
        let mut values = Vec::with_capacity(chunk.len() * 8);
        for (event_id, e) in chunk {
            values.extend([
                Value::from(*event_id),
                Value::from(e.bead_id),
                Value::from(e.agent_id),
                Value::from(e.event_type),
                Value::from(e.old_value),
                Value::from(e.new_value),
                Value::from(Json::Object(e.metadata.clone()).to_string()),
                Value::from(at.as_str()),
            ]);
        }
        let rows = vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        sql.execute(
            &format!(
                "INSERT INTO bead_events (bead_event_id, bead_id, agent_id, event_type, old_value,
                                          new_value, metadata, created_at)
                 VALUES {rows}"
            ),
            &values,
        )?;
    }
    Ok(())
}

/// A bead's history, oldest first.
pub fn events_of(sql: &dyn Sql, bead_id: &str) -> Result<Vec<BeadEvent>, SqlError> {
    sql.query(
        &format!(
            "SELECT {BEAD_EVENT_COLUMNS} FROM bead_events e WHERE e.bead_id = ?
             ORDER BY e.created_at, e.rowid"
        ),
        &params![bead_id],
    )?
    .into_iter()
    .map(|r| rows::bead_event(&r))
    .collect()
}

/// How many beads (agents excluded) are in each status.
pub fn count_by_status(sql: &dyn Sql) -> Result<Map<String, Json>, SqlError> {
    sql.query(
        "SELECT status, COUNT(*) AS n FROM beads WHERE type <> 'agent' GROUP BY status ORDER BY status",
        &[],
    )?
    .into_iter()
    .map(|r| Ok((r.text("status")?, Json::from(r.int("n")?))))
    .collect()
}

/// Beads (not closed) whose last dispatch failed at or after `since`: the circuit breaker's
/// count (`reconciler::breaker`), read without loading a snapshot.
pub fn dispatch_failures_since(sql: &dyn Sql, since: Millis) -> Result<i64, SqlError> {
    sql.one(
        "SELECT COUNT(*) AS n FROM beads
         WHERE type <> 'agent' AND status <> 'closed'
           AND last_dispatch_error IS NOT NULL AND last_dispatch_attempt_at >= ?",
        &params![iso(since)],
    )?
    .int("n")
}
