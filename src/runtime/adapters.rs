//! Platform adapters of the clock, id and analytics ports, and the Worker's settings.

use crate::effects::container::ContainerTimeouts;
use crate::effects::remotes::Remotes;
use crate::metrics::point::DataPoint;
use crate::metrics::writer::AnalyticsSink;
use crate::ports::{Clock, Ids};
use crate::settings::{self, Setting};
use crate::tick::TickOptions;
use crate::vocabulary::time::{Millis, SECOND};
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

/// A numeric var, defaulted and clamped to its range (a warning is logged when adjusted).
fn number(env: &Env, setting: &Setting) -> i64 {
    setting.value(env.var(setting.name).ok().map(|v| v.to_string()).as_deref())
}

/// The tick's knobs from the Worker's vars.
pub fn tick_options(env: &Env) -> TickOptions {
    TickOptions {
        drain_limit: number(env, &settings::TICK_DRAIN_LIMIT) as u32,
        active_interval_ms: number(env, &settings::ALARM_INTERVAL_ACTIVE_SECS) * SECOND,
        idle_interval_ms: number(env, &settings::ALARM_INTERVAL_IDLE_SECS) * SECOND,
        metrics_keep: number(env, &settings::TICK_METRICS_KEEP) as u32,
    }
}

/// Whether the town's container is reached through a binding (as [`super::http::SERVICE_BASE`]):
/// the `TOWN_CONTAINER` Durable Object namespace or the `CONTAINER` service binding.
pub fn container_bound(env: &Env) -> bool {
    env.durable_object("TOWN_CONTAINER").is_ok() || env.service("CONTAINER").is_ok()
}

/// Where the remotes are: the town's container through a binding ([`container_bound`]), else
/// at `CONTAINER_URL`; GitHub at `GITHUB_API_URL`.
pub fn remotes(env: &Env) -> Remotes {
    let container_base = if container_bound(env) {
        super::http::SERVICE_BASE.to_owned()
    } else {
        var(env, "CONTAINER_URL")
    };
    let github_base = match var(env, "GITHUB_API_URL") {
        u if u.is_empty() => "https://api.github.com".to_owned(),
        u => u,
    };
    Remotes {
        container_base,
        github_base,
        github_token: secret(env, "GITHUB_TOKEN"),
        jwt_secret: secret(env, "GASTOWN_JWT_SECRET"),
        gastown_api_url: var(env, "GASTOWN_API_URL"),
        container_timeouts: ContainerTimeouts {
            start_ms: number(env, &settings::CONTAINER_START_TIMEOUT_MS),
            status_ms: number(env, &settings::CONTAINER_STATUS_TIMEOUT_MS),
            health_ms: number(env, &settings::CONTAINER_HEALTH_TIMEOUT_MS),
            call_ms: number(env, &settings::CONTAINER_CALL_TIMEOUT_MS),
        },
        concurrency: number(env, &settings::SIDE_EFFECT_CONCURRENCY) as usize,
        deadline_ms: number(env, &settings::TICK_DEADLINE_MS),
        observe_budget: number(env, &settings::TICK_OBSERVE_BUDGET) as usize,
        observe_interval_ms: number(env, &settings::TICK_OBSERVE_INTERVAL_MS),
        observe_deadline_ms: number(env, &settings::TICK_OBSERVE_DEADLINE_MS),
        subrequest_budget: number(env, &settings::TICK_SUBREQUEST_BUDGET) as usize,
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
