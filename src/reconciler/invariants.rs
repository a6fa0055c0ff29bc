//! The invariants checked after each tick (GASTOWN-DOMAIN.md 6.2), in the original's order:
//! #7, #5, #3, #6, #4 (1 and 2 are not checked). Each offending row is one [`Violation`].
//!
//! #3 counts direct-strategy reviews only (no `pr_url`): only those serialize a rig's refinery.
//! The original counted PR reviews too, which R5 deliberately runs side by side (and the
//! code-review-disabled path moves every PR review to in progress), so PR-heavy towns reported
//! #3 violations every tick.

use crate::reconciler::Snapshot;
use crate::vocabulary::model::{AgentRole, AgentStatus, BeadStatus, BeadType};
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconciler::SnapshotBuilder;
    use crate::testing::snapshot::*;

    fn check_one(b: SnapshotBuilder) -> Vec<(u8, String)> {
        check(&b.build())
            .into_iter()
            .map(|v| (v.invariant, v.message))
            .collect()
    }

    fn v(invariant: u8, message: &str) -> (u8, String) {
        (invariant, message.to_owned())
    }

    #[test]
    fn seven_working_agents_have_a_hook() {
        let bad = SnapshotBuilder::new()
            .agent(polecat("p", "r").status(AgentStatus::Working))
            .agent(mayor("m").status(AgentStatus::Working));
        assert_eq!(check_one(bad), [v(7, "Working agent p has no hook")]);
        let good = SnapshotBuilder::new()
            .bead(issue("b", "r").status(BeadStatus::InProgress))
            .agent(polecat("p", "r").status(AgentStatus::Working).hook("b"))
            .agent(polecat("q", "r").created(T0 + 1));
        assert_eq!(check_one(good), []);
    }

    #[test]
    fn five_convoys_never_fail() {
        let bad = SnapshotBuilder::new().bead(convoy_bead("c").status(BeadStatus::Failed));
        assert_eq!(
            check_one(bad),
            [v(5, "Convoy bead c is in unexpected state 'failed'")]
        );
        let mut good = SnapshotBuilder::new();
        for (i, s) in [
            BeadStatus::Open,
            BeadStatus::InProgress,
            BeadStatus::InReview,
            BeadStatus::Closed,
        ]
        .into_iter()
        .enumerate()
        {
            good = good.bead(convoy_bead(&format!("c{i}")).status(s));
        }
        assert_eq!(check_one(good), []);
    }

    fn running(id: &str, rig: &str) -> BeadFixture {
        merge_request(id, rig).status(BeadStatus::InProgress)
    }

    #[test]
    fn three_one_direct_review_in_progress_per_rig() {
        let bad = SnapshotBuilder::new()
            .bead(running("m1", "r"))
            .review(review("m1"))
            .bead(running("m2", "r"))
            .review(review("m2"))
            .bead(running("m3", "other"))
            .review(review("m3"));
        assert_eq!(
            check_one(bad),
            [v(
                3,
                "Rig r has 2 in_progress MR beads (should be at most 1)"
            )]
        );
    }

    #[test]
    fn three_ignores_pr_reviews_running_side_by_side() {
        let good = SnapshotBuilder::new()
            .bead(running("m1", "r"))
            .review(review("m1"))
            .bead(running("m2", "r"))
            .review(review("m2").pr("https://github.com/o/r/pull/2"))
            .bead(running("m3", "r"))
            .review(review("m3").pr("https://github.com/o/r/pull/3"))
            .bead(merge_request("m4", "r").status(BeadStatus::Open))
            .review(review("m4"));
        assert_eq!(check_one(good), []);
    }

    #[test]
    fn six_one_agent_per_bead() {
        let bad = SnapshotBuilder::new()
            .bead(issue("b", "r").status(BeadStatus::InProgress))
            .agent(polecat("p", "r").hook("b"))
            .agent(polecat("q", "r").hook("b"));
        assert_eq!(
            check_one(bad),
            [v(6, "Bead b has 2 agents hooked (should be at most 1)")]
        );
        let good = SnapshotBuilder::new()
            .agent(polecat("p", "r").hook("b"))
            .agent(polecat("q", "r").hook("c"));
        assert_eq!(check_one(good), []);
    }

    #[test]
    fn four_issues_in_review_have_a_live_review() {
        let town = |mr_status| {
            SnapshotBuilder::new()
                .bead(issue("b", "r").status(BeadStatus::InReview))
                .bead(merge_request("m", "r").status(mr_status))
                .review(review("m"))
                .tracks("m", "b")
        };
        for bad in [BeadStatus::Closed, BeadStatus::Failed] {
            assert_eq!(
                check_one(town(bad)),
                [v(
                    4,
                    "Issue bead b is in_review but has no open/in_progress MR bead"
                )]
            );
        }
        for good in [BeadStatus::Open, BeadStatus::InProgress] {
            assert_eq!(check_one(town(good)), []);
        }
    }

    #[test]
    fn violations_come_in_the_order_7_5_3_6_4() {
        let all = SnapshotBuilder::new()
            .bead(issue("b", "r").status(BeadStatus::InReview))
            .agent(polecat("p", "r").hook("b"))
            .agent(polecat("q", "r").hook("b"))
            .bead(running("m1", "r"))
            .review(review("m1"))
            .bead(running("m2", "r"))
            .review(review("m2"))
            .bead(convoy_bead("c").status(BeadStatus::Failed))
            .agent(polecat("w", "r").status(AgentStatus::Working));
        let order: Vec<u8> = check_one(all).into_iter().map(|(n, _)| n).collect();
        assert_eq!(order, [7, 5, 3, 6, 4]);
    }
}
