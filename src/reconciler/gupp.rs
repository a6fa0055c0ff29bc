//! reconcileGUPP (GASTOWN-DOMAIN.md 3.7), the stuck-agent detector of the Gas Town Universal
//! Propulsion Principle ("if there is work on your hook, you must run it"). A working or stalled
//! worker whose activity clock (last SDK event, else last heartbeat) stands still is warned after
//! 15 minutes, escalated after 1 hour and force-stopped after 2 hours. Nothing runs while
//! draining.
//!
//! The force stop happens once per stall: not again while the agent is `stalled` with a
//! `stalled_at` newer than its activity clock (applying the stop's transition sets `stalled_at`).
//! The original re-issued the transition, the container stop call and the triage request every
//! tick while the agent stayed silent.

use super::constants::{
    GUPP_ESCALATE_MS, GUPP_FORCE_STOP_MS, GUPP_WARN_MS, NUDGE_DEDUPE_WINDOW_MS,
};
use super::snapshot::Snapshot;
use super::Options;
use crate::actions::{Action, NudgeTier};
use crate::domain::model::{Agent, AgentRole, AgentStatus, TriageType};
use crate::time::{parse_iso, Millis};

const WARN_MESSAGE: &str = "GUPP check: there is work on your hook and no activity for over 15 \
     minutes. Check your progress and keep going, or report what is blocking you.";
const ESCALATE_MESSAGE: &str = "GUPP escalation: no activity on your hooked work for over an \
     hour. Wrap up and call gt_done, or report that you are stuck.";

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
            reason: "exceeded 2h GUPP limit".to_owned(),
        });
        out.push(triage("GUPP force stop"));
    } else if elapsed > GUPP_ESCALATE_MS {
        if !nudged(NudgeTier::Escalate) {
            out.push(nudge(agent_id, NudgeTier::Escalate, ESCALATE_MESSAGE));
            out.push(triage("GUPP escalation"));
        }
    } else if elapsed > GUPP_WARN_MS && agent.active_tools.is_empty() && !nudged(NudgeTier::Warn) {
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
