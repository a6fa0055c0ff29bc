//! What an operator sees of a town (GASTOWN-DOMAIN.md section 9): the alarm, agent and bead
//! counts, patrol counts, the last tick's metrics, recent bead events, draining, every agent and
//! every live bead. Read-only.

use crate::domain::triage::Batching;
use crate::metrics::layout;
use crate::metrics::point::DataPoint;
use crate::params;
use crate::sql::{Sql, SqlError};
use crate::store::town::Town;
use crate::vocabulary::time::{iso, Millis, MINUTE, SECOND};
use serde_json::{json, Map, Value as Json};

/// The alarm as the runtime reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlarmView {
    pub next_fire_at: Option<Millis>,
    pub interval_ms: Millis,
    pub active: bool,
    pub tick: TickView,
}

/// The town's one-tick-at-a-time lock as the runtime reports it (this instance's memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TickView {
    /// When the tick that holds the lock started.
    pub running_since: Option<Millis>,
    /// Ticks waiting for it (the alarm's, or debug ticks).
    pub waiting: u32,
    /// When the last tick started (a fact's wake waits for a second after it).
    pub last_started_at: Option<Millis>,
}

impl AlarmView {
    /// `active (5s)` / `idle (5m)`.
    pub fn label(&self) -> String {
        let d = self.interval_ms;
        let amount = if d % MINUTE == 0 && d >= MINUTE {
            format!("{}m", d / MINUTE)
        } else {
            format!("{}s", d / SECOND)
        };
        format!("{} ({amount})", if self.active { "active" } else { "idle" })
    }
}

/// One recorded tick: when, and the point exactly as written, with names from the layout.
pub fn tick_json(at: &str, point: &DataPoint) -> Json {
    let named = layout::fields_of(&point.index)
        .map(|fields| Json::Object(point.named(fields)))
        .unwrap_or(Json::Null);
    json!({"at": at, "point": point, "metrics": named})
}

/// How many events waiting for a retry the status shows (the soonest first).
const RETRIES_SHOWN: u32 = 20;

/// The last `limit` ticks, newest first.
pub fn recent_ticks(sql: &dyn Sql, limit: u32) -> Result<Vec<Json>, SqlError> {
    sql.query(
        "SELECT at, point FROM tick_metrics ORDER BY tick_id DESC LIMIT ?",
        &params![limit],
    )?
    .into_iter()
    .map(|r| {
        let point: DataPoint =
            crate::json::from_slice(r.text("point")?.as_bytes()).map_err(|_| SqlError::Decode {
                column: "point".into(),
                wanted: "a data point",
            })?;
        Ok(tick_json(&r.text("at")?, &point))
    })
    .collect()
}

fn counts(
    sql: &dyn Sql,
    query: &str,
    binds: &[crate::sql::Value],
) -> Result<Map<String, Json>, SqlError> {
    sql.query(query, binds)?
        .into_iter()
        .map(|r| Ok((r.text("k")?, json!(r.int("n")?))))
        .collect()
}

