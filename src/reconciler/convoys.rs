//! reconcileConvoys (GASTOWN-DOMAIN.md 3.6): keep each open convoy's progress current and,
//! once every tracked issue is finished and no review is in flight, land or close it.
//!
//! Choices where the original left a gap: a convoy whose `merge_mode` is NULL follows the
//! column's default, review-then-land; an empty feature branch counts as none; a convoy that
//! must land but none of whose beads has a rig waits (there is no rig to review the landing in).

use super::snapshot::Snapshot;
use crate::vocabulary::actions::Action;
use crate::vocabulary::model::{Bead, BeadStatus, BeadType, Convoy, MergeMode};

/// The branch a landing merges into when the rig is unknown.
const DEFAULT_TARGET_BRANCH: &str = "main";

pub fn reconcile(snapshot: &Snapshot) -> Vec<Action> {
    let mut out = Vec::new();
    for bead in snapshot.beads() {
        if bead.bead_type != BeadType::Convoy || bead.status != BeadStatus::Open {
            continue;
        }
        if let Some(convoy) = snapshot.convoy(&bead.bead_id) {
            reconcile_convoy(snapshot, bead, convoy, &mut out);
        }
    }
    out
}

fn is_live_mr(b: &Bead) -> bool {
    b.bead_type == BeadType::MergeRequest
        && matches!(b.status, BeadStatus::Open | BeadStatus::InProgress)
}

