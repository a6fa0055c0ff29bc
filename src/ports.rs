//! The ports the town's logic runs over, besides [`Sql`](crate::sql::Sql): clock, ids and
//! analytics. The Durable Object adapts them to the platform (`runtime`); tests use the
//! deterministic adapters here.

use crate::metrics::point::DataPoint;
use crate::vocabulary::time::Millis;
use std::cell::{Cell, RefCell};

/// The town's clock.
pub trait Clock {
    fn now_ms(&self) -> Millis;
}

/// New unique ids.
pub trait Ids {
    fn new_id(&self) -> String;
}

/// The Analytics Engine dataset.
pub trait AnalyticsSink {
    /// Hands one point to the dataset; an error is reported, never thrown.
    fn write(&self, point: &DataPoint) -> Result<(), String>;
}

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

/// An outbound HTTP request (container control plane, PR host).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// The call fails with [`HttpError::Timeout`] when no answer came in this time.
    pub timeout_ms: Millis,
}

/// An answer, whatever its status.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
}

/// Why there was no answer.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpError {
    Timeout,
    /// Connection refused, DNS, TLS, reset...
    Network(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Timeout => f.write_str("timed out"),
            HttpError::Network(m) => write!(f, "network error: {m}"),
        }
    }
}

/// Outbound HTTP: `fetch` (or a service binding) in the Worker, a recording fake in tests.
#[allow(async_fn_in_trait)]
pub trait Http {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError>;
}
