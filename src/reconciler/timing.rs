//! When a timestamp is old enough for a rule to act (GASTOWN-DOMAIN.md 3.1).
//!
//! Timestamps are stored as ISO-8601 text (or SQLite's `YYYY-MM-DD HH:MM:SS` for old nudge
//! rows). A missing timestamp counts as stale, and so does one that does not parse: the rules
//! that read staleness recover lost work, and a time that cannot be read proves no recent life.

use super::constants::dispatch_cooldown_ms;
use crate::domain::dispatch::MAX_DISPATCH_ATTEMPTS;
use crate::vocabulary::model::Bead;
use crate::vocabulary::time::{parse_iso, Millis};

/// Stale when absent, unreadable, or strictly more than `threshold` before `now`.
pub fn is_stale(at: Option<&str>, now: Millis, threshold: Millis) -> bool {
    at.and_then(parse_iso).is_none_or(|t| now - t > threshold)
}

/// Whether the bead's dispatch backoff still holds (its last attempt is not yet stale under the
/// cooldown for its attempt count); a bead never attempted may be dispatched.
pub fn cooling_down(bead: &Bead, now: Millis) -> bool {
    !is_stale(
        bead.last_dispatch_attempt_at.as_deref(),
        now,
        dispatch_cooldown_ms(bead.dispatch_attempts),
    )
}

/// Whether the bead has used up its dispatch attempts.
pub fn out_of_attempts(bead: &Bead) -> bool {
    bead.dispatch_attempts >= MAX_DISPATCH_ATTEMPTS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::snapshot::{issue, T0};
    use crate::vocabulary::time::{iso, MINUTE, SECOND};

    #[test]
    fn null_and_unreadable_are_stale_and_the_threshold_is_strict() {
        let t = iso(T0);
        assert!(is_stale(None, T0, SECOND));
        assert!(is_stale(Some("yesterday"), T0, SECOND));
        assert!(!is_stale(Some(&t), T0 + SECOND, SECOND));
        assert!(is_stale(Some(&t), T0 + SECOND + 1, SECOND));
        assert!(!is_stale(Some("2026-11-29 03:09:52"), 1_795_921_792_000, 0));
    }

    #[test]
    fn the_cooldown_follows_the_attempt_count_from_the_last_attempt() {
        let never = issue("b", "r").attempts(2).bead();
        assert!(!cooling_down(&never, T0), "never attempted");
        for (attempts, minutes) in [(1, 2), (2, 2), (3, 5), (4, 10), (5, 30), (7, 30)] {
            let b = issue("b", "r").attempts(attempts).last_attempt(T0).bead();
            let wait = minutes * MINUTE;
            assert!(cooling_down(&b, T0 + wait), "{attempts}: at the cooldown");
            assert!(!cooling_down(&b, T0 + wait + 1), "{attempts}: just after");
        }
    }

    #[test]
    fn five_attempts_are_the_limit() {
        assert!(!out_of_attempts(&issue("b", "r").attempts(4).bead()));
        assert!(out_of_attempts(&issue("b", "r").attempts(5).bead()));
    }
}
