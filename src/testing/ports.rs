//! Deterministic adapters of the ports: a clock that moves only when told to, sequential ids
//! and an analytics sink that keeps every point.

use crate::metrics::point::DataPoint;
use crate::metrics::writer::AnalyticsSink;
use crate::ports::{Clock, Ids};
use crate::vocabulary::time::Millis;
use std::cell::{Cell, RefCell};

/// A clock that moves only when told to.
#[derive(Debug, Default)]
pub struct ManualClock(Cell<Millis>);

impl ManualClock {
    pub fn at(ms: Millis) -> Self {
        Self(Cell::new(ms))
    }

    pub fn advance(&self, by: Millis) {
        self.0.set(self.0.get() + by);
    }

    pub fn set(&self, ms: Millis) {
        self.0.set(ms);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Millis {
        self.0.get()
    }
}

/// Ids `<prefix>-1`, `<prefix>-2`, ...: reproducible for tests and the simulation.
#[derive(Debug)]
pub struct SequentialIds {
    prefix: String,
    next: Cell<u64>,
}

impl SequentialIds {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            next: Cell::new(1),
        }
    }
}

impl Ids for SequentialIds {
    fn new_id(&self) -> String {
        let n = self.next.get();
        self.next.set(n + 1);
        format!("{}-{n:06}", self.prefix)
    }
}

/// An analytics sink that keeps every point (tests), or refuses them all on demand.
#[derive(Debug, Default)]
pub struct RecordingSink {
    pub points: RefCell<Vec<DataPoint>>,
    pub refuse: Cell<bool>,
}

impl AnalyticsSink for RecordingSink {
    fn write(&self, point: &DataPoint) -> Result<(), String> {
        if self.refuse.get() {
            return Err("sink refused the point".into());
        }
        self.points.borrow_mut().push(point.clone());
        Ok(())
    }
}
