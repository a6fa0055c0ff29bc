//! The client of a town's container control server (API.md "Outbound: the container control
//! server"; UPSTREAM-WIRE.md section 1): start, observe, stop and message agents, push the
//! container token and the town config, and ping its health, on the original's wire.
//!
//! The base URL comes from the caller (`http://container` for the town's Durable Object stub or
//! the service binding, else the `CONTAINER_URL` var). What each answer means:
//! - start: any 2xx is started; a 500 whose text says "already running" is started too (the
//!   original's reading); anything else is not, with the error text kept.
//! - status: 404 is [`ProcessState::NotFound`]; a 2xx names the state, and a status the
//!   container does not define is [`ProcessState::Unknown`] (logged).
//! - stop: a 404 means the agent is already gone, which is what a stop wants.
//! - message, refresh-token, sync-config: a 2xx. Health: a 2xx whose body carries `status`.

use super::{base_url, exchange, exchange_any, json, refuse, segment, CallError};
use crate::ports::{Http, HttpRequest};
use crate::settings;
use crate::vocabulary::time::Millis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Per-call timeouts (the original's: start 60 s, status 10 s, health 5 s; the rest 10 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerTimeouts {
    /// `POST /agents/start` (the container hydrates, clones and boots first).
    pub start_ms: Millis,
    pub status_ms: Millis,
    pub health_ms: Millis,
    /// Stop, message, refresh-token and sync-config.
    pub call_ms: Millis,
}

impl Default for ContainerTimeouts {
    fn default() -> Self {
        Self {
            start_ms: settings::CONTAINER_START_TIMEOUT_MS.default,
            status_ms: settings::CONTAINER_STATUS_TIMEOUT_MS.default,
            health_ms: settings::CONTAINER_HEALTH_TIMEOUT_MS.default,
            call_ms: settings::CONTAINER_CALL_TIMEOUT_MS.default,
        }
    }
}

/// A role the town starts agents as, each one the container's schema knows: there is no
/// `witness`, and a triage agent goes out as a lightweight `polecat` (as the original sends it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StartRole {
    Mayor,
    Polecat,
    Refinery,
}

impl StartRole {
    pub fn as_str(self) -> &'static str {
        match self {
            StartRole::Mayor => "mayor",
            StartRole::Polecat => "polecat",
            StartRole::Refinery => "refinery",
        }
    }
}

/// The body of `POST /agents/start`, field for field as the container's schema names them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartAgent {
    pub agent_id: String,
    pub rig_id: String,
    pub town_id: String,
    pub role: StartRole,
    pub name: String,
    pub identity: String,
    pub prompt: String,
    pub model: String,
    pub small_model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    pub git_url: String,
    pub branch: String,
    pub default_branch: String,
    /// The agent's environment: the town's `env_vars`, the credentials and the tokens.
    pub env_vars: BTreeMap<String, String>,
    /// The ref the agent's branch starts from (a convoy's feature branch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_point: Option<String>,
    /// No clone: a reasoning-only workspace (triage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lightweight: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    /// Every rig of the town (the mayor's start only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rigs: Option<Vec<RigEntry>>,
}

/// One rig in the mayor's start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RigEntry {
    pub rig_id: String,
    pub git_url: String,
    pub default_branch: String,
}

/// What the container says about an agent's process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessState {
    Starting,
    Running,
    Stopping,
    Exited,
    Failed,
    /// 404: the container has no such agent (evicted, restarted, never started).
    NotFound,
    /// A status the container does not define, kept as sent.
    Unknown(String),
}

impl ProcessState {
    fn parse(s: &str) -> Self {
        match s {
            "starting" => ProcessState::Starting,
            "running" => ProcessState::Running,
            "stopping" => ProcessState::Stopping,
            "exited" => ProcessState::Exited,
            "failed" => ProcessState::Failed,
            other => ProcessState::Unknown(other.to_owned()),
        }
    }

    /// The name recorded in a `container_status` event: an unknown state is `unknown`.
    pub fn as_str(&self) -> &str {
        match self {
            ProcessState::Starting => "starting",
            ProcessState::Running => "running",
            ProcessState::Stopping => "stopping",
            ProcessState::Exited => "exited",
            ProcessState::Failed => "failed",
            ProcessState::NotFound => "not_found",
            ProcessState::Unknown(_) => "unknown",
        }
    }

    /// Running or on its way there: the agent can be messaged.
    pub fn is_alive(&self) -> bool {
        matches!(self, ProcessState::Running | ProcessState::Starting)
    }
}

/// `GET /agents/{a}/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentProcess {
    pub state: ProcessState,
    pub exit_reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusBody {
    status: String,
    #[serde(default)]
    exit_reason: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

#[derive(Deserialize)]
struct HealthBody {
    status: String,
}

/// The drain headers of a health ping (`X-Drain-Nonce`, `X-Town-Id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainHeaders<'a> {
    pub nonce: &'a str,
    pub town_id: &'a str,
}

/// A client of one town's container.
#[derive(Debug)]
pub struct Container<'h, H> {
    http: &'h H,
    base: String,
    timeouts: ContainerTimeouts,
}

impl<'h, H: Http> Container<'h, H> {
    /// A client of the container at `base` with the default timeouts.
    pub fn new(http: &'h H, base: impl Into<String>) -> Self {
        Self {
            http,
            base: base.into(),
            timeouts: ContainerTimeouts::default(),
        }
    }

