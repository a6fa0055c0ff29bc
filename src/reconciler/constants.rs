//! The reconciler's numbers (GASTOWN-DOMAIN.md 3.1), in one place, with the original's names.

use crate::vocabulary::time::{Millis, HOUR, MINUTE, SECOND};

/// Failed dispatches within the window that open the circuit breaker.
pub const CIRCUIT_BREAKER_FAILURE_THRESHOLD: usize = 20;
/// How far back the circuit breaker counts failed dispatches, in minutes.
pub const CIRCUIT_BREAKER_WINDOW_MINUTES: i64 = 30;
/// A direct review in progress for this long is stuck when no agent works on it (R2).
pub const STUCK_REVIEW_TIMEOUT_MS: Millis = 30 * MINUTE;
/// A direct review in progress for this long with no agent hooked is abandoned (R3).
pub const ABANDONED_MR_TIMEOUT_MS: Millis = 2 * MINUTE;
/// In-progress and in-review issue beads are recovered after this long (B3, B4).
pub const ORPHANED_SOURCE_TIMEOUT_MS: Millis = 5 * MINUTE;
/// A PR review with no working agent and no polling for this long is orphaned (R4).
pub const ORPHANED_PR_REVIEW_TIMEOUT_MS: Millis = 30 * MINUTE;
/// In-progress work untouched this long has lost its agent; exceeds the container's 2-minute
/// idle timeout plus one 5-second tick.
pub const STALE_IN_PROGRESS_TIMEOUT_MS: Millis = 5 * MINUTE;
/// Three missed 30-second heartbeats (hard-coded in the original reconciler).
pub const HEARTBEAT_STALE_MS: Millis = 90 * SECOND;
/// The shortest wait between two dispatch attempts of one bead.
pub const DISPATCH_COOLDOWN_MS: Millis = 2 * MINUTE;
/// GUPP: no activity for this long earns a warning nudge. The patrol's `GUPP_WARN_MS` is 30
/// minutes; the reconciler hard-codes 15, and this is that number.
pub const RECONCILER_GUPP_WARN_MS: Millis = 15 * MINUTE;
/// GUPP: no activity for this long earns an escalation nudge and a triage request.
pub const GUPP_ESCALATE_MS: Millis = HOUR;
/// GUPP: no activity for this long stops the agent.
pub const GUPP_FORCE_STOP_MS: Millis = 2 * HOUR;
/// Unhooked idle or dead workers are deleted after this long.
pub const AGENT_GC_RETENTION_MS: Millis = 24 * HOUR;
/// The shortest wait between two polls of one pull request (#1632).
pub const PR_POLL_INTERVAL_MS: Millis = 60 * SECOND;
/// A GUPP nudge of one tier is not repeated within this window (hard-coded in the original).
pub const NUDGE_DEDUPE_WINDOW_MS: Millis = HOUR;

/// How long a bead waits after its last dispatch attempt before the next one, by the number of
/// attempts made so far: up to 2 -> 2 min, 3 -> 5 min, 4 -> 10 min, 5 or more -> 30 min.
pub fn dispatch_cooldown_ms(attempts: i64) -> Millis {
    match attempts {
        ..=2 => DISPATCH_COOLDOWN_MS,
        3 => 5 * MINUTE,
        4 => 10 * MINUTE,
        _ => 30 * MINUTE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_schedule_is_2_2_5_10_30_minutes() {
        let minutes: Vec<_> = (0..=6).map(|n| dispatch_cooldown_ms(n) / MINUTE).collect();
        assert_eq!(minutes, [2, 2, 2, 5, 10, 30, 30]);
    }
}
