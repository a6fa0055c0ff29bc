//! When the town's alarm fires: a fact that gives the reconciler work pulls the alarm forward to
//! now, coalesced so that a burst of facts costs at most one extra tick a second. The tick stays
//! the one path that acts on facts; this only decides when it runs.

use crate::vocabulary::time::{Millis, SECOND};

/// The least time between the starts of two ticks that a fact may ask for.
pub const GAP_MS: Millis = SECOND;

/// When a fact accepted at `now` wants the alarm: now, but not sooner than [`GAP_MS`] after the
/// start of the last tick (`None`: no tick started in this instance's lifetime).
pub fn wake_at(now: Millis, last_tick_started: Option<Millis>) -> Millis {
    last_tick_started.map_or(now, |started| now.max(started + GAP_MS))
}

/// Whether the armed alarm (`None`: none) moves to `at`: only when it would fire later.
pub fn moves(armed: Option<Millis>, at: Millis) -> bool {
    armed.is_none_or(|armed| armed > at)
}

/// The alarm a finished tick leaves: its own re-arm (`None`: no alarm, the town is gone), or the
/// wake a fact asked for while the tick ran, when that is sooner.
pub fn after_tick(rearm_at: Option<Millis>, woken: Option<Millis>) -> Option<Millis> {
    match (rearm_at, woken) {
        (Some(rearm), Some(woken)) => Some(rearm.min(woken)),
        (rearm, _) => rearm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fact_wakes_the_town_now_unless_a_tick_started_within_the_gap() {
        assert_eq!(wake_at(10_000, None), 10_000);
        assert_eq!(wake_at(10_000, Some(5_000)), 10_000);
        assert_eq!(wake_at(10_000, Some(9_000)), 10_000);
        assert_eq!(wake_at(10_000, Some(9_400)), 10_400);
        assert_eq!(wake_at(10_000, Some(10_000)), 11_000);
    }

    #[test]
    fn the_alarm_only_moves_sooner() {
        assert!(moves(None, 10_000));
        assert!(moves(Some(300_000), 10_000));
        assert!(!moves(Some(10_000), 10_000));
        assert!(!moves(Some(9_000), 10_000));
    }

    #[test]
    fn a_wake_during_a_tick_shortens_its_rearm_but_never_revives_a_deleted_town() {
        assert_eq!(after_tick(Some(305_000), Some(6_000)), Some(6_000));
        assert_eq!(after_tick(Some(5_000), Some(6_000)), Some(5_000));
        assert_eq!(after_tick(Some(5_000), None), Some(5_000));
        assert_eq!(after_tick(None, Some(6_000)), None);
    }

    #[test]
    fn a_burst_of_facts_makes_at_most_one_tick_a_second() {
        // Facts every 10 ms for 5 s; each tick takes 50 ms and starts when its alarm is due.
        let mut alarm: Option<Millis> = None;
        let mut started: Option<Millis> = None;
        let mut ticks = Vec::new();
        for now in (0..5_000).step_by(10) {
            if alarm.is_some_and(|at| at <= now) && started.is_none_or(|s| now >= s + 50) {
                ticks.push(now);
                started = Some(now);
                alarm = None;
            }
            let at = wake_at(now, started);
            if moves(alarm, at) {
                alarm = Some(at);
            }
        }
        assert!(ticks.len() <= 6, "{ticks:?}");
        assert!(ticks.windows(2).all(|w| w[1] - w[0] >= GAP_MS), "{ticks:?}");
    }
}
