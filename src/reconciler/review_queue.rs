//! reconcileReviewQueue (GASTOWN-DOMAIN.md 3.5): poll and merge pull requests, recover stuck
//! or abandoned reviews, feed each rig's refinery one direct review at a time, and stop a
//! refinery whose merge request already finished.
//!
//! The per-MR rules (R1-R4) read live merge requests (open or in progress) that have a review
//! row; one without is malformed and left alone, as the original's inner join did. Merge
//! requests without a rig never reach a refinery (R5); the original looked one up for a NULL
//! rig, found none and dispatched with no rig.

use super::breaker::Breaker;
use super::constants::{
    ABANDONED_MR_TIMEOUT_MS, ORPHANED_PR_REVIEW_TIMEOUT_MS, PR_POLL_INTERVAL_MS,
    STUCK_REVIEW_TIMEOUT_MS,
};
use super::snapshot::Snapshot;
use super::timing::{cooling_down, is_stale, out_of_attempts};
use super::{transition, Options};
use crate::actions::Action;
use crate::domain::model::{Agent, AgentRole, AgentStatus, Bead, BeadStatus, BeadType, Review};
use crate::time::{parse_iso, Millis};
use serde_json::Value as Json;
use std::collections::HashMap;

/// A live merge request with its review row.
type Mr<'a> = (&'a Bead, &'a Review);

pub fn reconcile(
    snapshot: &Snapshot,
    options: &Options,
    breaker: Breaker,
    now: Millis,
) -> Vec<Action> {
    let mut out = Vec::new();
    let mrs: Vec<Mr<'_>> = snapshot
        .beads()
        .iter()
        .filter(|b| {
            b.bead_type == BeadType::MergeRequest
                && matches!(b.status, BeadStatus::Open | BeadStatus::InProgress)
        })
        .filter_map(|b| Some((b, snapshot.review(&b.bead_id)?)))
        .collect();
    for &(mr, review) in &mrs {
        match &review.pr_url {
            Some(pr_url) => {
                poll_and_merge(mr, pr_url, now, &mut out);
                if options.refinery_code_review {
                    fail_orphaned_pr_review(snapshot, mr, now, &mut out);
                }
            }
            None => recover_direct_review(snapshot, mr, now, &mut out),
        }
    }
    if options.refinery_code_review {
        pop_queue(snapshot, options, breaker, &mrs, &mut out);
        for agent in snapshot.agents() {
            redispatch_refinery(snapshot, options, breaker, now, agent, &mut out);
        }
    } else {
        skip_refinery(&mrs, &mut out);
    }
    for agent in snapshot.agents() {
        stop_refinery_of_finished_mr(snapshot, agent, &mut out);
    }
    out
}

fn refinery_agents(snapshot: &Snapshot) -> impl Iterator<Item = &Agent> {
    snapshot
        .agents()
        .iter()
        .filter(|a| a.role == AgentRole::Refinery)
}

fn someone_works_on(snapshot: &Snapshot, mr: &Bead) -> bool {
    snapshot
        .hooked_to(&mr.bead_id)
        .any(|a| matches!(a.status, AgentStatus::Working | AgentStatus::Stalled))
}

