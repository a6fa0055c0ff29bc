//! Row decoders: the one place that turns stored rows into domain types. Each entity has its
//! column list (`*_COLUMNS`, to splice into a SELECT with the given table alias) and a decoder.

use crate::sql::{Row, SqlError};
use crate::vocabulary::config::MergeStrategy;
use crate::vocabulary::model::*;
use serde_json::{Map, Value as Json};

fn bad(column: &str, wanted: &'static str) -> SqlError {
    SqlError::Decode {
        column: column.to_owned(),
        wanted,
    }
}

fn name<T>(row: &Row, column: &str, parse: fn(&str) -> Option<T>) -> Result<T, SqlError> {
    parse(&row.text(column)?).ok_or_else(|| bad(column, "a known name"))
}

fn json_list(row: &Row, column: &str) -> Result<Vec<String>, SqlError> {
    let text = row.opt_text(column)?.unwrap_or_else(|| "[]".into());
    crate::json::from_slice(text.as_bytes()).map_err(|_| bad(column, "a JSON array of strings"))
}

fn json_object(row: &Row, column: &str) -> Result<Map<String, Json>, SqlError> {
    let text = row.opt_text(column)?.unwrap_or_else(|| "{}".into());
    match serde_json::from_slice::<Json>(text.as_bytes()) {
        Ok(Json::Object(map)) => Ok(map),
        _ => Err(bad(column, "a JSON object")),
    }
}

/// Columns of `beads` (alias `b`).
pub const BEAD_COLUMNS: &str = "b.bead_id, b.type, b.status, b.title, b.body, b.rig_id, \
     b.parent_bead_id, b.assignee_agent_bead_id, b.priority, b.labels, b.metadata, \
     b.dispatch_attempts, b.last_dispatch_attempt_at, b.created_by, b.created_at, b.updated_at, \
     b.closed_at";

pub fn bead(row: &Row) -> Result<Bead, SqlError> {
    Ok(Bead {
        bead_id: row.text("bead_id")?,
        bead_type: name(row, "type", BeadType::parse)?,
        status: name(row, "status", BeadStatus::parse)?,
        title: row.text("title")?,
        body: row.opt_text("body")?,
        rig_id: row.opt_text("rig_id")?,
        parent_bead_id: row.opt_text("parent_bead_id")?,
        assignee_agent_bead_id: row.opt_text("assignee_agent_bead_id")?,
        priority: name(row, "priority", Priority::parse)?,
        labels: json_list(row, "labels")?,
        metadata: json_object(row, "metadata")?,
        dispatch_attempts: row.int("dispatch_attempts")?,
        last_dispatch_attempt_at: row.opt_text("last_dispatch_attempt_at")?,
        created_by: row.opt_text("created_by")?,
        created_at: row.text("created_at")?,
        updated_at: row.text("updated_at")?,
        closed_at: row.opt_text("closed_at")?,
    })
}

/// Columns of an agent: `agent_metadata` (alias `a`) joined to its bead (alias `b`).
pub const AGENT_COLUMNS: &str = "a.bead_id AS agent_id, a.role, a.name, a.identity, \
     b.rig_id, a.status, a.current_hook_bead_id, a.dispatch_attempts, a.checkpoint, \
     a.last_activity_at, a.last_event_type, a.last_event_at, a.active_tools, a.stalled_at, \
     b.created_at";

/// `FROM` clause that goes with [`AGENT_COLUMNS`].
pub const AGENT_FROM: &str = "agent_metadata a JOIN beads b ON b.bead_id = a.bead_id";

pub fn agent(row: &Row) -> Result<Agent, SqlError> {
    Ok(Agent {
        agent_id: row.text("agent_id")?,
        role: name(row, "role", AgentRole::parse)?,
        name: row.text("name")?,
        identity: row.text("identity")?,
        rig_id: row.opt_text("rig_id")?,
        status: name(row, "status", AgentStatus::parse)?,
        current_hook_bead_id: row.opt_text("current_hook_bead_id")?,
        dispatch_attempts: row.int("dispatch_attempts")?,
        checkpoint: row.opt_text("checkpoint")?,
        last_activity_at: row.opt_text("last_activity_at")?,
        last_event_type: row.opt_text("last_event_type")?,
        last_event_at: row.opt_text("last_event_at")?,
        active_tools: json_list(row, "active_tools")?,
        stalled_at: row.opt_text("stalled_at")?,
        created_at: row.text("created_at")?,
    })
}

