//! The invariants checked after each tick (GASTOWN-DOMAIN.md 6.2), in the original's order:
//! #7, #5, #3, #6, #4 (1 and 2 are not checked). Each offending row is one [`Violation`].
//!
//! #3 counts direct-strategy reviews only (no `pr_url`): only those serialize a rig's refinery.
//! The original counted PR reviews too, which R5 deliberately runs side by side (and the
//! code-review-disabled path moves every PR review to in progress), so PR-heavy towns reported
//! #3 violations every tick.

use crate::domain::model::{AgentRole, AgentStatus, BeadStatus, BeadType};
use crate::reconciler::Snapshot;
use serde::Serialize;
use std::collections::BTreeMap;

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub invariant: u8,
    pub message: String,
}

/// Every violation in the snapshot, invariant by invariant, each group in id order.
pub fn check(snapshot: &Snapshot) -> Vec<Violation> {
    let mut out = Vec::new();
    working_agents_have_hooks(snapshot, &mut out);
    convoys_never_fail(snapshot, &mut out);
    one_direct_review_per_rig(snapshot, &mut out);
    one_agent_per_bead(snapshot, &mut out);
    reviews_back_in_review_issues(snapshot, &mut out);
    out
}

fn violation(invariant: u8, message: String) -> Violation {
    Violation { invariant, message }
}

/// #7: a working agent (not the mayor) has a hook.
fn working_agents_have_hooks(snapshot: &Snapshot, out: &mut Vec<Violation>) {
    let mut ids: Vec<&str> = snapshot
        .agents()
        .iter()
        .filter(|a| {
            a.status == AgentStatus::Working
                && a.current_hook_bead_id.is_none()
                && a.role != AgentRole::Mayor
        })
        .map(|a| a.agent_id.as_str())
        .collect();
    ids.sort_unstable();
    out.extend(
        ids.into_iter()
            .map(|id| violation(7, format!("Working agent {id} has no hook"))),
    );
}

/// #5: a convoy bead is open, in progress, in review or closed (never failed).
fn convoys_never_fail(snapshot: &Snapshot, out: &mut Vec<Violation>) {
    let mut bad: Vec<(&str, BeadStatus)> = snapshot
        .beads()
        .iter()
        .filter(|b| {
            b.bead_type == BeadType::Convoy
                && !matches!(
                    b.status,
                    BeadStatus::Open
                        | BeadStatus::InProgress
                        | BeadStatus::InReview
                        | BeadStatus::Closed
                )
        })
        .map(|b| (b.bead_id.as_str(), b.status))
        .collect();
    bad.sort_unstable();
    out.extend(bad.into_iter().map(|(id, status)| {
        violation(
            5,
            format!("Convoy bead {id} is in unexpected state '{status}'"),
        )
    }));
}

/// #3: at most one direct review in progress per rig.
fn one_direct_review_per_rig(snapshot: &Snapshot, out: &mut Vec<Violation>) {
    let mut per_rig: BTreeMap<&str, usize> = BTreeMap::new();
    for mr in snapshot.beads() {
        let direct = snapshot
            .review(&mr.bead_id)
            .is_none_or(|r| r.pr_url.is_none());
        if let (BeadType::MergeRequest, BeadStatus::InProgress, Some(rig), true) =
            (mr.bead_type, mr.status, mr.rig_id.as_deref(), direct)
        {
            *per_rig.entry(rig).or_default() += 1;
        }
    }
    out.extend(per_rig.into_iter().filter(|&(_, n)| n > 1).map(|(rig, n)| {
        violation(
            3,
            format!("Rig {rig} has {n} in_progress MR beads (should be at most 1)"),
        )
    }));
}

/// #6: at most one agent hooked to a bead.
fn one_agent_per_bead(snapshot: &Snapshot, out: &mut Vec<Violation>) {
    let mut crowded: Vec<(&str, usize)> = snapshot.hooks().filter(|&(_, n)| n > 1).collect();
    crowded.sort_unstable();
    out.extend(crowded.into_iter().map(|(bead, n)| {
        violation(
            6,
            format!("Bead {bead} has {n} agents hooked (should be at most 1)"),
        )
    }));
}

/// #4: an issue in review has an open or in-progress merge request tracking it.
fn reviews_back_in_review_issues(snapshot: &Snapshot, out: &mut Vec<Violation>) {
    let mut orphans: Vec<&str> = snapshot
        .beads()
        .iter()
        .filter(|b| b.bead_type == BeadType::Issue && b.status == BeadStatus::InReview)
        .filter(|b| {
            !snapshot.tracked_by(&b.bead_id).any(|mr| {
                mr.bead_type == BeadType::MergeRequest
                    && matches!(mr.status, BeadStatus::Open | BeadStatus::InProgress)
            })
        })
        .map(|b| b.bead_id.as_str())
        .collect();
    orphans.sort_unstable();
    out.extend(orphans.into_iter().map(|id| {
        violation(
            4,
            format!("Issue bead {id} is in_review but has no open/in_progress MR bead"),
        )
    }));
}
