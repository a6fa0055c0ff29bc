//! The tick's phases, in the order they run, and the hook that hears each one end.
//!
//! The native benchmark times the phases through it (`benches/tick.rs`); everywhere else the
//! hook is [`Unwatched`]. In workerd the clock does not advance during synchronous work, so the
//! platform has nothing to time a phase with.

/// A phase of [`super::run`]. Each ends at most once a tick, in this order; a tick of a deleted
/// town ends none, and one whose snapshot fails to load skips the reconcile and its actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// The town row, the container health ping and the agents' status calls.
    Observe,
    /// Draining and applying pending events; ending a stale container drain.
    Drain,
    /// Loading the reconciler's snapshot.
    Snapshot,
    /// The reconciler's pass.
    Reconcile,
    /// Applying its actions in order (and their analytics points).
    Actions,
    /// The side effects' remote calls and what their answers change.
    SideEffects,
    /// Loading what the invariants read, and checking them.
    Invariants,
    /// The backlog, the domain events' points and the tick's own point.
    Metrics,
    /// The metrics history, nudge expiry, pruning and the re-arm decision.
    Housekeeping,
}

impl Phase {
    pub const ALL: [Phase; 9] = [
        Phase::Observe,
        Phase::Drain,
        Phase::Snapshot,
        Phase::Reconcile,
        Phase::Actions,
        Phase::SideEffects,
        Phase::Invariants,
        Phase::Metrics,
        Phase::Housekeeping,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Observe => "observe",
            Phase::Drain => "drain",
            Phase::Snapshot => "snapshot",
            Phase::Reconcile => "reconcile",
            Phase::Actions => "actions",
            Phase::SideEffects => "side_effects",
            Phase::Invariants => "invariants",
            Phase::Metrics => "metrics",
            Phase::Housekeeping => "housekeeping",
        }
    }
}

/// Hears the end of each phase of a tick.
pub trait PhaseWatch {
    fn ended(&self, phase: Phase);
}

/// No one is listening.
pub struct Unwatched;

impl PhaseWatch for Unwatched {
    fn ended(&self, _phase: Phase) {}
}