/// The full status document.
pub fn status(sql: &dyn Sql, town: &Town, alarm: AlarmView, now: Millis) -> Result<Json, SqlError> {
    let mut agents = counts(
        sql,
        "SELECT status AS k, COUNT(*) AS n FROM agent_metadata GROUP BY status",
        &[],
    )?;
    for s in ["working", "waiting", "idle", "stalled", "dead"] {
        agents.entry(s).or_insert(json!(0));
    }
    let total: i64 = agents.values().filter_map(Json::as_i64).sum();
    agents.insert("total".into(), json!(total));

    let mut beads = counts(
        sql,
        "SELECT status AS k, COUNT(*) AS n FROM beads
         WHERE type NOT IN ('agent', 'message') GROUP BY status",
        &[],
    )?;
    for s in ["open", "in_progress", "in_review", "closed", "failed"] {
        beads.entry(s).or_insert(json!(0));
    }
    let triage = sql
        .one(
            "SELECT COUNT(*) AS n FROM beads WHERE type = 'issue' AND status = 'open'
               AND labels LIKE '%\"gt:triage-request\"%'",
            &[],
        )?
        .int("n")?;
    beads.insert("triage_requests".into(), json!(triage));

    let hour_ago = iso(now - 60 * MINUTE);
    let patrol = sql.one(
        "SELECT
           (SELECT COUNT(*) FROM agent_nudges WHERE source = 'reconciler:warn' AND created_at >= ?) AS gupp_warnings,
           (SELECT COUNT(*) FROM agent_nudges WHERE source = 'reconciler:escalate' AND created_at >= ?) AS gupp_escalations,
           (SELECT COUNT(*) FROM agent_metadata WHERE status = 'stalled') AS stalled_agents,
           (SELECT COUNT(*) FROM agent_metadata WHERE status = 'idle' AND current_hook_bead_id IS NOT NULL
              AND (last_activity_at IS NULL OR last_activity_at < ?)) AS orphaned_hooks",
        &params![hour_ago.as_str(), hour_ago.as_str(), iso(now - 5 * MINUTE)],
    )?;

    let recent_events: Vec<Json> = sql
        .query(
            "SELECT bead_id, agent_id, event_type, old_value, new_value, created_at
             FROM bead_events ORDER BY rowid DESC LIMIT 20",
            &[],
        )?
        .into_iter()
        .map(|r| r.to_json())
        .collect();

    let messages = crate::store::agents::status_messages(sql)?;
    let agent_dump: Vec<Json> = crate::store::agents::list(sql)?
        .into_iter()
        .map(|a| {
            let said = messages.iter().find(|(id, ..)| *id == a.agent_id);
            let mut shown = serde_json::to_value(&a).expect("agents serialize");
            shown["status_message"] = said.map(|(_, m, _)| m.as_str()).into();
            shown["status_message_at"] = said.map(|(.., at)| at.as_str()).into();
            shown
        })
        .collect();
    let bead_summary: Vec<Json> = sql
        .query(
            "SELECT bead_id, type, status, title, assignee_agent_bead_id, updated_at FROM beads
             WHERE type NOT IN ('agent') AND status NOT IN ('closed', 'failed')
             ORDER BY type, status, created_at",
            &[],
        )?
        .into_iter()
        .map(|r| r.to_json())
        .collect();

    let last_tick = recent_ticks(sql, 1)?
        .into_iter()
        .next()
        .unwrap_or(Json::Null);
    Ok(json!({
        "town_id": town.town_id,
        "now": iso(now),
        "alarm": {
            "next_fire_at": alarm.next_fire_at.map(iso),
            "interval_ms": alarm.interval_ms,
            "interval_label": alarm.label(),
        },
        "tick": {
            "running_since": alarm.tick.running_since.map(iso),
            "waiting": alarm.tick.waiting,
            "last_started_at": alarm.tick.last_started_at.map(iso),
        },
        "agents": agents,
        "beads": beads,
        "patrol": {
            "gupp_warnings": patrol.int("gupp_warnings")?,
            "gupp_escalations": patrol.int("gupp_escalations")?,
            "stalled_agents": patrol.int("stalled_agents")?,
            "orphaned_hooks": patrol.int("orphaned_hooks")?,
        },
        "triage": triage_json(sql, now, triage)?,
        "reconciler": last_tick,
        "recent_events": recent_events,
        "event_retries": crate::store::events::waiting_retries(sql, now, RETRIES_SHOWN)?
            .into_iter()
            .map(|r| json!({
                "event_id": r.event_id,
                "event_type": r.event_type,
                "retry_count": r.retry_count,
                "next_attempt_at": iso(r.next_attempt_at),
                "last_error": r.last_error,
            }))
            .collect::<Vec<_>>(),
        "draining": town.drain.is_some(),
        "drain_started_at": town.drain.as_ref().map(|d| iso(d.started_at)),
        "agent_meta": agent_dump,
        "bead_summary": bead_summary,
    }))
}

/// The triage loop's state: open requests, and whether they can be worked on (and if not,
/// why; such requests do not keep the alarm on the active interval).
fn triage_json(sql: &dyn Sql, now: Millis, open: i64) -> Result<Json, SqlError> {
    let state = crate::tick::activity::triage(sql, now).map_err(|e| match e {
        crate::domain::DomainError::Sql(e) => e,
        other => SqlError::Engine(other.to_string()),
    })?;
    let (batch, until) = match &state {
        Batching::InFlight { batch_id } | Batching::Waiting { batch_id } => {
            (Some(batch_id.as_str()), None)
        }
        Batching::CoolingDown { until } => (None, Some(iso(*until))),
        _ => (None, None),
    };
    Ok(json!({
        "open_requests": open,
        "loop": state.as_str(),
        "counts_as_active": state.is_workable(),
        "batch_id": batch,
        "cooldown_until": until,
    }))
}
