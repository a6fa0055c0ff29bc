//! The ports the town's logic runs over, besides [`Sql`](crate::sql::Sql) and the analytics
//! sink (`metrics::writer`): clock, ids and outbound HTTP. The Durable Object adapts them to the
//! platform (`runtime`); tests use the deterministic adapters of `testing`.

use crate::vocabulary::time::Millis;

/// The town's clock.
pub trait Clock {
    fn now_ms(&self) -> Millis;
}

/// New unique ids.
pub trait Ids {
    fn new_id(&self) -> String;
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
