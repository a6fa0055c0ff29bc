//! The container control plane client (API.md "Outbound: the container control plane"):
//! start, observe, stop and message agents, and ask for the plane's health.
//!
//! The base URL comes from the caller (`http://container` for a service binding, else the
//! `CONTAINER_URL` var). Start, stop and message succeed on a 2xx whose body is a JSON object
//! (an acknowledgement); status and health on a 2xx whose body carries a string `status`.

use super::{base_url, exchange, json, refuse, segment, CallError};
use crate::domain::model::AgentRole;
use crate::ports::{Http, HttpRequest};
use crate::time::{Millis, SECOND};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

/// Per-call timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerTimeouts {
    /// `POST /agents/start` (cloning and booting take a while).
    pub start_ms: Millis,
    /// Status, health, stop and message.
    pub call_ms: Millis,
}

impl Default for ContainerTimeouts {
    fn default() -> Self {
        Self {
            start_ms: 10 * SECOND,
            call_ms: 5 * SECOND,
        }
    }
}

/// The body of `POST /agents/start`, field for field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StartAgent {
    pub agent_id: String,
    pub rig_id: String,
    pub town_id: String,
    pub role: AgentRole,
    pub name: String,
    pub identity: String,
    pub prompt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    pub git_url: String,
    pub branch: String,
    pub default_branch: String,
    /// The per-agent token the container presents on callbacks.
    pub agent_token: String,
}

/// What the container says about an agent's process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessState {
    Running,
    Starting,
    Exited,
    NotFound,
    /// Any other status, kept as sent.
    Other(String),
}

impl ProcessState {
    fn parse(s: &str) -> Self {
        match s {
            "running" => ProcessState::Running,
            "starting" => ProcessState::Starting,
            "exited" => ProcessState::Exited,
            "not_found" => ProcessState::NotFound,
            other => ProcessState::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ProcessState::Running => "running",
            ProcessState::Starting => "starting",
            ProcessState::Exited => "exited",
            ProcessState::NotFound => "not_found",
            ProcessState::Other(s) => s,
        }
    }
}

/// `GET /agents/{a}/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentProcess {
    pub state: ProcessState,
    pub exit_reason: Option<String>,
}

#[derive(Deserialize)]
struct StatusBody {
    status: String,
    #[serde(default, alias = "exitReason")]
    exit_reason: Option<String>,
}

#[derive(Deserialize)]
struct HealthBody {
    status: String,
}

/// A client of one container control plane.
#[derive(Debug)]
pub struct Container<'h, H> {
    http: &'h H,
    base: String,
    timeouts: ContainerTimeouts,
}

impl<'h, H: Http> Container<'h, H> {
    /// A client of the plane at `base` with the default timeouts.
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

    /// `POST /agents/start`.
    pub async fn start(&self, agent: &StartAgent) -> Result<(), CallError> {
        let body = serde_json::to_string(agent).expect("StartAgent serializes");
        self.ack(
            "container.start",
            "/agents/start",
            body,
            self.timeouts.start_ms,
        )
        .await
    }

    /// `GET /agents/{a}/status`; `exit_reason` is also accepted as `exitReason`.
    pub async fn status(&self, agent_id: &str) -> Result<AgentProcess, CallError> {
        let path = format!("/agents/{}/status", segment(agent_id));
        let request = self.request("container.status", "GET", &path, None)?;
        exchange(self.http, "container.status", request, |b| {
            let s: StatusBody = json(b)?;
            Ok(AgentProcess {
                state: ProcessState::parse(&s.status),
                exit_reason: s.exit_reason,
            })
        })
        .await
    }

    /// `POST /agents/{a}/stop` with `{}`.
    pub async fn stop(&self, agent_id: &str) -> Result<(), CallError> {
        let path = format!("/agents/{}/stop", segment(agent_id));
        self.ack("container.stop", &path, "{}".into(), self.timeouts.call_ms)
            .await
    }

    /// `POST /agents/{a}/message` with `{prompt}`.
    pub async fn message(&self, agent_id: &str, prompt: &str) -> Result<(), CallError> {
        let path = format!("/agents/{}/message", segment(agent_id));
        let body = serde_json::json!({ "prompt": prompt }).to_string();
        self.ack("container.message", &path, body, self.timeouts.call_ms)
            .await
    }

    /// `GET /health`; returns the plane's `status` as sent.
    pub async fn health(&self) -> Result<String, CallError> {
        let request = self.request("container.health", "GET", "/health", None)?;
        exchange(self.http, "container.health", request, |b| {
            json::<HealthBody>(b).map(|h| h.status)
        })
        .await
    }

    /// A POST whose 2xx answer must be a JSON object.
    async fn ack(
        &self,
        call: &'static str,
        path: &str,
        body: String,
        timeout_ms: Millis,
    ) -> Result<(), CallError> {
        let mut request = self.request(call, "POST", path, Some(body))?;
        request.timeout_ms = timeout_ms;
        exchange(self.http, call, request, |b| {
            json::<Map<String, Json>>(b).map(drop)
        })
        .await
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
