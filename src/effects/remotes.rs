//! Where the town's remotes are, how to reach them, and how a batch of calls went.

use super::container::Container;
use super::container::ContainerTimeouts;
use crate::ports::Http;
use crate::vocabulary::time::Millis;

/// Where the remotes are and how to reach them.
#[derive(Debug, Clone, PartialEq)]
pub struct Remotes {
    /// The container's base URL (`http://container` for the town's Durable Object or the
    /// service binding).
    pub container_base: String,
    pub github_base: String,
    /// `GITHUB_TOKEN`, used when the town has no token of its own.
    pub github_token: String,
    /// `GASTOWN_JWT_SECRET`: signs the container and agent tokens ('' = unset: no starts).
    pub jwt_secret: String,
    /// `GASTOWN_API_URL`: this Worker's public base URL, where agents call back.
    pub gastown_api_url: String,
    pub container_timeouts: ContainerTimeouts,
    /// Side effects in flight at once.
    pub concurrency: usize,
    /// No side effect starts later than this after the tick began.
    pub deadline_ms: Millis,
    /// Most agents observed per tick (`TICK_OBSERVE_BUDGET`).
    pub observe_budget: usize,
    /// How long an agent goes unheard of before it is asked about (`TICK_OBSERVE_INTERVAL_MS`).
    pub observe_interval_ms: Millis,
    /// The observation phase's deadline from its start (`TICK_OBSERVE_DEADLINE_MS`).
    pub observe_deadline_ms: Millis,
    /// Remote calls per tick, all phases together (`TICK_SUBREQUEST_BUDGET`).
    pub subrequest_budget: usize,
}

impl Remotes {
    /// The client of the town's container, with the configured timeouts.
    pub fn container<'h, H: Http>(&self, http: &'h H) -> Container<'h, H> {
        Container::new(http, self.container_base.clone()).with_timeouts(self.container_timeouts)
    }
}

/// How the side effects of a tick went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub attempted: u64,
    pub succeeded: u64,
    pub failed: u64,
}