fn reconcile_convoy(snapshot: &Snapshot, bead: &Bead, convoy: &Convoy, out: &mut Vec<Action>) {
    let convoy_id = &bead.bead_id;
    let members: Vec<&Bead> = snapshot.tracked_by(convoy_id).collect();
    let issues = members.iter().filter(|m| m.bead_type == BeadType::Issue);
    let total = issues.clone().count() as i64;
    let closed = issues.filter(|m| m.status.is_terminal()).count() as i64;
    if closed != convoy.closed_beads {
        out.push(Action::UpdateConvoyProgress {
            convoy_id: convoy_id.clone(),
            closed_beads: closed,
        });
    }
    let in_flight = members
        .iter()
        .any(|m| snapshot.tracked_by(&m.bead_id).any(is_live_mr));
    if total == 0 || closed < total || in_flight {
        return;
    }
    let land_first =
        convoy.merge_mode.unwrap_or(MergeMode::ReviewThenLand) == MergeMode::ReviewThenLand;
    let feature_branch = convoy.feature_branch.as_deref().filter(|b| !b.is_empty());
    let (true, Some(feature_branch)) = (land_first, feature_branch) else {
        out.push(Action::CloseConvoy {
            convoy_id: convoy_id.clone(),
        });
        return;
    };
    if !bead.flag("ready_to_land") {
        out.push(Action::SetConvoyReadyToLand {
            convoy_id: convoy_id.clone(),
        });
        return;
    }
    let landings = members
        .iter()
        .filter(|m| m.bead_type == BeadType::MergeRequest);
    if landings.clone().any(|m| m.status == BeadStatus::Closed) {
        out.push(Action::CloseConvoy {
            convoy_id: convoy_id.clone(),
        });
    } else if !landings.clone().any(|m| is_live_mr(m)) {
        let Some(rig_id) = members.iter().find_map(|m| m.rig_id.as_deref()) else {
            return;
        };
        let target_branch = snapshot
            .rig(rig_id)
            .map_or(DEFAULT_TARGET_BRANCH, |r| r.default_branch.as_str());
        out.push(Action::CreateLandingMr {
            convoy_id: convoy_id.clone(),
            rig_id: rig_id.to_owned(),
            feature_branch: feature_branch.to_owned(),
            target_branch: target_branch.to_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconciler::snapshot::SnapshotBuilder;
    use crate::testing::snapshot::*;

    const BRANCH: &str = "convoy/ship-it/c0ffee00/head";

    /// An open convoy `c` tracking issues with these statuses (`i0`, `i1`, ... in rig `r`).
    fn town(meta: ConvoyFixture, members: &[BeadStatus]) -> SnapshotBuilder {
        let mut b = SnapshotBuilder::new()
            .bead(convoy_bead("c").created(T0 - 10))
            .convoy(meta)
            .rig(rig("r", "trunk"));
        for (i, status) in members.iter().enumerate() {
            let id = format!("i{i}");
            b = b
                .bead(issue(&id, "r").status(*status).created(T0 + i as i64))
                .tracks(&id, "c");
        }
        b
    }

    fn ready(b: SnapshotBuilder) -> SnapshotBuilder {
        b.bead(convoy_bead("c").created(T0 - 10).meta("ready_to_land", 1))
    }

    fn run(b: SnapshotBuilder) -> Vec<Action> {
        reconcile(&b.build())
    }

    fn progress(closed: i64) -> Action {
        Action::UpdateConvoyProgress {
            convoy_id: "c".into(),
            closed_beads: closed,
        }
    }

    fn close() -> Action {
        Action::CloseConvoy {
            convoy_id: "c".into(),
        }
    }

    use BeadStatus::{Closed, Failed, InProgress, Open};

    #[test]
    fn progress_counts_closed_and_failed_issues_when_it_changed() {
        assert_eq!(
            run(town(convoy("c").progress(0, 3), &[Closed, Failed, Open])),
            [progress(2)]
        );
        assert_eq!(
            run(town(convoy("c").progress(2, 3), &[Closed, Failed, Open])),
            []
        );
    }

    #[test]
    fn a_convoy_without_landing_closes_when_every_issue_finished() {
        for meta in [
            convoy("c")
                .merge_mode(Some(MergeMode::ReviewAndMerge))
                .feature_branch(BRANCH),
            convoy("c"),
            convoy("c").feature_branch(""),
        ] {
            assert_eq!(
                run(town(meta.clone().progress(2, 2), &[Closed, Failed])),
                [close()],
                "{meta:?}"
            );
        }
        assert_eq!(
            run(town(convoy("c").progress(1, 2), &[Closed, InProgress])),
            []
        );
    }

    #[test]
    fn an_empty_convoy_never_closes() {
        assert_eq!(run(town(convoy("c"), &[])), []);
    }

    #[test]
    fn a_review_in_flight_holds_the_convoy() {
        for (status, held) in [(Open, true), (InProgress, true), (Failed, false)] {
            let b = town(convoy("c").progress(1, 1), &[Closed])
                .bead(merge_request("mr", "r").status(status).created(T0 + 9))
                .tracks("mr", "i0");
            assert_eq!(run(b).is_empty(), held, "{status}");
        }
    }

    #[test]
    fn review_then_land_marks_ready_then_lands_through_a_landing_review() {
        let meta = || convoy("c").feature_branch(BRANCH).progress(1, 1);
        assert_eq!(
            run(town(meta(), &[Closed])),
            [Action::SetConvoyReadyToLand {
                convoy_id: "c".into()
            }]
        );
        let landing = Action::CreateLandingMr {
            convoy_id: "c".into(),
            rig_id: "r".into(),
            feature_branch: BRANCH.into(),
            target_branch: "trunk".into(),
        };
        assert_eq!(
            run(ready(town(meta(), &[Closed]))),
            std::slice::from_ref(&landing)
        );
        let with_landing = |status| {
            ready(town(meta(), &[Closed]))
                .bead(merge_request("land", "r").status(status).created(T0 + 9))
                .tracks("land", "c")
        };
        assert_eq!(
            run(with_landing(Failed)),
            [landing],
            "a failed landing is retried"
        );
        assert_eq!(run(with_landing(InProgress)), []);
        assert_eq!(run(with_landing(Open)), []);
        assert_eq!(run(with_landing(Closed)), [close()]);
    }

    #[test]
    fn a_landing_targets_main_without_a_known_rig_and_waits_without_any_rig() {
        let meta = || convoy("c").feature_branch(BRANCH).progress(1, 1);
        let unknown = ready(
            SnapshotBuilder::new()
                .bead(convoy_bead("c").created(T0 - 10))
                .convoy(meta())
                .bead(issue("i0", "gone").status(Closed))
                .tracks("i0", "c"),
        );
        assert!(matches!(
            &run(unknown)[..],
            [Action::CreateLandingMr { target_branch, .. }] if target_branch == "main"
        ));
        let rigless = ready(
            SnapshotBuilder::new()
                .bead(convoy_bead("c").created(T0 - 10))
                .convoy(meta())
                .bead(issue("i0", "r").no_rig().status(Closed))
                .tracks("i0", "c"),
        );
        assert_eq!(run(rigless), []);
    }

    #[test]
    fn only_open_convoys_with_metadata_are_reconciled() {
        let closed = town(convoy("c").progress(0, 1), &[Closed])
            .bead(convoy_bead("c").status(Closed).created(T0 - 10));
        assert_eq!(run(closed), []);
        let bare = SnapshotBuilder::new()
            .bead(convoy_bead("c"))
            .bead(issue("i0", "r").status(Closed))
            .tracks("i0", "c");
        assert_eq!(run(bare), []);
    }
}
