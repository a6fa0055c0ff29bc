//! The dispatch circuit breaker (GASTOWN-DOMAIN.md 3.2): evaluated once per pass; while open,
//! no rule emits `dispatch_agent` (max-attempt failures still happen).
//!
//! Two departures from the original, on purpose:
//! - It counts failed dispatches only: beads (not closed) whose most recent dispatch attempt
//!   failed (`last_dispatch_error` set) within the last 30 minutes. The original counted every
//!   bead with `dispatch_attempts > 0` dispatched in the window, so 20 healthy concurrent
//!   dispatches opened it with zero failures.
//! - The mayor is told once per opening. The original appended the same `notify_mayor` on every
//!   tick while open. Here the "opened" notice is emitted only while `town.breaker_notified_at`
//!   is unset (applying it sets it), and once the breaker has closed again a "closed" notice
//!   tells the mayor dispatch resumed (applying it clears the mark, re-arming the next opening).

use super::constants::{CIRCUIT_BREAKER_FAILURE_THRESHOLD, CIRCUIT_BREAKER_WINDOW_MINUTES};
use super::snapshot::Snapshot;
use super::timing::is_stale;
use crate::vocabulary::actions::{Action, MayorNotice};
use crate::vocabulary::model::BeadStatus;
use crate::vocabulary::time::{Millis, MINUTE};

/// The breaker's state for one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Breaker {
    /// Beads whose last dispatch failed within the window.
    pub failures: usize,
}

impl Breaker {
    /// Whether dispatches are paused.
    pub fn is_open(self) -> bool {
        self.failures >= CIRCUIT_BREAKER_FAILURE_THRESHOLD
    }
}

/// Counts the failed dispatches of the window.
pub fn evaluate(snapshot: &Snapshot, now: Millis) -> Breaker {
    let failures = snapshot
        .dispatch_failures()
        .filter(|bead| {
            bead.status != BeadStatus::Closed
                && !is_stale(
                    bead.last_dispatch_attempt_at.as_deref(),
                    now,
                    CIRCUIT_BREAKER_WINDOW_MINUTES * MINUTE,
                )
        })
        .count();
    Breaker { failures }
}

/// The mayor notice due this pass, if any: once when the breaker opens, once when it closes.
pub fn notice(snapshot: &Snapshot, breaker: Breaker) -> Option<Action> {
    let notified = snapshot.town().breaker_notified_at.is_some();
    let n = breaker.failures;
    let minutes = CIRCUIT_BREAKER_WINDOW_MINUTES;
    match (breaker.is_open(), notified) {
        (true, false) => Some(Action::NotifyMayor {
            message: format!(
                "Dispatch circuit breaker is OPEN: {n} dispatch failures in the last {minutes} \
                 minutes. All dispatch actions are paused until failures clear."
            ),
            notice: MayorNotice::BreakerOpened,
        }),
        (false, true) => Some(Action::NotifyMayor {
            message: format!(
                "Dispatch circuit breaker is CLOSED: {n} dispatch failures in the last \
                 {minutes} minutes. Dispatch has resumed."
            ),
            notice: MayorNotice::BreakerClosed,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconciler::snapshot::SnapshotBuilder;
    use crate::testing::snapshot::{issue, T0};
    use crate::vocabulary::time::MINUTE;

    /// `failed` beads whose last dispatch failed at `at`, plus `healthy` beads dispatched at
    /// `at` whose dispatch worked.
    fn town(failed: usize, healthy: usize, at: Millis) -> SnapshotBuilder {
        let mut b = SnapshotBuilder::new();
        for i in 0..failed {
            let id = format!("f{i}");
            b = b
                .bead(issue(&id, "r").attempts(1).last_attempt(at))
                .dispatch_failed(&id);
        }
        for i in 0..healthy {
            let id = format!("h{i}");
            b = b.bead(
                issue(&id, "r")
                    .status(BeadStatus::InProgress)
                    .attempts(1)
                    .last_attempt(at),
            );
        }
        b
    }

    #[test]
    fn opens_at_twenty_failed_beads_not_nineteen() {
        assert!(!evaluate(&town(19, 0, T0).build(), T0).is_open());
        let open = evaluate(&town(20, 0, T0).build(), T0);
        assert!(open.is_open());
        assert_eq!(open.failures, 20);
    }

    #[test]
    fn healthy_in_flight_dispatches_do_not_count() {
        let b = evaluate(&town(19, 50, T0).build(), T0);
        assert_eq!(b.failures, 19);
        assert!(!b.is_open());
    }

    #[test]
    fn the_window_is_thirty_minutes_and_closed_beads_do_not_count() {
        let at = T0 - 30 * MINUTE;
        assert!(evaluate(&town(20, 0, at).build(), T0).is_open());
        assert!(!evaluate(&town(20, 0, at).build(), T0 + 1).is_open());
        let closed = town(19, 0, T0)
            .bead(
                issue("c", "r")
                    .status(BeadStatus::Closed)
                    .attempts(1)
                    .last_attempt(T0),
            )
            .dispatch_failed("c");
        assert_eq!(evaluate(&closed.build(), T0).failures, 19);
        let failed_bead = town(19, 0, T0)
            .bead(
                issue("x", "r")
                    .status(BeadStatus::Failed)
                    .attempts(5)
                    .last_attempt(T0),
            )
            .dispatch_failed("x");
        assert_eq!(evaluate(&failed_bead.build(), T0).failures, 20);
    }

    #[test]
    fn the_mayor_is_told_once_per_opening_and_once_when_it_closes() {
        let opened = town(20, 0, T0).build();
        let b = evaluate(&opened, T0);
        let Some(Action::NotifyMayor { message, notice: n }) = notice(&opened, b) else {
            panic!("an opening notice is due");
        };
        assert_eq!(n, MayorNotice::BreakerOpened);
        assert_eq!(
            message,
            "Dispatch circuit breaker is OPEN: 20 dispatch failures in the last 30 minutes. \
             All dispatch actions are paused until failures clear."
        );

        let still_open = town(25, 0, T0).breaker_notified_at("2026-11-29T01:00:00.000Z");
        let still_open = still_open.build();
        assert_eq!(notice(&still_open, evaluate(&still_open, T0)), None);

        let closed = town(19, 0, T0).breaker_notified_at("2026-11-29T01:00:00.000Z");
        let closed = closed.build();
        assert!(matches!(
            notice(&closed, evaluate(&closed, T0)),
            Some(Action::NotifyMayor {
                notice: MayorNotice::BreakerClosed,
                ..
            })
        ));

        let quiet = town(19, 0, T0).build();
        assert_eq!(notice(&quiet, evaluate(&quiet, T0)), None);
    }
}
