//! `GET /agents` and the agent callbacks: heartbeat, done, completed, request-changes. Every
//! callback answers 404 for an agent the town does not know.

use super::{accepted, created, ok, show};
use crate::domain::agents::{self, Watermark};
use crate::domain::{drain, reviews, Ctx};
use crate::events::{AgentCompleted, AgentDone, EventKind};
use crate::http::town::{body, Outcome};
use crate::http::{ApiError, Request};
use crate::store::events::Subject;
use crate::time::parse_iso;
use serde::Deserialize;
use serde_json::json;

pub fn list(ctx: &Ctx<'_>) -> Result<Outcome, ApiError> {
    Ok(ok(json!({"agents": show(&agents::list(ctx)?)})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Heartbeat {
    #[serde(default)]
    last_event_type: Option<String>,
    #[serde(default)]
    last_event_at: Option<String>,
    #[serde(default)]
    active_tools: Option<Vec<String>>,
    #[serde(default)]
    container_instance_id: Option<String>,
}

/// Proof of life; a new container instance ends a drain. Answers with the drain nonce.
pub fn heartbeat(ctx: &Ctx<'_>, agent_id: &str, req: &Request) -> Result<Outcome, ApiError> {
    let b: Heartbeat = body(req)?;
    agents::get(ctx, agent_id)?;
    if let Some(at) = b.last_event_at.as_deref() {
        if parse_iso(at).is_none() {
            return Err(ApiError::invalid(
                "last_event_at",
                "must be an ISO-8601 UTC time",
            ));
        }
    }
    if let Some(instance) = b.container_instance_id.as_deref() {
        drain::saw_instance(ctx, instance)?;
    }
    let agent = agents::touch(
        ctx,
        agent_id,
        &Watermark {
            last_event_type: b.last_event_type,
            last_event_at: b.last_event_at,
            active_tools: b.active_tools,
        },
    )?;
    let nonce = drain::nonce(ctx)?;
    Ok(ok(json!({
        "agent": show(&agent),
        "draining": nonce.is_some(),
        "drain_nonce": nonce,
    })))
}

/// Records `agent_done`.
pub fn done(ctx: &Ctx<'_>, agent_id: &str, req: &Request) -> Result<Outcome, ApiError> {
    let done: AgentDone = body(req)?;
    agents::get(ctx, agent_id)?;
    if done.branch.trim().is_empty() {
        return Err(ApiError::invalid("branch", "must not be empty"));
    }
    if let Some(url) = done.pr_url.as_deref().filter(|u| !reviews::is_https_url(u)) {
        return Err(ApiError::invalid(
            "pr_url",
            format!("{url} is not an https URL"),
        ));
    }
    record(ctx, EventKind::AgentDone(done), agent_id)
}

/// Records `agent_completed`.
pub fn completed(ctx: &Ctx<'_>, agent_id: &str, req: &Request) -> Result<Outcome, ApiError> {
    let completed: AgentCompleted = body(req)?;
    agents::get(ctx, agent_id)?;
    record(ctx, EventKind::AgentCompleted(completed), agent_id)
}

fn record(ctx: &Ctx<'_>, kind: EventKind, agent_id: &str) -> Result<Outcome, ApiError> {
    let event_id = ctx.record(&kind, &Subject::agent(agent_id))?;
    Ok(accepted(json!({
        "event_id": event_id,
        "event_type": kind.type_name(),
        "status": "recorded",
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestChanges {
    mr_bead_id: String,
    feedback: String,
}

/// A refinery asks for rework of the MR it reviews.
pub fn request_changes(ctx: &Ctx<'_>, agent_id: &str, req: &Request) -> Result<Outcome, ApiError> {
    let b: RequestChanges = body(req)?;
    let rework = reviews::request_changes(ctx, agent_id, &b.mr_bead_id, &b.feedback)?;
    Ok(created(json!({"bead": show(&rework)})))
}
