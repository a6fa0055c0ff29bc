//! What happens when an agent's process ends (GASTOWN-DOMAIN.md 2.2): the agent's own report
//! (`agent_completed`) and the container's observation (`container_status`).

use super::beads;
use super::error::Result;
use super::{agents, Ctx};
use crate::vocabulary::events::{AgentCompleted, ContainerStatus, ExitStatus};
use crate::vocabulary::model::{AgentRole, AgentStatus, BeadStatus, FailureReason};
use crate::vocabulary::time::{parse_iso, Millis, SECOND};

/// The reason a completed exit gives when the container was evicted.
pub const EVICTION_REASON: &str = "container eviction";

/// A `not_found` status is ignored this long after the agent's last activity: the status probe
/// can answer 404 before a starting process registers.
pub const NOT_FOUND_GRACE_MS: Millis = 180 * SECOND;

/// Applies `agent_completed`. A missing agent is ignored.
///
/// A refinery's hook and bead are left alone (its `gt_done` may still be on the way). Anyone
/// else with a hook: a `failed` exit fails the bead (`agent_failed`, source `container`); a
/// `completed` exit with the bead still `in_progress` reopens it without assignee when the
/// reason is a container eviction, and otherwise leaves it (the reconciler recovers it); then
/// the agent is unhooked. Finally the agent becomes idle unless it is working on a hook (it was
/// already re-dispatched), and its dispatch attempts reset (refineries keep theirs).
pub fn completed(ctx: &Ctx<'_>, agent_id: &str, c: &AgentCompleted) -> Result<()> {
    let Some(agent) = crate::store::agents::get(ctx.sql, agent_id)? else {
        crate::log::warn("agent_completed_unknown_agent", &[("agent_id", agent_id)]);
        return Ok(());
    };
    let hooked = agent.current_hook_bead_id.clone();
    let mut agent = match hooked.as_deref() {
        Some(hooked) if agent.role != AgentRole::Refinery => {
            match c.status {
                ExitStatus::Failed => {
                    let reason = FailureReason::new(
                        "agent_failed",
                        c.reason.as_deref().unwrap_or("the agent process failed"),
                        "container",
                    );
                    beads::set_status(ctx, hooked, BeadStatus::Failed, agent_id, Some(&reason))?;
                }
                ExitStatus::Completed => {
                    let bead = beads::get(ctx, hooked)?;
                    if bead.status == BeadStatus::InProgress
                        && c.reason.as_deref() == Some(EVICTION_REASON)
                    {
                        beads::set_status_of(ctx, bead, BeadStatus::Open, agent_id, None)?;
                        beads::clear_assignee(ctx, hooked)?;
                    }
                }
            }
            // Read again: clearing the bead's assignee may have unhooked the agent already.
            agents::unhook(ctx, agent_id)?
        }
        _ => agent,
    };
    let redispatched = agent.status == AgentStatus::Working && agent.current_hook_bead_id.is_some();
    if !redispatched {
        agent = agents::set_status_of(ctx, agent, AgentStatus::Idle)?;
    }
    if agent.role != AgentRole::Refinery {
        agents::reset_dispatch_attempts_of(ctx, agent)?;
    }
    Ok(())
}

/// Applies `container_status`. Ignored for a missing agent, and for `not_found` within 180 s
/// of the agent's last activity. Only a working or stalled agent whose process `exited` or is
/// `not_found` changes: a refinery hooked to an MR that is already closed or failed is unhooked
/// (idle, checkpoint cleared); a refinery hooked to a live MR becomes idle and keeps its hook
/// (the reconciler re-dispatches it); anyone else becomes idle (its bead stays `in_progress`
/// for the reconciler to recover).
pub fn container_status(ctx: &Ctx<'_>, agent_id: &str, s: &ContainerStatus) -> Result<()> {
    let Some(agent) = crate::store::agents::get(ctx.sql, agent_id)? else {
        crate::log::warn("container_status_unknown_agent", &[("agent_id", agent_id)]);
        return Ok(());
    };
    let gone = matches!(s.status.as_str(), "exited" | "not_found");
    if s.status == "not_found" {
        let recent = agent
            .last_activity_at
            .as_deref()
            .and_then(parse_iso)
            .is_some_and(|at| ctx.now - at < NOT_FOUND_GRACE_MS);
        if recent {
            return Ok(());
        }
    }
    if !gone || !matches!(agent.status, AgentStatus::Working | AgentStatus::Stalled) {
        return Ok(());
    }
    match (agent.role, agent.current_hook_bead_id.as_deref()) {
        (AgentRole::Refinery, Some(mr_id)) => {
            let finished =
                crate::store::beads::get(ctx.sql, mr_id)?.is_none_or(|mr| mr.status.is_terminal());
            if finished {
                agents::unhook_of(ctx, agent)?;
            } else {
                agents::set_status_of(ctx, agent, AgentStatus::Idle)?;
            }
        }
        _ => {
            agents::set_status_of(ctx, agent, AgentStatus::Idle)?;
        }
    }
    Ok(())
}
