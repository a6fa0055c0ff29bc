//! Watching the container before a tick (GASTOWN-DOMAIN.md 5.2 step 2): the status of every
//! working or stalled agent, where any status other than `running` is recorded as a
//! `container_status` event for the drain: `not_found` for a 404 (the container lost the
//! agent), `unknown` when the container answered without saying (another non-2xx, an
//! unreadable body, a status it does not define), which the town records and does not act on.
//! A call that got no answer (timeout, network, not configured) is logged and records nothing.
//! Failures here never stop the tick.
//!
//! Unlike the original, which asked every agent every tick with no deadline:
//! - only agents the town has heard nothing of for `observe_interval_ms` are due: no status
//!   answer (`last_observed_at`) and no heartbeat or call of their own (`last_activity_at`).
//!   A heartbeating agent is known to be running, and an exit is reported by the container; the
//!   call is the safety net for a lost report. A steady town of heartbeating agents makes none.
//! - at most `observe_budget` agents a tick, the least recently observed first, so each due
//!   agent is seen within `ceil(due / budget)` ticks;
//! - no call starts or waits past `observe_deadline_ms` from the phase's start, so a hung
//!   container delays the tick by that much.
//!
//! Due agents not asked this tick are counted in one `observe_deferred` line and come first
//! next tick.

use crate::domain::Ctx;
use crate::effects::container::{AgentProcess, ContainerTimeouts, ProcessState};
use crate::effects::remotes::Remotes;
use crate::effects::CallError;
use crate::ports::{Clock, Http};
use crate::sql::{Sql, SqlError, Value};
use crate::store::events::upsert_container_status;
use crate::vocabulary::events::ContainerStatus;
use crate::vocabulary::time::{iso, Millis};

/// What the observation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Observed {
    /// Status calls made (each one subrequest).
    pub asked: usize,
    /// Working or stalled agents not asked this tick (over the budget or past the deadline).
    pub deferred: usize,
}

/// Asks the container about up to `budget` working or stalled agents, the least recently
/// observed first, at most `limit` at once, and records what is not running.
pub async fn observe_agents<H: Http>(
    ctx: &Ctx<'_>,
    clock: &dyn Clock,
    http: &H,
    remotes: &Remotes,
    limit: usize,
    budget: usize,
) -> Observed {
    let (agents, total) = match due(ctx.sql, budget, ctx.now, remotes.observe_interval_ms) {
        Ok(found) => found,
        Err(e) => {
            crate::log::error("observe_agents_failed", &[("error", &e.to_string())]);
            return Observed::default();
        }
    };
    let deadline = clock.now_ms() + remotes.observe_deadline_ms;
    let answers = crate::concurrency::run_bounded(
        agents
            .iter()
            .map(|a| async move {
                let left = deadline - clock.now_ms();
                if left <= 0 {
                    return None;
                }
                let timeouts = ContainerTimeouts {
                    status_ms: remotes.container_timeouts.status_ms.min(left),
                    ..remotes.container_timeouts
                };
                Some(
                    remotes
                        .container(http)
                        .with_timeouts(timeouts)
                        .status(a)
                        .await,
                )
            })
            .collect(),
        limit,
    )
    .await;
    let asked: Vec<&str> = agents
        .iter()
        .zip(&answers)
        .filter(|(_, answer)| answer.is_some())
        .map(|(a, _)| a.as_str())
        .collect();
    if let Err(e) = mark_observed(ctx.sql, &asked, ctx.now) {
        crate::log::error("observe_mark_failed", &[("error", &e.to_string())]);
    }
    let observed = Observed {
        asked: asked.len(),
        deferred: total - asked.len(),
    };
    if observed.deferred > 0 {
        crate::log::warn(
            "observe_deferred",
            &[
                ("asked", &observed.asked.to_string()),
                ("deferred", &observed.deferred.to_string()),
            ],
        );
    }
    for (agent_id, answer) in agents.iter().zip(answers) {
        let Some(answer) = answer else { continue };
        let process = match answer {
            Ok(process) => process,
            Err(CallError::Timeout | CallError::Network(_) | CallError::Refused(_)) => continue,
            Err(_) => AgentProcess {
                state: ProcessState::Unknown(String::new()),
                exit_reason: None,
            },
        };
        if process.state == ProcessState::Running {
            continue;
        }
        let status = ContainerStatus {
            status: process.state.as_str().to_owned(),
            exit_reason: process.exit_reason,
        };
        if let Err(e) =
            upsert_container_status(ctx.sql, &ctx.ids.new_id(), agent_id, &status, ctx.now)
        {
            crate::log::error(
                "observe_record_failed",
                &[("agent_id", agent_id), ("error", &e.to_string())],
            );
        }
    }
    observed
}

/// Up to `budget` due agents (working or stalled, unheard of for `interval`; 0: all), the
/// least recently observed first (never observed before all), and how many are due in all.
fn due(
    sql: &dyn Sql,
    budget: usize,
    now: Millis,
    interval: Millis,
) -> Result<(Vec<String>, usize), SqlError> {
    let since = now - interval;
    let (unheard, mut params) = if interval > 0 {
        (
            "AND (last_observed_at IS NULL OR last_observed_at <= ?)
             AND (last_activity_at IS NULL OR last_activity_at <= ?)",
            vec![Value::from(since), Value::from(iso(since))],
        )
    } else {
        ("", Vec::new())
    };
    let due = format!("FROM agent_metadata WHERE status IN ('working', 'stalled') {unheard}");
    let total = sql
        .one(&format!("SELECT COUNT(*) AS n {due}"), &params)?
        .int("n")? as usize;
    params.push(Value::from(budget as i64));
    let agents = sql
        .query(
            &format!(
                "SELECT bead_id {due}
                 ORDER BY last_observed_at IS NOT NULL, last_observed_at, bead_id LIMIT ?"
            ),
            &params,
        )?
        .into_iter()
        .map(|r| r.text("bead_id"))
        .collect::<Result<_, _>>()?;
    Ok((agents, total))
}

/// Stamps the agents just asked about, in one statement.
fn mark_observed(sql: &dyn Sql, agents: &[&str], now: Millis) -> Result<(), SqlError> {
    if agents.is_empty() {
        return Ok(());
    }
    sql.execute(
        "UPDATE agent_metadata SET last_observed_at = ?
         WHERE bead_id IN (SELECT value FROM json_each(?))",
        &[now.into(), crate::sql::id_list(agents)],
    )?;
    Ok(())
}
