//! Watching the container before a tick (GASTOWN-DOMAIN.md 5.2 steps 1-2): a health ping when
//! the town needs its container, and the status of every working or stalled agent, where any
//! status other than `running` is recorded as a `container_status` event for the drain.
//! Failures here are logged and never stop the tick.

use super::container::ProcessState;
use super::perform::Remotes;
use crate::domain::Ctx;
use crate::events::ContainerStatus;
use crate::ports::Http;
use crate::sql::Sql;
use crate::store::events::upsert_container_status;
use crate::time::{iso, MINUTE};
use crate::{params, sql::SqlError};

/// Whether the container should be pinged: the town has rigs and active work, is draining, or
/// got a rig in the last 5 minutes.
pub fn wants_health_ping(
    sql: &dyn Sql,
    active: bool,
    draining: bool,
    now: i64,
) -> Result<bool, SqlError> {
    let row = sql.one(
        "SELECT COUNT(*) AS rigs, COALESCE(MAX(created_at), '') AS newest FROM rigs",
        &[],
    )?;
    if row.int("rigs")? == 0 {
        return Ok(false);
    }
    Ok(active || draining || row.text("newest")? > iso(now - 5 * MINUTE))
}

/// Pings `GET /health`; the answer is only logged, at `debug` (a line per active town every few
/// seconds otherwise); a failed ping is logged as a failed outbound call.
pub async fn health_ping<H: Http>(http: &H, remotes: &Remotes) {
    let container = remotes.container(http);
    if let Ok(status) = container.health().await {
        crate::log::debug("container_health", &[("status", &status)]);
    }
}

/// Asks the container about each working or stalled agent, at most `limit` at once, and records
/// what is not running.
pub async fn observe_agents<H: Http>(ctx: &Ctx<'_>, http: &H, remotes: &Remotes, limit: usize) {
    let agents: Vec<String> = match ctx.sql.query(
        "SELECT bead_id FROM agent_metadata WHERE status IN ('working', 'stalled') ORDER BY bead_id",
        &params![],
    ) {
        Ok(rows) => rows.into_iter().filter_map(|r| r.text("bead_id").ok()).collect(),
        Err(e) => {
            crate::log::error("observe_agents_failed", &[("error", &e.to_string())]);
            return;
        }
    };
    let container = remotes.container(http);
    let answers = crate::tick::concurrency::run_bounded(
        agents.iter().map(|a| container.status(a)).collect(),
        limit,
    )
    .await;
    for (agent_id, answer) in agents.iter().zip(answers) {
        let Ok(process) = answer else { continue };
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
}
