//! Platform adapters of the clock, id and analytics ports, and the Worker's settings.

use crate::effects::container::ContainerTimeouts;
use crate::effects::perform::Remotes;
use crate::metrics::point::DataPoint;
use crate::ports::{AnalyticsSink, Clock, Ids};
use crate::tick::TickOptions;
use crate::time::{Millis, SECOND};
use worker::js_sys::{self, Function, Reflect};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::{AnalyticsEngineDataPointBuilder, AnalyticsEngineDataset, Env};

/// `Date.now()` plus the town's dev-only offset.
pub struct PlatformClock {
    pub offset_ms: Millis,
}

impl Clock for PlatformClock {
    fn now_ms(&self) -> Millis {
        js_sys::Date::now() as Millis + self.offset_ms
    }
}

/// `crypto.randomUUID()`.
pub struct RandomIds;

impl Ids for RandomIds {
    fn new_id(&self) -> String {
        let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))
            .expect("crypto is a global in workerd");
        let uuid: Function = Reflect::get(&crypto, &JsValue::from_str("randomUUID"))
            .expect("crypto.randomUUID exists")
            .unchecked_into();
        uuid.call0(&crypto)
            .ok()
            .and_then(|v| v.as_string())
            .expect("randomUUID returns a string")
    }
}

/// The `GASTOWN_AE` binding; absent -> every write is a no-op.
pub struct AeSink(pub Option<AnalyticsEngineDataset>);

impl AeSink {
    pub fn from_env(env: &Env) -> Self {
        Self(env.analytics_engine("GASTOWN_AE").ok())
    }
}

impl AnalyticsSink for AeSink {
    fn write(&self, point: &DataPoint) -> Result<(), String> {
        let Some(dataset) = &self.0 else {
            return Ok(());
        };
        AnalyticsEngineDataPointBuilder::new()
            .indexes([point.index.as_str()])
            .doubles(point.doubles.iter().copied())
            .blobs(point.blobs.iter().map(String::as_str))
            .write_to(dataset)
            .map_err(|e| e.to_string())
    }
}

/// A var as a string ('' when unset).
pub fn var(env: &Env, name: &str) -> String {
    env.var(name).map(|v| v.to_string()).unwrap_or_default()
}

/// A secret ('' when unset).
pub fn secret(env: &Env, name: &str) -> String {
    env.secret(name).map(|v| v.to_string()).unwrap_or_default()
}

fn number(env: &Env, name: &str, default: i64) -> i64 {
    var(env, name).trim().parse().unwrap_or(default)
}

/// The tick's knobs from the Worker's vars.
pub fn tick_options(env: &Env) -> TickOptions {
    let d = TickOptions::default();
    TickOptions {
        drain_limit: number(env, "TICK_DRAIN_LIMIT", i64::from(d.drain_limit)).clamp(1, 10_000)
            as u32,
        active_interval_ms: number(
            env,
            "ALARM_INTERVAL_ACTIVE_SECS",
            d.active_interval_ms / SECOND,
        ) * SECOND,
        idle_interval_ms: number(env, "ALARM_INTERVAL_IDLE_SECS", d.idle_interval_ms / SECOND)
            * SECOND,
        metrics_keep: number(env, "TICK_METRICS_KEEP", i64::from(d.metrics_keep)).clamp(1, 100_000)
            as u32,
    }
}

/// Side effects in flight at once (`SIDE_EFFECT_CONCURRENCY`, default 6): the platform lets an
/// invocation have six outbound requests waiting for response headers and queues the rest, so
/// more would wait in its queue while their timeouts already run.
const DEFAULT_CONCURRENCY: i64 = 6;
/// No side effect starts later than this into a tick (`TICK_DEADLINE_MS`, default 20 s).
const DEFAULT_DEADLINE_MS: i64 = 20 * SECOND;

/// Whether the town's container is reached through a binding (as [`super::http::SERVICE_BASE`]):
/// the `TOWN_CONTAINER` Durable Object namespace or the `CONTAINER` service binding.
pub fn container_bound(env: &Env) -> bool {
    env.durable_object("TOWN_CONTAINER").is_ok() || env.service("CONTAINER").is_ok()
}

/// Where the remotes are: the town's container through a binding ([`container_bound`]), else
/// at `CONTAINER_URL`; GitHub at `GITHUB_API_URL`.
pub fn remotes(env: &Env) -> Remotes {
    let d = ContainerTimeouts::default();
    let container_base = if container_bound(env) {
        super::http::SERVICE_BASE.to_owned()
    } else {
        var(env, "CONTAINER_URL")
    };
    let github_base = match var(env, "GITHUB_API_URL") {
        u if u.is_empty() => "https://api.github.com".to_owned(),
        u => u,
    };
    let timeout = |name: &str, default: Millis| number(env, name, default).max(1);
    Remotes {
        container_base,
        github_base,
        github_token: secret(env, "GITHUB_TOKEN"),
        jwt_secret: secret(env, "GASTOWN_JWT_SECRET"),
        gastown_api_url: var(env, "GASTOWN_API_URL"),
        container_timeouts: ContainerTimeouts {
            start_ms: timeout("CONTAINER_START_TIMEOUT_MS", d.start_ms),
            status_ms: timeout("CONTAINER_STATUS_TIMEOUT_MS", d.status_ms),
            health_ms: timeout("CONTAINER_HEALTH_TIMEOUT_MS", d.health_ms),
            call_ms: timeout("CONTAINER_CALL_TIMEOUT_MS", d.call_ms),
        },
        concurrency: number(env, "SIDE_EFFECT_CONCURRENCY", DEFAULT_CONCURRENCY).clamp(1, 64)
            as usize,
        deadline_ms: number(env, "TICK_DEADLINE_MS", DEFAULT_DEADLINE_MS).max(0),
    }
}

/// Whether development-only routes are allowed.
pub fn is_development(env: &Env) -> bool {
    var(env, "ENVIRONMENT") == "development"
}

/// Log lines to the console, from the `LOG_LEVEL` var up (`info` when unset; an unknown level
/// is reported and `info` kept).
pub fn install_logging(env: &Env) {
    crate::log::install(|line| worker::console_log!("{line}"));
    let configured = var(env, "LOG_LEVEL");
    let level = crate::log::Level::parse(&configured);
    crate::log::set_threshold(level.unwrap_or(crate::log::Level::Info));
    if level.is_none() && !configured.trim().is_empty() {
        crate::log::warn("log_level_unknown", &[("LOG_LEVEL", &configured)]);
    }
}
