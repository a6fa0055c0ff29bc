//! A deleted town's agents: every agent the container may still be running (working, stalled
//! or waiting) is sent a stop, so nothing keeps working for a town that is gone. Best effort:
//! the town's rows are already deleted, so a stop that fails is logged and not retried; a 404
//! is an agent already gone, which is what the stop wants.

use super::remotes::{Remotes, Tally};
use crate::concurrency::run_bounded;
use crate::ports::Http;
use crate::vocabulary::model::{Agent, AgentStatus};

/// The agents of `agents` the container may still be running.
pub fn running(agents: &[Agent]) -> Vec<String> {
    agents
        .iter()
        .filter(|a| {
            matches!(
                a.status,
                AgentStatus::Working | AgentStatus::Stalled | AgentStatus::Waiting
            )
        })
        .map(|a| a.agent_id.clone())
        .collect()
}

/// Stops each of `agent_ids` in the town's container, at most the side effects' concurrency
/// at once; returns how it went.
pub async fn stop_all<H: Http>(http: &H, remotes: &Remotes, agent_ids: &[String]) -> Tally {
    let container = remotes.container(http);
    let stops = agent_ids.iter().map(|id| container.stop(id)).collect();
    let results = run_bounded(stops, remotes.concurrency).await;
    let failed = results.iter().filter(|r| r.is_err()).count() as u64;
    let tally = Tally {
        attempted: results.len() as u64,
        succeeded: results.len() as u64 - failed,
        failed,
    };
    crate::log::info(
        "deleted_town_agents_stopped",
        &[
            ("stopped", &tally.succeeded.to_string()),
            ("failed", &tally.failed.to_string()),
        ],
    );
    tally
}