    pub fn with_timeouts(self, timeouts: ContainerTimeouts) -> Self {
        Self { timeouts, ..self }
    }

    /// `POST /agents/start` with the `X-Town-Config` header `config`. A refusal keeps the
    /// container's `{error}` text.
    pub async fn start(&self, config: &str, agent: &StartAgent) -> Result<(), CallError> {
        let body = serde_json::to_string(agent).expect("StartAgent serializes");
        let mut request = self.request("container.start", "POST", "/agents/start", Some(body))?;
        request.timeout_ms = self.timeouts.start_ms;
        with_config(&mut request, config);
        exchange_any(
            self.http,
            "container.start",
            request,
            |status, body| match status {
                200..=299 => Ok(()),
                500 if body.contains("already running") => Ok(()),
                _ => Err(match json::<ErrorBody>(body) {
                    Ok(e) => CallError::Answered {
                        status,
                        error: e.error,
                    },
                    Err(_) => CallError::Status(status),
                }),
            },
        )
        .await
    }

    /// `GET /agents/{a}/status`; 404 is `NotFound`, an undefined status `Unknown` (logged).
    pub async fn status(&self, agent_id: &str) -> Result<AgentProcess, CallError> {
        let path = format!("/agents/{}/status", segment(agent_id));
        let mut request = self.request("container.status", "GET", &path, None)?;
        request.timeout_ms = self.timeouts.status_ms;
        let process =
            exchange_any(
                self.http,
                "container.status",
                request,
                |status, body| match status {
                    404 => Ok(AgentProcess {
                        state: ProcessState::NotFound,
                        exit_reason: None,
                    }),
                    200..=299 => {
                        let s: StatusBody = json(body).map_err(CallError::BadBody)?;
                        Ok(AgentProcess {
                            state: ProcessState::parse(&s.status),
                            exit_reason: s.exit_reason,
                        })
                    }
                    _ => Err(CallError::Status(status)),
                },
            )
            .await?;
        if let ProcessState::Unknown(s) = &process.state {
            crate::log::warn(
                "container_status_unknown",
                &[("agent_id", agent_id), ("status", s)],
            );
        }
        Ok(process)
    }

    /// `POST /agents/{a}/stop` with `{}`; a 404 (already gone) counts as stopped.
    pub async fn stop(&self, agent_id: &str) -> Result<(), CallError> {
        let path = format!("/agents/{}/stop", segment(agent_id));
        let request = self.request("container.stop", "POST", &path, Some("{}".into()))?;
        exchange_any(
            self.http,
            "container.stop",
            request,
            |status, _| match status {
                200..=299 | 404 => Ok(()),
                _ => Err(CallError::Status(status)),
            },
        )
        .await
    }

    /// `POST /agents/{a}/message` with `{prompt}`.
    pub async fn message(&self, agent_id: &str, prompt: &str) -> Result<(), CallError> {
        let path = format!("/agents/{}/message", segment(agent_id));
        let body = serde_json::json!({ "prompt": prompt }).to_string();
        self.post("container.message", &path, body).await
    }

    /// `POST /refresh-token` with `{token, townId}`: the container's token for every agent.
    pub async fn refresh_token(&self, token: &str, town_id: &str) -> Result<(), CallError> {
        let body = serde_json::json!({ "token": token, "townId": town_id }).to_string();
        self.post("container.refresh_token", "/refresh-token", body)
            .await
    }

    /// `POST /sync-config` (no body): the container takes the town config from the header.
    pub async fn sync_config(&self, config: &str) -> Result<(), CallError> {
        let call = "container.sync_config";
        let mut request = self.request(call, "POST", "/sync-config", None)?;
        with_config(&mut request, config);
        exchange(self.http, call, request, |_| Ok(())).await
    }

    /// `GET /health` with the town config, and the drain headers when given; returns the
    /// container's `status` as sent.
    pub async fn health(
        &self,
        config: &str,
        drain: Option<DrainHeaders<'_>>,
    ) -> Result<String, CallError> {
        let mut request = self.request("container.health", "GET", "/health", None)?;
        request.timeout_ms = self.timeouts.health_ms;
        with_config(&mut request, config);
        if let Some(d) = drain {
            request
                .headers
                .push(("X-Drain-Nonce".to_owned(), d.nonce.to_owned()));
            request
                .headers
                .push(("X-Town-Id".to_owned(), d.town_id.to_owned()));
        }
        exchange(self.http, "container.health", request, |b| {
            json::<HealthBody>(b).map(|h| h.status)
        })
        .await
    }

    /// A POST with a JSON body that succeeds on any 2xx.
    async fn post(&self, call: &'static str, path: &str, body: String) -> Result<(), CallError> {
        let request = self.request(call, "POST", path, Some(body))?;
        exchange(self.http, call, request, |_| Ok(())).await
    }

    fn request(
        &self,
        call: &'static str,
        method: &'static str,
        path: &str,
        body: Option<String>,
    ) -> Result<HttpRequest, CallError> {
        let base = base_url(&self.base).map_err(|r| refuse(call, r))?;
        let mut headers = vec![("Accept".to_owned(), "application/json".to_owned())];
        if body.is_some() {
            headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
        }
        Ok(HttpRequest {
            method,
            url: format!("{base}{path}"),
            headers,
            body,
            timeout_ms: self.timeouts.call_ms,
        })
    }
}

fn with_config(request: &mut HttpRequest, config: &str) {
    request
        .headers
        .push(("X-Town-Config".to_owned(), config.to_owned()));
}
