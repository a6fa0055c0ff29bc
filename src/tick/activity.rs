//! Whether a town has work it can get done, which keeps its alarm on the active interval
//! (GASTOWN-DOMAIN.md 5.1): work in flight (`store::activity`), or open triage requests while
//! the triage loop can act on them. A request nobody can work on (no rig, the dispatch circuit
//! breaker open, a failed batch cooling down) does not count: in the original one stuck
//! request kept its town on the 5-second alarm for good (about 17,000 alarms a day instead of
//! 288).

use crate::domain::triage::{self, Batching};
use crate::reconciler::breaker::Breaker;
use crate::reconciler::constants::CIRCUIT_BREAKER_WINDOW_MINUTES;
use crate::sql::Sql;
use crate::store::activity::has_work_in_flight;
use crate::store::beads::dispatch_failures_since;
use crate::vocabulary::time::{Millis, MINUTE};

/// Whether the dispatch circuit breaker is open at `now`, by the reconciler's rule.
pub fn breaker_open(sql: &dyn Sql, now: Millis) -> Result<bool, crate::sql::SqlError> {
    let since = now - CIRCUIT_BREAKER_WINDOW_MINUTES * MINUTE;
    let failures = dispatch_failures_since(sql, since)?;
    Ok(Breaker {
        failures: usize::try_from(failures).unwrap_or(0),
    }
    .is_open())
}

/// Where the triage loop stands at `now`.
pub fn triage(sql: &dyn Sql, now: Millis) -> Result<Batching, crate::domain::DomainError> {
    triage::assess(sql, now, breaker_open(sql, now)?)
}

/// Whether the town has work it can get done at `now` (when unsure, it has: a slow alarm is
/// the costlier mistake).
pub fn is_active(sql: &dyn Sql, now: Millis) -> bool {
    let in_flight = has_work_in_flight(sql).unwrap_or_else(|e| {
        crate::log::error("activity_unread", &[("error", &e.to_string())]);
        true
    });
    in_flight
        || triage(sql, now).map_or_else(
            |e| {
                crate::log::error("activity_unread", &[("error", &e.to_string())]);
                true
            },
            |t| t.is_workable(),
        )
}
