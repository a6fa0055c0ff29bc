//! The analytics writer (the original's `writeEvent`): builds points from the layout and hands
//! them to the analytics port. It never fails the caller: a sink error is logged and dropped,
//! and at most [`MAX_POINTS_PER_INVOCATION`] points leave one invocation (AE allows 250).
//!
//! The last [`RESERVED_FOR_TICK`] of them are kept for the points that describe the tick (its
//! `reconciler_tick`, one `reconciler_action` per action type, the violations), written last:
//! points of single happenings (an agent spawned, a domain event) fill only the rest, so a busy
//! tick never loses its own. What did not fit is logged once per invocation, counted by event.

use super::layout::{self, blob, Field, Slot};
use super::point::DataPoint;
use super::ReconcilerMetrics;
use crate::vocabulary::actions::Action;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

/// The Analytics Engine dataset.
pub trait AnalyticsSink {
    /// Hands one point to the dataset; an error is reported, never thrown.
    fn write(&self, point: &DataPoint) -> Result<(), String>;
}

/// Points one invocation may write; further points are dropped (see [`Analytics`]).
pub const MAX_POINTS_PER_INVOCATION: u32 = 100;

/// Points of an invocation that only the tick's own points may use: its `reconciler_tick`, one
/// `reconciler_action` per action type and the violations point.
pub const RESERVED_FOR_TICK: u32 = 2 + Action::TYPE_COUNT;

/// Who the points are about.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Origin {
    pub town_id: String,
    pub owner_user_id: String,
}

/// Writes points for one invocation; when dropped, logs what did not fit (one line).
pub struct Analytics<'a> {
    sink: &'a dyn AnalyticsSink,
    origin: Origin,
    written: Cell<u32>,
    /// Points left out for want of room, by event.
    dropped: RefCell<BTreeMap<String, u32>>,
}

impl<'a> Analytics<'a> {
    pub fn new(sink: &'a dyn AnalyticsSink, origin: Origin) -> Self {
        Self {
            sink,
            origin,
            written: Cell::new(0),
            dropped: RefCell::new(BTreeMap::new()),
        }
    }

    /// How many more points of single happenings this invocation may write.
    pub fn remaining(&self) -> u32 {
        (MAX_POINTS_PER_INVOCATION - RESERVED_FOR_TICK).saturating_sub(self.written.get())
    }

    /// A point for an internal event of this town (blob3 `internal`).
    pub fn internal(&self, event: &str) -> DataPoint {
        let mut p = DataPoint::new(event);
        p.set_blob(blob::USER_ID, &self.origin.owner_user_id)
            .set_blob(blob::DELIVERY, "internal")
            .set_blob(blob::TOWN_ID, &self.origin.town_id);
        p
    }

    /// Sends the point of a single happening if there is room for it; never fails.
    pub fn write(&self, point: DataPoint) {
        if self.remaining() == 0 {
            *self.dropped.borrow_mut().entry(point.index).or_default() += 1;
            return;
        }
        self.send(point);
    }

    /// Sends one of the tick's own points, from the reserved room.
    fn write_reserved(&self, point: DataPoint) {
        if self.written.get() >= MAX_POINTS_PER_INVOCATION {
            *self.dropped.borrow_mut().entry(point.index).or_default() += 1;
            return;
        }
        self.send(point);
    }

    fn send(&self, point: DataPoint) {
        self.written.set(self.written.get() + 1);
        if let Err(e) = self.sink.write(&point.fitted()) {
            crate::log::warn("analytics_write_failed", &[("error", e.as_str())]);
        }
    }

    /// The `reconciler_tick` point, plus one `reconciler_action` point per action type.
    pub fn tick(&self, m: &ReconcilerMetrics) -> DataPoint {
        let mut p = self.internal(layout::RECONCILER_TICK);
        fill(&mut p, layout::TICK_FIELDS, |name| tick_value(m, name));
        for (action_type, count) in &m.actions_by_type {
            let mut a = self.internal(layout::RECONCILER_ACTION);
            fill(&mut a, layout::ACTION_FIELDS, |name| match name {
                "action_type" => Value::Text(action_type.clone()),
                "count" => Value::Number(*count as f64),
                _ => Value::Common,
            });
            self.write_reserved(a);
        }
        let p = p.fitted();
        self.write_reserved(p.clone());
        p
    }

    /// The `reconciler.invariant_violations` point.
    pub fn violations(&self, messages: &[String]) {
        if messages.is_empty() {
            return;
        }
        let joined = messages
            .iter()
            .enumerate()
            .map(|(i, m)| format!("[{}] {m}", i + 1))
            .collect::<Vec<_>>()
            .join("; ");
        let mut p = self.internal(layout::INVARIANT_VIOLATIONS);
        fill(&mut p, layout::VIOLATION_FIELDS, |name| match name {
            "messages" => Value::Text(joined.clone()),
            "count" => Value::Number(messages.len() as f64),
            _ => Value::Common,
        });
        self.write_reserved(p);
    }
}

impl Drop for Analytics<'_> {
    fn drop(&mut self) {
        let dropped = self.dropped.get_mut();
        if dropped.is_empty() {
            return;
        }
        let count: u32 = dropped.values().sum();
        let events = dropped
            .iter()
            .map(|(event, n)| format!("{event} x{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        crate::log::warn(
            "analytics_points_dropped",
            &[
                ("count", &count.to_string()),
                ("events", &events),
                ("why", "per-invocation cap"),
            ],
        );
    }
}

enum Value {
    Text(String),
    Number(f64),
    /// Filled by [`Analytics::internal`] (event, owner, delivery, town).
    Common,
}

fn fill(p: &mut DataPoint, fields: &[Field], value: impl Fn(&str) -> Value) {
    for f in fields {
        match (f.slot, value(f.name)) {
            (Slot::Blob(n), Value::Text(s)) => {
                p.set_blob(n, &s);
            }
            (Slot::Double(n), Value::Number(x)) => {
                p.set_double(n, x);
            }
            (_, Value::Common) => {}
            (slot, _) => unreachable!("layout field {} at {slot:?} got the wrong kind", f.name),
        }
    }
}

fn tick_value(m: &ReconcilerMetrics, name: &str) -> Value {
    let n = |x: u64| Value::Number(x as f64);
    match name {
        "actions_by_type" => Value::Text(m.actions_by_type_json()),
        "wall_clock_ms" => Value::Number(m.wall_clock_ms),
        "events_drained" => n(m.events_drained),
        "actions_emitted" => n(m.actions_emitted),
        "side_effects_attempted" => n(m.side_effects_attempted),
        "side_effects_succeeded" => n(m.side_effects_succeeded),
        "side_effects_failed" => n(m.side_effects_failed),
        "invariant_violations" => n(m.invariant_violations),
        "pending_event_count" => n(m.pending_event_count),
        "events_failed" => n(m.events_failed),
        "oldest_pending_age_ms" => Value::Number(m.oldest_pending_age_ms),
        "side_effects_deferred" => n(m.side_effects_deferred),
        _ => Value::Common,
    }
}