/// Columns of `review_metadata` (alias `r`).
pub const REVIEW_COLUMNS: &str = "r.bead_id, r.branch, r.target_branch, r.merge_commit, \
     r.pr_url, r.retry_count, r.auto_merge_ready_since, r.last_feedback_check_at";

pub fn review(row: &Row) -> Result<Review, SqlError> {
    Ok(Review {
        bead_id: row.text("bead_id")?,
        branch: row.text("branch")?,
        target_branch: row.text("target_branch")?,
        merge_commit: row.opt_text("merge_commit")?,
        pr_url: row.opt_text("pr_url")?,
        retry_count: row.int("retry_count")?,
        auto_merge_ready_since: row.opt_text("auto_merge_ready_since")?,
        last_feedback_check_at: row.opt_text("last_feedback_check_at")?,
    })
}

/// Columns of `convoy_metadata` (alias `c`).
pub const CONVOY_COLUMNS: &str = "c.bead_id, c.total_beads, c.closed_beads, c.landed_at, \
     c.feature_branch, c.merge_mode, c.staged";

pub fn convoy(row: &Row) -> Result<Convoy, SqlError> {
    Ok(Convoy {
        bead_id: row.text("bead_id")?,
        total_beads: row.int("total_beads")?,
        closed_beads: row.int("closed_beads")?,
        landed_at: row.opt_text("landed_at")?,
        feature_branch: row.opt_text("feature_branch")?,
        merge_mode: match row.opt_text("merge_mode")? {
            None => None,
            Some(m) => Some(MergeMode::parse(&m).ok_or_else(|| bad("merge_mode", "a merge mode"))?),
        },
        staged: row.bool("staged")?,
    })
}

/// Columns of `bead_dependencies` (alias `d`).
pub const DEPENDENCY_COLUMNS: &str = "d.bead_id, d.depends_on_bead_id, d.dependency_type";

pub fn dependency(row: &Row) -> Result<Dependency, SqlError> {
    Ok(Dependency {
        bead_id: row.text("bead_id")?,
        depends_on_bead_id: row.text("depends_on_bead_id")?,
        dependency_type: name(row, "dependency_type", DependencyType::parse)?,
    })
}

/// Columns of `agent_nudges` (alias `n`).
pub const NUDGE_COLUMNS: &str = "n.nudge_id, n.agent_bead_id, n.message, n.mode, n.priority, \
     n.source, n.created_at, n.delivered_at, n.expires_at";

pub fn nudge(row: &Row) -> Result<Nudge, SqlError> {
    Ok(Nudge {
        nudge_id: row.text("nudge_id")?,
        agent_bead_id: row.text("agent_bead_id")?,
        message: row.text("message")?,
        mode: name(row, "mode", NudgeMode::parse)?,
        priority: name(row, "priority", NudgePriority::parse)?,
        source: row.text("source")?,
        created_at: row.text("created_at")?,
        delivered_at: row.opt_text("delivered_at")?,
        expires_at: row.opt_text("expires_at")?,
    })
}

/// Columns of `rigs` (alias `g`).
pub const RIG_COLUMNS: &str =
    "g.rig_id, g.name, g.git_url, g.default_branch, g.merge_strategy, g.created_at";

pub fn rig(row: &Row) -> Result<Rig, SqlError> {
    let merge_strategy = match row.opt_text("merge_strategy")?.as_deref() {
        None => None,
        Some("direct") => Some(MergeStrategy::Direct),
        Some("pr") => Some(MergeStrategy::Pr),
        Some(_) => return Err(bad("merge_strategy", "direct or pr")),
    };
    Ok(Rig {
        rig_id: row.text("rig_id")?,
        name: row.text("name")?,
        git_url: row.text("git_url")?,
        default_branch: row.text("default_branch")?,
        merge_strategy,
        created_at: row.text("created_at")?,
    })
}

/// Columns of `bead_events` (alias `e`).
pub const BEAD_EVENT_COLUMNS: &str = "e.bead_event_id, e.bead_id, e.agent_id, e.event_type, \
     e.old_value, e.new_value, e.metadata, e.created_at";

pub fn bead_event(row: &Row) -> Result<BeadEvent, SqlError> {
    Ok(BeadEvent {
        bead_event_id: row.text("bead_event_id")?,
        bead_id: row.text("bead_id")?,
        agent_id: row.opt_text("agent_id")?,
        event_type: row.text("event_type")?,
        old_value: row.opt_text("old_value")?,
        new_value: row.opt_text("new_value")?,
        metadata: json_object(row, "metadata")?,
        created_at: row.text("created_at")?,
    })
}
