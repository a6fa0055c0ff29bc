//! What a tick measured, and how it reaches Analytics Engine.
//!
//! [`layout`] is the one table of metric -> slot; [`point`] builds AE data points within AE's
//! limits; [`writer`] sends them through the analytics port without ever failing a tick.

pub mod domain_events;
pub mod layout;
pub mod point;
pub mod writer;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The figures of one tick (GASTOWN-DOMAIN.md 6.1, plus `events_failed` and
/// `oldest_pending_age_ms`, which fill the two doubles the original left at 0, and
/// `side_effects_deferred`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReconcilerMetrics {
    /// Milliseconds from just before the drain to just after the invariant check. In workerd
    /// `Date.now()` advances only across I/O, so there this is the awaited network time of the
    /// side effects, not CPU time (which the platform does not expose to the Worker).
    pub wall_clock_ms: f64,
    /// Events read by the drain (including ones that then failed).
    pub events_drained: u64,
    /// Actions returned by the reconciler.
    pub actions_emitted: u64,
    /// Action type -> count, only types that occurred.
    pub actions_by_type: BTreeMap<String, u64>,
    pub side_effects_attempted: u64,
    /// Side effects the remote confirmed.
    pub side_effects_succeeded: u64,
    pub side_effects_failed: u64,
    pub invariant_violations: u64,
    /// Pending events after the tick.
    pub pending_event_count: u64,
    /// Events whose application failed in this tick (retried later or poisoned now).
    pub events_failed: u64,
    /// Age of the oldest pending event after the tick, 0 when none.
    pub oldest_pending_age_ms: f64,
    /// Side effects the reconciler wanted that did not fit in the tick's call budget
    /// (`TICK_SUBREQUEST_BUDGET`): not applied, emitted again by the next tick.
    #[serde(default)]
    pub side_effects_deferred: u64,
}

impl ReconcilerMetrics {
    /// Counts the action types of a reconcile pass.
    pub fn count_actions<'a>(&mut self, types: impl IntoIterator<Item = &'a str>) {
        for t in types {
            self.actions_emitted += 1;
            *self.actions_by_type.entry(t.to_owned()).or_default() += 1;
        }
    }

    /// `actions_by_type` as the compact JSON object stored in blob10.
    pub fn actions_by_type_json(&self) -> String {
        serde_json::to_string(&self.actions_by_type).expect("map serializes")
    }
}
