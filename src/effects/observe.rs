//! Watching the container before a tick (GASTOWN-DOMAIN.md 5.2 step 2): the status of every
//! working or stalled agent, where any status other than `running` is recorded as a
//! `container_status` event for the drain: `not_found` for a 404 (the container lost the
//! agent), `unknown` when the container answered without saying (another non-2xx, an
//! unreadable body, a status it does not define), which the town records and does not act on.
//! A call that got no answer (timeout, network, not configured) is logged and records nothing.
//! Failures here never stop the tick.

use super::container::{AgentProcess, ProcessState};
use super::perform::Remotes;
use super::CallError;
use crate::domain::Ctx;
use crate::events::ContainerStatus;
use crate::params;
use crate::ports::Http;
use crate::store::events::upsert_container_status;

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
    let answers = crate::concurrency::run_bounded(
        agents.iter().map(|a| container.status(a)).collect(),
        limit,
    )
    .await;
    for (agent_id, answer) in agents.iter().zip(answers) {
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
}
