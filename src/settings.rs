//! The Worker's numeric settings (vars): each has a default and a sane range, and a value out of
//! range is clamped to it with a warning, so a typo cannot make a hot loop
//! (`ALARM_INTERVAL_ACTIVE_SECS=0`), a tick that never ends or a call that never times out. An
//! unset var takes the default; one that is not an integer takes the default with a warning.
//! Each adjustment is warned about once per isolate (the vars are read on every tick).

use crate::vocabulary::time::SECOND;
use std::cell::RefCell;
use std::collections::HashSet;

/// One numeric var: its name, default and inclusive range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub name: &'static str,
    pub default: i64,
    pub min: i64,
    pub max: i64,
}

/// Events applied per tick.
pub const TICK_DRAIN_LIMIT: Setting = Setting {
    name: "TICK_DRAIN_LIMIT",
    default: 500,
    min: 1,
    max: 10_000,
};
/// Re-arm delay while there is work; 0 would re-run the tick in a loop. A day at most (the
/// benchmark parks the alarm that far).
pub const ALARM_INTERVAL_ACTIVE_SECS: Setting = Setting {
    name: "ALARM_INTERVAL_ACTIVE_SECS",
    default: 5,
    min: 1,
    max: 86_400,
};
pub const ALARM_INTERVAL_IDLE_SECS: Setting = Setting {
    name: "ALARM_INTERVAL_IDLE_SECS",
    default: 300,
    min: 5,
    max: 86_400,
};
/// Ticks kept in the metrics history.
pub const TICK_METRICS_KEEP: Setting = Setting {
    name: "TICK_METRICS_KEEP",
    default: 1_000,
    min: 1,
    max: 100_000,
};
/// `POST /agents/start`: the container clones and boots first.
pub const CONTAINER_START_TIMEOUT_MS: Setting = Setting {
    name: "CONTAINER_START_TIMEOUT_MS",
    default: 60 * SECOND,
    min: SECOND,
    max: 5 * 60 * SECOND,
};
pub const CONTAINER_STATUS_TIMEOUT_MS: Setting = Setting {
    name: "CONTAINER_STATUS_TIMEOUT_MS",
    default: 10 * SECOND,
    min: 500,
    max: 60 * SECOND,
};
pub const CONTAINER_HEALTH_TIMEOUT_MS: Setting = Setting {
    name: "CONTAINER_HEALTH_TIMEOUT_MS",
    default: 5 * SECOND,
    min: 500,
    max: 60 * SECOND,
};
/// Stop, message, refresh-token and sync-config.
pub const CONTAINER_CALL_TIMEOUT_MS: Setting = Setting {
    name: "CONTAINER_CALL_TIMEOUT_MS",
    default: 10 * SECOND,
    min: 500,
    max: 60 * SECOND,
};
/// Outbound calls in flight at once: the platform lets an invocation have six waiting for
/// response headers and queues the rest (their timeouts already running).
pub const SIDE_EFFECT_CONCURRENCY: Setting = Setting {
    name: "SIDE_EFFECT_CONCURRENCY",
    default: 6,
    min: 1,
    max: 64,
};
/// No side effect starts later than this into a tick; an alarm handler may run 15 minutes.
pub const TICK_DEADLINE_MS: Setting = Setting {
    name: "TICK_DEADLINE_MS",
    default: 20 * SECOND,
    min: SECOND,
    max: 5 * 60 * SECOND,
};

/// Agents asked about per tick (`GET /agents/{a}/status`), oldest observed first: with more
/// working agents than this, each is still seen every `ceil(agents / budget)` ticks. 100 calls
/// is a tenth of the paid plan's 1,000 subrequests per invocation and, six in flight, ~17
/// round trips.
pub const TICK_OBSERVE_BUDGET: Setting = Setting {
    name: "TICK_OBSERVE_BUDGET",
    default: 100,
    min: 1,
    max: 1_000,
};
/// The observation phase ends this long after it began: no status call starts later and none
/// waits past it, so a hung container delays the drain by this much, not by
/// `agents / 6 x CONTAINER_STATUS_TIMEOUT_MS`.
pub const TICK_OBSERVE_DEADLINE_MS: Setting = Setting {
    name: "TICK_OBSERVE_DEADLINE_MS",
    default: 5 * SECOND,
    min: 500,
    max: 60 * SECOND,
};

/// An agent is asked about only when the town has heard nothing of it for this long: no status
/// answer, and no heartbeat or other call of its own (`last_activity_at`). The container
/// heartbeats each running agent every 30 s and reports an exit itself (`POST .../completed`),
/// so asking a heartbeating agent every tick only re-learns "running"; the status call is the
/// safety net for an exit whose report was lost, found at most this much (plus a tick) after
/// the agent's last sign. 45 s is a heartbeat and a half; 0 asks every tick, as the original.
pub const TICK_OBSERVE_INTERVAL_MS: Setting = Setting {
    name: "TICK_OBSERVE_INTERVAL_MS",
    default: 45 * SECOND,
    min: 0,
    max: 10 * 60 * SECOND,
};

