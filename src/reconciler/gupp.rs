//! reconcileGUPP (GASTOWN-DOMAIN.md 3.7), the stuck-agent detector of the Gas Town Universal
//! Propulsion Principle ("if there is work on your hook, you must run it"). A working or stalled
//! worker whose activity clock (last SDK event, else last heartbeat) stands still is warned after
//! 15 minutes, escalated after 1 hour and force-stopped after 2 hours. Nothing runs while
//! draining.
//!
//! The force stop happens once per stall: not again while the agent is `stalled` with a
//! `stalled_at` newer than its activity clock (applying the stop's transition sets `stalled_at`).
//! The original re-issued the transition, the container stop call and the triage request every
//! tick while the agent stayed silent. A force stop the container did not confirm (the call
//! failed or was not sent; a 404 is a confirmation: the agent is gone) puts the agent back to
//! `working` when it is settled, so the next tick force-stops it again, until one holds.

use super::constants::{
    GUPP_ESCALATE_MS, GUPP_FORCE_STOP_MS, NUDGE_DEDUPE_WINDOW_MS, RECONCILER_GUPP_WARN_MS,
};
use super::snapshot::Snapshot;
use super::Options;
use crate::vocabulary::actions::{Action, NudgeTier};
use crate::vocabulary::model::{Agent, AgentRole, AgentStatus, TriageType};
use crate::vocabulary::time::{parse_iso, Millis};

const WARN_MESSAGE: &str = "GUPP check: there is work on your hook and no activity for over 15 \
     minutes. Check your progress and keep going, or report what is blocking you.";
const ESCALATE_MESSAGE: &str = "GUPP escalation: no activity on your hooked work for over an \
     hour. Wrap up and call gt_done, or report that you are stuck.";

/// The reason of the GUPP force stop's `stop_agent` (settling tells it from other stops).
pub const FORCE_STOP_REASON: &str = "exceeded 2h GUPP limit";

pub fn reconcile(snapshot: &Snapshot, options: &Options, now: Millis) -> Vec<Action> {
    let mut out = Vec::new();
    if options.draining {
        return out;
    }
    for agent in snapshot.agents() {
        check(snapshot, agent, now, &mut out);
    }
    out
}

fn check(snapshot: &Snapshot, agent: &Agent, now: Millis, out: &mut Vec<Action>) {
    if agent.role == AgentRole::Mayor
        || !matches!(agent.status, AgentStatus::Working | AgentStatus::Stalled)
    {
        return;
    }
    // No clock: reconcileAgents handles it. An unreadable or future clock proves nothing.
    let Some(active_at) = agent
        .last_event_at
        .as_deref()
        .or(agent.last_activity_at.as_deref())
        .and_then(parse_iso)
    else {
        return;
    };
    let elapsed = now - active_at;
    if elapsed < 0 {
        return;
    }
    let agent_id = &agent.agent_id;
    let nudged = |tier: NudgeTier| {
        snapshot.nudged_since(agent_id, tier.source(), now, NUDGE_DEDUPE_WINDOW_MS)
    };
    let triage = |reason: &str| Action::CreateTriageRequest {
        agent_id: agent_id.clone(),
        triage_type: TriageType::StuckAgent,
        reason: reason.to_owned(),
    };
    if elapsed > GUPP_FORCE_STOP_MS {
        if stopped_for_this_stall(agent, active_at) {
            return;
        }
        out.push(Action::TransitionAgent {
            agent_id: agent_id.clone(),
            from: Some(agent.status),
            to: AgentStatus::Stalled,
            reason: "GUPP force stop — no SDK activity for 2h".to_owned(),
        });
        out.push(Action::StopAgent {
            agent_id: agent_id.clone(),
            reason: FORCE_STOP_REASON.to_owned(),
        });
        out.push(triage("GUPP force stop"));
    } else if elapsed > GUPP_ESCALATE_MS {
        if !nudged(NudgeTier::Escalate) {
            out.push(nudge(agent_id, NudgeTier::Escalate, ESCALATE_MESSAGE));
            out.push(triage("GUPP escalation"));
        }
    } else if elapsed > RECONCILER_GUPP_WARN_MS
        && agent.active_tools.is_empty()
        && !nudged(NudgeTier::Warn)
    {
        out.push(nudge(agent_id, NudgeTier::Warn, WARN_MESSAGE));
    }
}

