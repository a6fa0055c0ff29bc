//! One budget of remote calls per tick (`TICK_SUBREQUEST_BUDGET`): the platform caps the
//! subrequests of one invocation (1,000 on the Workers Paid plan, which Cloudflare Containers
//! need; 50 on the free plan), and the upkeep, the observation and the side effects all count.
//! The upkeep (at most three calls) goes first, the observation takes at most half of what is
//! left (and its own budget, `TICK_OBSERVE_BUDGET`), and
//! the reconciler's side-effecting actions take the rest in emitted order, each at the most
//! calls its effect can make.
//!
//! An action that does not fit is not applied at all this tick (nor its synchronous part), so
//! the state still calls for it and the next tick's reconciler emits it again: deferred, never
//! lost. A deferred stop takes the other actions on its agent with it (the GUPP force stop's
//! transition and triage request), which would otherwise record a stop that was
//! never sent. What was deferred is counted in one `tick_calls_deferred` line.

use crate::vocabulary::actions::Action;
use std::collections::HashSet;

/// The most calls the effect of `action` makes (0 for an action without one): a poll reads the
/// PR and, for an open one, its threads, check runs and combined status; a merge re-checks
/// those three and merges; telling the mayor asks its status, then messages or starts it.
pub fn cost(action: &Action) -> usize {
    match action {
        Action::DispatchAgent { .. } | Action::StopAgent { .. } | Action::SendNudge { .. } => 1,
        Action::NotifyMayor { .. } => 2,
        Action::PollPr { .. } | Action::MergePr { .. } => 4,
        _ => 0,
    }
}

/// Whether the effect of `action` may start an agent (and so needs the token push first).
fn starts(action: &Action) -> bool {
    matches!(
        action,
        Action::DispatchAgent { .. } | Action::NotifyMayor { .. }
    )
}

/// The most calls the effects of `actions` make together, the token push included.
pub fn spent(actions: &[Action]) -> usize {
    actions.iter().map(cost).sum::<usize>() + usize::from(actions.iter().any(starts))
}

/// The actions that fit in `budget` calls, in order, and how many side effects were deferred.
/// Starting agents costs one more call, once: the token push before the starts.
pub fn within(actions: Vec<Action>, budget: usize) -> (Vec<Action>, usize) {
    let mut left = budget;
    let mut token_pushed = false;
    let mut deferred = vec![false; actions.len()];
    let mut stopped_later: HashSet<String> = HashSet::new();
    for (i, action) in actions.iter().enumerate() {
        let starts = starts(action);
        let need = cost(action) + usize::from(starts && !token_pushed);
        if need == 0 {
            continue;
        }
        if need <= left {
            left -= need;
            token_pushed |= starts;
        } else {
            deferred[i] = true;
            if let Action::StopAgent { agent_id, .. } = action {
                stopped_later.insert(agent_id.clone());
            }
        }
    }
    let effects_deferred = deferred.iter().filter(|d| **d).count();
    let kept = actions
        .into_iter()
        .zip(deferred)
        .filter(|(action, deferred)| {
            !deferred && agent_of(action).is_none_or(|a| !stopped_later.contains(a))
        })
        .map(|(action, _)| action)
        .collect();
    (kept, effects_deferred)
}

/// The agent an agent-scoped mutation acts on.
fn agent_of(action: &Action) -> Option<&str> {
    match action {
        Action::TransitionAgent { agent_id, .. }
        | Action::UnhookAgent { agent_id, .. }
        | Action::CreateTriageRequest { agent_id, .. } => Some(agent_id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::actions::NudgeTier;
    use crate::vocabulary::model::{AgentStatus, TriageType};

    fn dispatch(bead: &str) -> Action {
        Action::DispatchAgent {
            agent_id: None,
            bead_id: bead.into(),
            rig_id: "r".into(),
        }
    }

    fn poll(bead: &str) -> Action {
        Action::PollPr {
            bead_id: bead.into(),
            pr_url: "https://github.com/o/r/pull/1".into(),
        }
    }

    fn force_stop(agent: &str) -> Vec<Action> {
        vec![
            Action::TransitionAgent {
                agent_id: agent.into(),
                from: Some(AgentStatus::Working),
                to: AgentStatus::Stalled,
                reason: "GUPP".into(),
            },
            Action::StopAgent {
                agent_id: agent.into(),
                reason: "GUPP".into(),
            },
            Action::CreateTriageRequest {
                agent_id: agent.into(),
                triage_type: TriageType::StuckAgent,
                reason: "GUPP".into(),
            },
        ]
    }

    #[test]
    fn effects_take_the_budget_in_order_and_the_first_start_pays_the_token_push() {
        let actions = vec![dispatch("a"), poll("p"), dispatch("b"), dispatch("c")];
        // 2 (start + token) + 4 + 1 = 7: the last start does not fit in 7.
        let (kept, deferred) = within(actions.clone(), 7);
        assert_eq!(kept, actions[..3].to_vec());
        assert_eq!(deferred, 1);
        // A later, cheaper effect still fits where an expensive one did not.
        let (kept, deferred) = within(vec![poll("p"), dispatch("a")], 3);
        assert_eq!((kept, deferred), (vec![dispatch("a")], 1));
    }

    #[test]
    fn mutations_always_apply_but_a_deferred_stop_takes_its_agents_actions_with_it() {
        let mut actions = force_stop("g");
        actions.push(Action::UnhookAgent {
            agent_id: "other".into(),
            reason: "cleanup".into(),
        });
        actions.push(Action::SendNudge {
            agent_id: "n".into(),
            message: "hi".into(),
            tier: NudgeTier::Warn,
        });
        let (kept, deferred) = within(actions.clone(), 0);
        assert_eq!(kept, vec![actions[3].clone()]);
        assert_eq!(deferred, 2);
        let (kept, deferred) = within(actions.clone(), 2);
        assert_eq!((kept, deferred), (actions, 0));
    }
}
