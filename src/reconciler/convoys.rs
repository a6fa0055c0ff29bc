//! reconcileConvoys (GASTOWN-DOMAIN.md 3.6): keep each open convoy's progress current and,
//! once every tracked issue is finished and no review is in flight, land or close it.
//!
//! Choices where the original left a gap: a convoy whose `merge_mode` is NULL follows the
//! column's default, review-then-land; an empty feature branch counts as none; a convoy that
//! must land but none of whose beads has a rig waits (there is no rig to review the landing in).

use super::snapshot::Snapshot;
use crate::actions::Action;
use crate::domain::model::{Bead, BeadStatus, BeadType, Convoy, MergeMode};

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
