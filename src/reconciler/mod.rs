//! The reconciler (GASTOWN-DOMAIN.md 3): a pure function from a [`Snapshot`] of the town to
//! the ordered [`Action`]s that converge it. No I/O, no clock (`now` is an argument), no
//! randomness: the same snapshot, options and time always give the same actions.
//!
//! Order: the circuit breaker is evaluated once, then the rules of [`agents`], [`beads`] (whose
//! last action is the breaker's mayor notice, when due), [`review_queue`], [`convoys`],
//! [`gupp`] and [`gc`], concatenated. All rules read the same snapshot; the tick applies the
//! actions in this order, so later actions meet the effects of earlier ones.

pub mod agents;
pub mod beads;
pub mod breaker;
pub mod constants;
pub mod convoys;
pub mod gc;
pub mod gupp;
pub mod invariants;
pub mod load;
pub mod review_queue;
pub mod snapshot;
pub mod timing;

use crate::vocabulary::actions::Action;
use crate::vocabulary::model::{Bead, BeadStatus};
use crate::vocabulary::time::Millis;
pub use snapshot::{Snapshot, SnapshotBuilder, TownState};

/// The knobs of one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// The container is being evicted: no dispatches, no heartbeat checks, no GUPP (5.3).
    pub draining: bool,
    /// `refinery.code_review` (default on): off, PR reviews skip the refinery (3.5).
    pub refinery_code_review: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            draining: false,
            refinery_code_review: true,
        }
    }
}

impl Options {
    /// The town's own settings, as the tick and the dry run use them. (The original's dry run
    /// did not pass `draining`; here a dry run sees what the next tick would do.)
    pub fn of(snapshot: &Snapshot) -> Self {
        let town = snapshot.town();
        Self {
            draining: town.draining,
            refinery_code_review: town.refinery_code_review,
        }
    }
}

/// Everything that should change, in the order it should be applied.
pub fn reconcile(snapshot: &Snapshot, options: &Options, now: Millis) -> Vec<Action> {
    let breaker = breaker::evaluate(snapshot, now);
    let mut actions = agents::reconcile(snapshot, options, now);
    actions.extend(beads::reconcile(snapshot, options, breaker, now));
    actions.extend(review_queue::reconcile(snapshot, options, breaker, now));
    actions.extend(convoys::reconcile(snapshot));
    actions.extend(gupp::reconcile(snapshot, options, now));
    actions.extend(gc::reconcile(snapshot, now));
    actions
}

/// A bead transition made by the reconciler (actor `system`).
fn transition(bead: &Bead, from: Option<BeadStatus>, to: BeadStatus, reason: String) -> Action {
    Action::TransitionBead {
        bead_id: bead.bead_id.clone(),
        from,
        to,
        reason,
        actor: "system".to_owned(),
    }
}