/// Remote calls per tick, upkeep, observation and side effects together (see
/// `tick::budget`): 900 leaves a tenth of the Workers Paid plan's 1,000 subrequests per
/// invocation spare. On the free plan (50) set it to 45.
pub const TICK_SUBREQUEST_BUDGET: Setting = Setting {
    name: "TICK_SUBREQUEST_BUDGET",
    default: 900,
    min: 10,
    max: 10_000,
};

thread_local! {
    /// The adjusted vars already warned about in this isolate, with the value as given.
    static WARNED: RefCell<HashSet<(&'static str, String)>> = RefCell::new(HashSet::new());
}

/// Why a var's value was not taken as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adjusted {
    /// Out of range: the nearest bound is used.
    Clamped { given: i64, used: i64 },
    /// Not an integer: the default is used.
    Unreadable { given: String, used: i64 },
}

impl Setting {
    /// The value of `raw` (the var as set, `None` or blank when unset), and what was adjusted.
    pub fn read(&self, raw: Option<&str>) -> (i64, Option<Adjusted>) {
        let raw = raw.map(str::trim).unwrap_or_default();
        if raw.is_empty() {
            return (self.default, None);
        }
        match raw.parse::<i64>() {
            Ok(given) => {
                let used = given.clamp(self.min, self.max);
                (
                    used,
                    (used != given).then_some(Adjusted::Clamped { given, used }),
                )
            }
            Err(_) => (
                self.default,
                Some(Adjusted::Unreadable {
                    given: raw.to_owned(),
                    used: self.default,
                }),
            ),
        }
    }

    /// [`Setting::read`], logging a warning when the value was adjusted: once per var and value
    /// in an isolate, not on every tick that reads it.
    pub fn value(&self, raw: Option<&str>) -> i64 {
        let (value, adjusted) = self.read(raw);
        let first_time = || {
            let given = raw.map(str::trim).unwrap_or_default().to_owned();
            WARNED.with(|w| w.borrow_mut().insert((self.name, given)))
        };
        match adjusted {
            None => {}
            Some(_) if !first_time() => {}
            Some(Adjusted::Clamped { given, used }) => crate::log::warn(
                "setting_clamped",
                &[
                    ("name", self.name),
                    ("given", &given.to_string()),
                    ("used", &used.to_string()),
                    ("range", &format!("{}..={}", self.min, self.max)),
                ],
            ),
            Some(Adjusted::Unreadable { given, used }) => crate::log::warn(
                "setting_unreadable",
                &[
                    ("name", self.name),
                    ("given", &given),
                    ("used", &used.to_string()),
                ],
            ),
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Setting; 14] = [
        TICK_SUBREQUEST_BUDGET,
        TICK_OBSERVE_BUDGET,
        TICK_OBSERVE_INTERVAL_MS,
        TICK_OBSERVE_DEADLINE_MS,
        TICK_DRAIN_LIMIT,
        ALARM_INTERVAL_ACTIVE_SECS,
        ALARM_INTERVAL_IDLE_SECS,
        TICK_METRICS_KEEP,
        CONTAINER_START_TIMEOUT_MS,
        CONTAINER_STATUS_TIMEOUT_MS,
        CONTAINER_HEALTH_TIMEOUT_MS,
        CONTAINER_CALL_TIMEOUT_MS,
        SIDE_EFFECT_CONCURRENCY,
        TICK_DEADLINE_MS,
    ];

    #[test]
    fn a_zero_interval_is_clamped_to_one_second_not_a_hot_loop() {
        assert_eq!(
            ALARM_INTERVAL_ACTIVE_SECS.read(Some("0")),
            (1, Some(Adjusted::Clamped { given: 0, used: 1 }))
        );
        assert_eq!(
            ALARM_INTERVAL_IDLE_SECS.read(Some("-3")),
            (5, Some(Adjusted::Clamped { given: -3, used: 5 }))
        );
    }

    #[test]
    fn values_in_range_are_taken_and_out_of_range_clamped_to_the_nearest_bound() {
        for s in ALL {
            assert!(s.min <= s.default && s.default <= s.max, "{}", s.name);
            assert_eq!(
                s.read(Some(&s.min.to_string())),
                (s.min, None),
                "{}",
                s.name
            );
            assert_eq!(
                s.read(Some(&s.max.to_string())),
                (s.max, None),
                "{}",
                s.name
            );
            let above = s.max + 1;
            assert_eq!(
                s.read(Some(&above.to_string())),
                (
                    s.max,
                    Some(Adjusted::Clamped {
                        given: above,
                        used: s.max
                    })
                ),
                "{}",
                s.name
            );
            let below = s.min - 1;
            assert_eq!(s.read(Some(&below.to_string())).0, s.min, "{}", s.name);
        }
        assert_eq!(TICK_DEADLINE_MS.read(Some(" 30000 ")), (30_000, None));
    }

    #[test]
    fn unset_takes_the_default_silently_and_garbage_takes_it_with_a_warning() {
        assert_eq!(TICK_DRAIN_LIMIT.read(None), (500, None));
        assert_eq!(TICK_DRAIN_LIMIT.read(Some("  ")), (500, None));
        assert_eq!(
            TICK_DRAIN_LIMIT.read(Some("5e2")),
            (
                500,
                Some(Adjusted::Unreadable {
                    given: "5e2".into(),
                    used: 500
                })
            )
        );
    }
}
