//! reconcileAgents (GASTOWN-DOMAIN.md 3.3): working agents that stopped heartbeating go idle,
//! and idle agents hooked to finished or vanished beads are unhooked.

use super::constants::HEARTBEAT_STALE_MS;
use super::snapshot::Snapshot;
use super::timing::is_stale;
use super::Options;
use crate::vocabulary::actions::Action;
use crate::vocabulary::model::{Agent, AgentRole, AgentStatus};
use crate::vocabulary::time::Millis;

/// Rule A (skipped while draining: heartbeats freeze during a drain), then rule B.
pub fn reconcile(snapshot: &Snapshot, options: &Options, now: Millis) -> Vec<Action> {
    let mut out = Vec::new();
    if !options.draining {
        for agent in snapshot.agents() {
            lost_heartbeat(agent, now, &mut out);
        }
    }
    for agent in snapshot.agents() {
        stale_hook(snapshot, agent, &mut out);
    }
    out
}

/// A: a working agent (not the mayor) goes idle when it never heartbeated, missed three
/// heartbeats, or has no hook left. The hook is kept: B3 and R6 recover the bead.
fn lost_heartbeat(agent: &Agent, now: Millis, out: &mut Vec<Action>) {
    if agent.status != AgentStatus::Working || agent.role == AgentRole::Mayor {
        return;
    }
    let reason = match &agent.last_activity_at {
        None => "no heartbeat received since dispatch",
        Some(at) if is_stale(Some(at), now, HEARTBEAT_STALE_MS) => {
            "heartbeat lost (3 missed cycles)"
        }
        Some(_) if agent.current_hook_bead_id.is_none() => {
            "working agent has no hook (gt_done already completed)"
        }
        Some(_) => return,
    };
    out.push(Action::TransitionAgent {
        agent_id: agent.agent_id.clone(),
        from: Some(AgentStatus::Working),
        to: AgentStatus::Idle,
        reason: reason.to_owned(),
    });
}

/// B: an idle agent hooked to a bead that is gone or terminal is unhooked and its checkpoint
/// cleared.
fn stale_hook(snapshot: &Snapshot, agent: &Agent, out: &mut Vec<Action>) {
    let (AgentStatus::Idle, Some(hook)) = (agent.status, &agent.current_hook_bead_id) else {
        return;
    };
    let reason = match snapshot.bead(hook) {
        None => "hooked bead does not exist",
        Some(b) if b.status.is_terminal() => "hooked bead is terminal",
        Some(_) => return,
    };
    out.push(Action::UnhookAgent {
        agent_id: agent.agent_id.clone(),
        reason: reason.to_owned(),
    });
    out.push(Action::ClearAgentCheckpoint {
        agent_id: agent.agent_id.clone(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconciler::snapshot::SnapshotBuilder;
    use crate::testing::snapshot::*;
    use crate::vocabulary::model::BeadStatus;
    use crate::vocabulary::time::SECOND;

    fn run(b: SnapshotBuilder, draining: bool, now: Millis) -> Vec<Action> {
        let opts = Options {
            draining,
            ..Options::default()
        };
        reconcile(&b.build(), &opts, now)
    }

    fn to_idle(agent: &str, reason: &str) -> Action {
        Action::TransitionAgent {
            agent_id: agent.into(),
            from: Some(AgentStatus::Working),
            to: AgentStatus::Idle,
            reason: reason.into(),
        }
    }

    fn working(id: &str) -> AgentFixture {
        polecat(id, "r").status(AgentStatus::Working).hook("b")
    }

    #[test]
    fn a_heartbeat_is_lost_after_strictly_more_than_90_seconds() {
        let town = SnapshotBuilder::new()
            .bead(issue("b", "r").status(BeadStatus::InProgress))
            .agent(working("a").active(T0));
        assert_eq!(run(town.clone(), false, T0 + 90 * SECOND), []);
        assert_eq!(
            run(town, false, T0 + 90 * SECOND + 1),
            [to_idle("a", "heartbeat lost (3 missed cycles)")]
        );
    }

    #[test]
    fn no_heartbeat_at_all_or_no_hook_sends_a_working_agent_idle() {
        let town = SnapshotBuilder::new().agent(working("never")).agent(
            polecat("done", "r")
                .status(AgentStatus::Working)
                .active(T0)
                .created(T0 + 1),
        );
        assert_eq!(
            run(town, false, T0),
            [
                to_idle("never", "no heartbeat received since dispatch"),
                to_idle(
                    "done",
                    "working agent has no hook (gt_done already completed)"
                ),
            ]
        );
    }

    #[test]
    fn the_mayor_other_statuses_and_a_drain_are_left_alone() {
        let town = SnapshotBuilder::new()
            .agent(mayor("m").status(AgentStatus::Working))
            .agent(polecat("s", "r").status(AgentStatus::Stalled))
            .agent(working("a"));
        assert_eq!(run(town.clone(), true, T0), []);
        assert_eq!(
            run(town, false, T0),
            [to_idle("a", "no heartbeat received since dispatch")]
        );
    }

    #[test]
    fn idle_agents_hooked_to_missing_or_terminal_beads_are_unhooked_even_while_draining() {
        let town = SnapshotBuilder::new()
            .bead(issue("closed", "r").status(BeadStatus::Closed))
            .bead(issue("failed", "r").status(BeadStatus::Failed))
            .bead(issue("live", "r").status(BeadStatus::InProgress))
            .agent(polecat("a1", "r").hook("gone"))
            .agent(polecat("a2", "r").hook("closed").created(T0 + 1))
            .agent(refinery("a3", "r").hook("failed").created(T0 + 2))
            .agent(polecat("a4", "r").hook("live").created(T0 + 3))
            .agent(
                polecat("a5", "r")
                    .status(AgentStatus::Stalled)
                    .hook("closed")
                    .created(T0 + 4),
            );
        let unhook = |a: &str, reason: &str| {
            [
                Action::UnhookAgent {
                    agent_id: a.into(),
                    reason: reason.into(),
                },
                Action::ClearAgentCheckpoint { agent_id: a.into() },
            ]
        };
        let expected: Vec<Action> = [
            unhook("a1", "hooked bead does not exist"),
            unhook("a2", "hooked bead is terminal"),
            unhook("a3", "hooked bead is terminal"),
        ]
        .concat();
        assert_eq!(run(town, true, T0), expected);
    }
}
