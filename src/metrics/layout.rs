//! The one table of "which metric lives in which Analytics Engine slot".
//!
//! The writer fills points from it, the debug endpoints name slots with it, and the dashboard
//! check reads it, so the three cannot drift apart. Positions follow GASTOWN-DOMAIN.md section 7.

/// A place in an AE data point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Blob(u8),
    Double(u8),
}

impl Slot {
    /// The AE SQL column (`blob6`, `double8`).
    pub fn column(self) -> String {
        match self {
            Slot::Blob(n) => format!("blob{n}"),
            Slot::Double(n) => format!("double{n}"),
        }
    }
}

/// One named field of a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub slot: Slot,
    pub meaning: &'static str,
}

const fn f(name: &'static str, slot: Slot, meaning: &'static str) -> Field {
    Field {
        name,
        slot,
        meaning,
    }
}

/// The common blobs of every gastown event (`writeEvent`).
pub mod blob {
    pub const EVENT: u8 = 1;
    pub const USER_ID: u8 = 2;
    pub const DELIVERY: u8 = 3;
    pub const ROUTE: u8 = 4;
    pub const ERROR: u8 = 5;
    pub const TOWN_ID: u8 = 6;
    pub const RIG_ID: u8 = 7;
    pub const AGENT_ID: u8 = 8;
    pub const BEAD_ID: u8 = 9;
    pub const LABEL: u8 = 10;
    pub const CONVOY_ID: u8 = 11;
    pub const ROLE: u8 = 12;
    pub const BEAD_TYPE: u8 = 13;
    pub const REASON: u8 = 14;
    /// Blobs every point carries (1..=WIDTH), '' where unset.
    pub const WIDTH: u8 = 14;
}

/// The common doubles of every gastown event.
pub mod double {
    pub const DURATION_MS: u8 = 1;
    pub const VALUE: u8 = 2;
    /// Doubles every point carries (1..=WIDTH), 0 where unset.
    pub const WIDTH: u8 = 10;
    /// AE's most doubles a point: a point kind may fill its own beyond `WIDTH`.
    pub const MAX: u8 = 20;
}

/// Index (and blob1) of the per-tick point.
pub const RECONCILER_TICK: &str = "reconciler_tick";
/// Index of the per-action-type points written beside each tick.
pub const RECONCILER_ACTION: &str = "reconciler_action";
/// Index of the invariant-violation point.
pub const INVARIANT_VIOLATIONS: &str = "reconciler.invariant_violations";

/// `reconciler_tick`: one point per town per tick.
pub const TICK_FIELDS: &[Field] = &[
    f("event", Slot::Blob(blob::EVENT), "always 'reconciler_tick'"),
    f(
        "user_id",
        Slot::Blob(blob::USER_ID),
        "the town owner's user id",
    ),
    f("delivery", Slot::Blob(blob::DELIVERY), "always 'internal'"),
    f("town_id", Slot::Blob(blob::TOWN_ID), "the town"),
    f(
        "actions_by_type",
        Slot::Blob(blob::LABEL),
        "JSON object: action type -> count",
    ),
    f(
        "wall_clock_ms",
        Slot::Double(1),
        "ms from the drain to the invariant check",
    ),
    f(
        "events_drained",
        Slot::Double(2),
        "events read by the drain",
    ),
    f(
        "actions_emitted",
        Slot::Double(3),
        "actions the reconciler returned",
    ),
    f(
        "side_effects_attempted",
        Slot::Double(4),
        "side effects started",
    ),
    f(
        "side_effects_succeeded",
        Slot::Double(5),
        "side effects the remote accepted",
    ),
    f(
        "side_effects_failed",
        Slot::Double(6),
        "side effects refused, timed out or unreachable",
    ),
    f(
        "invariant_violations",
        Slot::Double(7),
        "violations found after the tick",
    ),
    f(
        "pending_event_count",
        Slot::Double(8),
        "events still pending after the tick",
    ),
    f(
        "events_failed",
        Slot::Double(9),
        "events that failed or were poisoned this tick",
    ),
    f(
        "oldest_pending_age_ms",
        Slot::Double(10),
        "age of the oldest pending event, 0 if none",
    ),
    // double11 is the original writer's statusCode (0 on a tick point).
    f(
        "side_effects_deferred",
        Slot::Double(12),
        "side effects left for the next tick by the call budget",
    ),
];

/// `reconciler_action`: one point per action type that occurred in a tick.
pub const ACTION_FIELDS: &[Field] = &[
    f(
        "event",
        Slot::Blob(blob::EVENT),
        "always 'reconciler_action'",
    ),
    f(
        "user_id",
        Slot::Blob(blob::USER_ID),
        "the town owner's user id",
    ),
    f("delivery", Slot::Blob(blob::DELIVERY), "always 'internal'"),
    f("town_id", Slot::Blob(blob::TOWN_ID), "the town"),
    f("action_type", Slot::Blob(blob::LABEL), "the action type"),
    f(
        "count",
        Slot::Double(double::VALUE),
        "how many actions of that type the tick emitted",
    ),
];

/// `reconciler.invariant_violations`: one point per tick that found violations.
pub const VIOLATION_FIELDS: &[Field] = &[
    f(
        "event",
        Slot::Blob(blob::EVENT),
        "always 'reconciler.invariant_violations'",
    ),
    f(
        "user_id",
        Slot::Blob(blob::USER_ID),
        "the town owner's user id",
    ),
    f("delivery", Slot::Blob(blob::DELIVERY), "always 'internal'"),
    f("town_id", Slot::Blob(blob::TOWN_ID), "the town"),
    f("messages", Slot::Blob(blob::LABEL), "'[n] message; ...'"),
    f("count", Slot::Double(double::VALUE), "number of violations"),
];

/// The fields of a point kind, by its index.
pub fn fields_of(event: &str) -> Option<&'static [Field]> {
    match event {
        RECONCILER_TICK => Some(TICK_FIELDS),
        RECONCILER_ACTION => Some(ACTION_FIELDS),
        INVARIANT_VIOLATIONS => Some(VIOLATION_FIELDS),
        _ => None,
    }
}

/// The field of `event` named `name`.
pub fn field(event: &str, name: &str) -> Option<Field> {
    fields_of(event)?.iter().copied().find(|f| f.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_two_fields_of_a_point_share_a_slot_or_a_name() {
        for fields in [TICK_FIELDS, ACTION_FIELDS, VIOLATION_FIELDS] {
            for (i, a) in fields.iter().enumerate() {
                for b in &fields[i + 1..] {
                    assert_ne!(a.slot, b.slot, "{} and {}", a.name, b.name);
                    assert_ne!(a.name, b.name);
                }
                match a.slot {
                    Slot::Blob(n) => assert!((1..=blob::WIDTH).contains(&n)),
                    Slot::Double(n) => assert!((1..=double::MAX).contains(&n)),
                }
            }
        }
    }

    #[test]
    fn the_tick_keeps_the_original_positions() {
        let col = |name| field(RECONCILER_TICK, name).unwrap().slot.column();
        assert_eq!(col("wall_clock_ms"), "double1");
        assert_eq!(col("pending_event_count"), "double8");
        assert_eq!(col("actions_by_type"), "blob10");
        assert_eq!(col("town_id"), "blob6");
    }
}