/// When the PR was last polled: `metadata.last_poll_at` as ISO text or epoch milliseconds.
fn last_poll(mr: &Bead) -> Option<Millis> {
    match mr.metadata.get("last_poll_at")? {
        Json::String(s) => parse_iso(s),
        Json::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// R1: a PR under review is polled at most every 60 s (#1632); one whose auto-merge is pending
/// is merged (every tick while pending; `merge_pr` clears the flag when it fails).
fn poll_and_merge(mr: &Bead, pr_url: &str, now: Millis, out: &mut Vec<Action>) {
    if mr.status != BeadStatus::InProgress {
        return;
    }
    if last_poll(mr).is_none_or(|t| now - t >= PR_POLL_INTERVAL_MS) {
        out.push(Action::PollPr {
            bead_id: mr.bead_id.clone(),
            pr_url: pr_url.to_owned(),
        });
    }
    if mr.flag("auto_merge_pending") {
        out.push(Action::MergePr {
            bead_id: mr.bead_id.clone(),
            pr_url: pr_url.to_owned(),
        });
    }
}

/// R2 and R3, for a direct review (no PR) in progress. Untouched for more than 2 minutes while
/// waiting for a live rework blocker: normal, nothing to do. R2: untouched for more than 30
/// minutes with no working or stalled agent: back to open, unhooking one idle agent still
/// hooked. R3: untouched for more than 2 minutes with no agent hooked at all: back to open.
/// Where the original emitted both R2's and R3's identical transition for one MR, R3 here only
/// fires when R2 did not (the second was a no-op that inflated `actions_emitted`).
fn recover_direct_review(snapshot: &Snapshot, mr: &Bead, now: Millis, out: &mut Vec<Action>) {
    let from = Some(BeadStatus::InProgress);
    if mr.status != BeadStatus::InProgress
        || !is_stale(Some(&mr.updated_at), now, ABANDONED_MR_TIMEOUT_MS)
        || snapshot.is_blocked(&mr.bead_id)
    {
        return;
    }
    if is_stale(Some(&mr.updated_at), now, STUCK_REVIEW_TIMEOUT_MS)
        && !someone_works_on(snapshot, mr)
    {
        out.push(transition(
            mr,
            from,
            BeadStatus::Open,
            "stuck review, no working agent".to_owned(),
        ));
        if let Some(idle) = snapshot
            .hooked_to(&mr.bead_id)
            .find(|a| a.status == AgentStatus::Idle)
        {
            out.push(Action::UnhookAgent {
                agent_id: idle.agent_id.clone(),
                reason: "stuck review cleanup".to_owned(),
            });
        }
    } else if snapshot.hooked_to(&mr.bead_id).next().is_none() {
        out.push(transition(
            mr,
            from,
            BeadStatus::Open,
            "abandoned, no agent hooked".to_owned(),
        ));
    }
}

/// R4 (only with refinery code review): a PR review in progress untouched for more than 30
/// minutes (polling refreshes it) with no working or stalled agent has failed.
fn fail_orphaned_pr_review(snapshot: &Snapshot, mr: &Bead, now: Millis, out: &mut Vec<Action>) {
    if mr.status == BeadStatus::InProgress
        && is_stale(Some(&mr.updated_at), now, ORPHANED_PR_REVIEW_TIMEOUT_MS)
        && !someone_works_on(snapshot, mr)
    {
        out.push(transition(
            mr,
            Some(BeadStatus::InProgress),
            BeadStatus::Failed,
            "PR review orphaned".to_owned(),
        ));
    }
}

/// With refinery code review off, open PR reviews go straight to polling; direct reviews wait.
fn skip_refinery(mrs: &[Mr<'_>], out: &mut Vec<Action>) {
    for &(mr, review) in mrs {
        if mr.status == BeadStatus::Open && review.pr_url.is_some() {
            out.push(transition(
                mr,
                Some(BeadStatus::Open),
                BeadStatus::InProgress,
                "refinery code review disabled — skip to poll_pr".to_owned(),
            ));
        }
    }
}

/// One rig's review queue.
#[derive(Default)]
struct RigQueue<'a> {
    /// A direct review is in progress: the refinery is busy (PR reviews do not serialize it).
    busy: bool,
    oldest_open: Option<&'a Bead>,
}

/// R5: for each rig with open reviews and no direct review in progress, the oldest open review
/// goes to the rig's refinery: hooked and dispatched when the refinery is idle and unhooked,
/// dispatched to a refinery made when applying when the rig has none. Draining and the breaker
/// hold the queue.
fn pop_queue(
    snapshot: &Snapshot,
    options: &Options,
    breaker: Breaker,
    mrs: &[Mr<'_>],
    out: &mut Vec<Action>,
) {
    let mut order: Vec<&str> = Vec::new();
    let mut queues: HashMap<&str, RigQueue<'_>> = HashMap::new();
    for &(mr, review) in mrs {
        let Some(rig) = mr.rig_id.as_deref() else {
            continue;
        };
        let queue = queues.entry(rig).or_insert_with(|| {
            order.push(rig);
            RigQueue::default()
        });
        match mr.status {
            BeadStatus::InProgress if review.pr_url.is_none() => queue.busy = true,
            BeadStatus::Open if queue.oldest_open.is_none() => queue.oldest_open = Some(mr),
            _ => {}
        }
    }
    let mut refineries: HashMap<&str, &Agent> = HashMap::new();
    for agent in refinery_agents(snapshot) {
        if let Some(rig) = agent.rig_id.as_deref() {
            refineries.entry(rig).or_insert(agent);
        }
    }
    for rig in order {
        let queue = &queues[rig];
        let Some(mr) = queue.oldest_open else {
            continue;
        };
        if queue.busy || options.draining || breaker.is_open() {
            continue;
        }
        let pop = |reason: &str| {
            transition(
                mr,
                Some(BeadStatus::Open),
                BeadStatus::InProgress,
                reason.to_owned(),
            )
        };
        match refineries.get(rig) {
            None => {
                out.push(pop("popped for review (creating refinery)"));
                out.push(Action::DispatchAgent {
                    agent_id: None,
                    bead_id: mr.bead_id.clone(),
                    rig_id: rig.to_owned(),
                });
            }
            Some(r) if r.status != AgentStatus::Idle || r.current_hook_bead_id.is_some() => {}
            Some(r) => {
                out.push(pop("popped for review"));
                out.push(Action::HookAgent {
                    agent_id: r.agent_id.clone(),
                    bead_id: mr.bead_id.clone(),
                });
                out.push(Action::DispatchAgent {
                    agent_id: Some(r.agent_id.clone()),
                    bead_id: mr.bead_id.clone(),
                    rig_id: rig.to_owned(),
                });
            }
        }
    }
}

/// R6: an idle refinery hooked to a review in progress is dispatched again. Checks in order:
/// draining, max attempts (fail the review and unhook, before the backoff so an exhausted
/// review fails at once), backoff, breaker.
fn redispatch_refinery(
    snapshot: &Snapshot,
    options: &Options,
    breaker: Breaker,
    now: Millis,
    agent: &Agent,
    out: &mut Vec<Action>,
) {
    if agent.role != AgentRole::Refinery || agent.status != AgentStatus::Idle {
        return;
    }
    let Some(mr) = agent
        .current_hook_bead_id
        .as_deref()
        .and_then(|h| snapshot.bead(h))
        .filter(|b| b.bead_type == BeadType::MergeRequest && b.status == BeadStatus::InProgress)
    else {
        return;
    };
    if options.draining {
        return;
    }
    if out_of_attempts(mr) {
        out.push(transition(
            mr,
            None,
            BeadStatus::Failed,
            format!(
                "refinery max dispatch attempts exceeded ({})",
                mr.dispatch_attempts
            ),
        ));
        out.push(Action::UnhookAgent {
            agent_id: agent.agent_id.clone(),
            reason: "max dispatch attempts".to_owned(),
        });
        return;
    }
    if cooling_down(mr, now) || breaker.is_open() {
        return;
    }
    out.push(Action::DispatchAgent {
        agent_id: Some(agent.agent_id.clone()),
        bead_id: mr.bead_id.clone(),
        rig_id: mr
            .rig_id
            .clone()
            .or_else(|| agent.rig_id.clone())
            .unwrap_or_default(),
    });
}

/// R7: a working or stalled refinery whose review already finished is stopped and unhooked (so
/// it does not comment on a PR that auto-merge already merged).
fn stop_refinery_of_finished_mr(snapshot: &Snapshot, agent: &Agent, out: &mut Vec<Action>) {
    if agent.role != AgentRole::Refinery
        || !matches!(agent.status, AgentStatus::Working | AgentStatus::Stalled)
    {
        return;
    }
    let Some(mr) = agent
        .current_hook_bead_id
        .as_deref()
        .and_then(|h| snapshot.bead(h))
        .filter(|b| b.status.is_terminal())
    else {
        return;
    };
    out.push(Action::StopAgent {
        agent_id: agent.agent_id.clone(),
        reason: format!("MR bead {} is {}", mr.bead_id, mr.status),
    });
    out.push(Action::UnhookAgent {
        agent_id: agent.agent_id.clone(),
        reason: format!("MR bead {} — cleanup", mr.status),
    });
}