/// Whether the agent was already stopped after its last activity.
fn stopped_for_this_stall(agent: &Agent, active_at: Millis) -> bool {
    agent.status == AgentStatus::Stalled
        && agent
            .stalled_at
            .as_deref()
            .and_then(parse_iso)
            .is_some_and(|stalled_at| stalled_at > active_at)
}

fn nudge(agent_id: &str, tier: NudgeTier, message: &str) -> Action {
    Action::SendNudge {
        agent_id: agent_id.to_owned(),
        message: message.to_owned(),
        tier,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconciler::snapshot::SnapshotBuilder;
    use crate::testing::snapshot::{self, *};
    use crate::vocabulary::model::BeadStatus;
    use crate::vocabulary::time::{iso, HOUR, MINUTE};

    /// A worker on bead `b` whose last SDK event was at `T0`.
    fn worker(status: AgentStatus) -> AgentFixture {
        polecat("a", "r").status(status).hook("b").event_at(T0)
    }

    fn town(agent: AgentFixture) -> SnapshotBuilder {
        SnapshotBuilder::new()
            .bead(issue("b", "r").status(BeadStatus::InProgress))
            .agent(agent)
    }

    fn run(b: SnapshotBuilder, now: Millis) -> Vec<Action> {
        reconcile(&b.build(), &Options::default(), now)
    }

    fn types(actions: &[Action]) -> Vec<&'static str> {
        actions.iter().map(Action::type_name).collect()
    }

    #[test]
    fn warns_after_strictly_more_than_15_minutes_unless_mid_tool_call() {
        let b = town(worker(AgentStatus::Working));
        assert_eq!(run(b.clone(), T0 + 15 * MINUTE), []);
        assert_eq!(
            run(b, T0 + 15 * MINUTE + 1),
            [Action::SendNudge {
                agent_id: "a".into(),
                message: WARN_MESSAGE.into(),
                tier: NudgeTier::Warn,
            }]
        );
        let busy = town(worker(AgentStatus::Working).tools(&["bash"]));
        assert_eq!(run(busy, T0 + 20 * MINUTE), []);
    }

    #[test]
    fn escalates_after_strictly_more_than_an_hour_even_mid_tool_call() {
        let b = town(worker(AgentStatus::Working).tools(&["bash"]));
        assert_eq!(run(b.clone(), T0 + HOUR), []);
        let out = run(b, T0 + HOUR + 1);
        assert_eq!(types(&out), ["send_nudge", "create_triage_request"]);
        assert!(matches!(
            &out[0],
            Action::SendNudge {
                tier: NudgeTier::Escalate,
                ..
            }
        ));
        assert_eq!(
            out[1],
            Action::CreateTriageRequest {
                agent_id: "a".into(),
                triage_type: TriageType::StuckAgent,
                reason: "GUPP escalation".into(),
            }
        );
    }

    #[test]
    fn a_tier_is_not_repeated_within_60_minutes_of_its_last_nudge() {
        let now = T0 + 30 * MINUTE;
        let nudged = |at: &str, source: &str| {
            town(worker(AgentStatus::Working)).nudge(snapshot::nudge("n", "a", source, at))
        };
        assert_eq!(run(nudged(&iso(now - HOUR), "reconciler:warn"), now), []);
        assert_eq!(
            run(nudged(&iso(now - HOUR - 1), "reconciler:warn"), now).len(),
            1
        );
        // Old rows use SQLite's space-separated format (#1412).
        let sqlite_time = iso(now - 10 * MINUTE).replace('T', " ")[..19].to_owned();
        assert_eq!(run(nudged(&sqlite_time, "reconciler:warn"), now), []);
        // Another tier's nudge does not count.
        assert_eq!(run(nudged(&iso(now), "reconciler:escalate"), now).len(), 1);
        let later = T0 + 90 * MINUTE;
        assert_eq!(run(nudged(&iso(later), "reconciler:escalate"), later), []);
    }

    #[test]
    fn force_stops_after_strictly_more_than_two_hours() {
        let b = town(worker(AgentStatus::Working));
        assert_eq!(
            types(&run(b.clone(), T0 + 2 * HOUR)),
            ["send_nudge", "create_triage_request"]
        );
        assert_eq!(
            run(b, T0 + 2 * HOUR + 1),
            [
                Action::TransitionAgent {
                    agent_id: "a".into(),
                    from: Some(AgentStatus::Working),
                    to: AgentStatus::Stalled,
                    reason: "GUPP force stop — no SDK activity for 2h".into(),
                },
                Action::StopAgent {
                    agent_id: "a".into(),
                    reason: "exceeded 2h GUPP limit".into(),
                },
                Action::CreateTriageRequest {
                    agent_id: "a".into(),
                    triage_type: TriageType::StuckAgent,
                    reason: "GUPP force stop".into(),
                },
            ]
        );
    }

    #[test]
    fn force_stops_once_per_stall() {
        let now = T0 + 3 * HOUR;
        let stopped = town(worker(AgentStatus::Stalled).stalled_at(T0 + 2 * HOUR + 5));
        assert_eq!(run(stopped, now), [], "already stopped for this stall");
        let legacy = town(worker(AgentStatus::Stalled));
        assert_eq!(
            types(&run(legacy, now))[..2],
            ["transition_agent", "stop_agent"]
        );
        // Activity after an earlier stop starts a new stall.
        let again = town(
            polecat("a", "r")
                .status(AgentStatus::Stalled)
                .hook("b")
                .stalled_at(T0 - MINUTE)
                .event_at(T0),
        );
        assert_eq!(
            types(&run(again, now))[..2],
            ["transition_agent", "stop_agent"]
        );
        let working = town(worker(AgentStatus::Working).stalled_at(T0 + 2 * HOUR + 5));
        assert_eq!(run(working, now).len(), 3, "a working agent is not stopped");
    }

    #[test]
    fn the_clock_is_the_last_sdk_event_then_the_last_heartbeat() {
        let heartbeat_only = town(
            polecat("a", "r")
                .status(AgentStatus::Working)
                .hook("b")
                .active(T0),
        );
        assert_eq!(run(heartbeat_only, T0 + 16 * MINUTE).len(), 1);
        let recent_event = town(worker(AgentStatus::Working).active(T0 - 5 * HOUR));
        assert_eq!(run(recent_event, T0 + 14 * MINUTE), []);
    }

    #[test]
    fn skips_the_mayor_idle_agents_missing_unreadable_or_future_clocks_and_drains() {
        let late = T0 + 5 * HOUR;
        for agent in [
            mayor("a").status(AgentStatus::Working).event_at(T0),
            worker(AgentStatus::Idle),
            polecat("a", "r").status(AgentStatus::Working).hook("b"),
            worker(AgentStatus::Working).event_at(late + 1),
        ] {
            assert_eq!(run(town(agent.clone()), late), [], "{agent:?}");
        }
        let mut unreadable = worker(AgentStatus::Working).agent();
        unreadable.last_event_at = Some("not a time".into());
        assert_eq!(
            run(town(worker(AgentStatus::Working)).agent(unreadable), late),
            []
        );
        let drained = town(worker(AgentStatus::Working)).build();
        let options = Options {
            draining: true,
            ..Options::default()
        };
        assert_eq!(reconcile(&drained, &options, late), []);
    }
}
