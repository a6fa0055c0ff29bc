//! The agent-scoped routes, `/api/towns/{t}/rigs/{r}/agents/{a}/…`. The agent comes from the
//! path; the rig segment is not checked against the agent's (the mayor's is `mayor-<t>`).

use super::{created, data, data_for_tick, lenient, show};
use crate::domain::agents::{self, Watermark};
use crate::domain::reports::{self, EvictionContext};
use crate::domain::{drain, mail, nudges, prime, reviews, Ctx, DomainError};
use crate::http::handler::{body, Outcome};
use crate::http::routes::AgentCall;
use crate::http::{ApiError, Request};
use crate::store::events::Subject;
use crate::vocabulary::events::{AgentCompleted, AgentDone, EventKind};
use serde::Deserialize;
use serde_json::{json, Value as Json};

/// Serves one agent-scoped call.
pub fn serve(
    ctx: &Ctx<'_>,
    agent_id: &str,
    call: AgentCall,
    req: &Request,
) -> Result<Outcome, ApiError> {
    match call {
        AgentCall::Heartbeat => heartbeat(ctx, agent_id, req),
        AgentCall::Done => done(ctx, agent_id, req),
        AgentCall::Completed => completed(ctx, agent_id, req),
        AgentCall::Waiting => {
            reports::waiting(ctx, agent_id)?;
            Ok(data_for_tick(json!({"acknowledged": true})))
        }
        AgentCall::RequestChanges => request_changes(ctx, agent_id, req),
        AgentCall::PendingNudges => pending_nudges(ctx, agent_id),
        AgentCall::NudgeDelivered => nudge_delivered(ctx, agent_id, req),
        AgentCall::Prime => Ok(data(show(&prime::prime(ctx, agent_id)?))),
        AgentCall::Status => {
            let b: StatusMessage = body(req)?;
            reports::set_status_message(ctx, agent_id, &b.message)?;
            Ok(data(json!({"updated": true})))
        }
        AgentCall::Checkpoint => {
            let b: Checkpoint = body(req)?;
            reports::checkpoint(ctx, agent_id, &b.data)?;
            Ok(data(json!({"checkpointed": true})))
        }
        AgentCall::Mail => Ok(data(show(&mail::check(ctx, agent_id)?))),
        AgentCall::EvictionContext => {
            let b: Eviction = body(req)?;
            reports::eviction_context(
                ctx,
                agent_id,
                &EvictionContext {
                    branch: &b.branch,
                    agent_name: &b.agent_name,
                    saved_at: &b.saved_at,
                },
            )?;
            Ok(data(json!({"saved": true})))
        }
    }
}

/// The container's heartbeat (camelCase; every field optional; the body may be absent or
/// malformed, which counts as a bare "alive").
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Heartbeat {
    last_event_type: Option<String>,
    last_event_at: Option<String>,
    active_tools: Option<Vec<String>>,
    container_instance_id: Option<String>,
}

/// Proof of life; a new container instance ends a drain. Answers with the drain nonce while
/// draining.
fn heartbeat(ctx: &Ctx<'_>, agent_id: &str, req: &Request) -> Result<Outcome, ApiError> {
    let b: Heartbeat = lenient(req);
    agents::get(ctx, agent_id)?;
    if let Some(instance) = b.container_instance_id.as_deref().filter(|i| !i.is_empty()) {
        drain::saw_instance(ctx, instance)?;
    }
    agents::touch(
        ctx,
        agent_id,
        &Watermark {
            last_event_type: b.last_event_type,
            last_event_at: b.last_event_at,
            active_tools: b.active_tools,
        },
    )?;
    let mut answer = json!({"heartbeat": true});
    if let Some(nonce) = drain::nonce(ctx)? {
        answer["drainNonce"] = nonce.into();
    }
    Ok(data(answer))
}

/// Records `agent_done`.
fn done(ctx: &Ctx<'_>, agent_id: &str, req: &Request) -> Result<Outcome, ApiError> {
    let mut done: AgentDone = body(req)?;
    agents::get(ctx, agent_id)?;
    if done.branch.trim().is_empty() {
        return Err(ApiError::invalid("branch", "must not be empty"));
    }
    done.pr_url = done.pr_url.filter(|u| !u.trim().is_empty());
    if let Some(url) = done.pr_url.as_deref().filter(|u| !reviews::is_https_url(u)) {
        return Err(ApiError::invalid(
            "pr_url",
            format!("{url} is not an https URL"),
        ));
    }
    ctx.record(&EventKind::AgentDone(done), &Subject::agent(agent_id))?;
    Ok(data_for_tick(json!({"done": true})))
}

/// Records `agent_completed`.
fn completed(ctx: &Ctx<'_>, agent_id: &str, req: &Request) -> Result<Outcome, ApiError> {
    let completed: AgentCompleted = body(req)?;
    agents::get(ctx, agent_id)?;
    ctx.record(
        &EventKind::AgentCompleted(completed),
        &Subject::agent(agent_id),
    )?;
    Ok(data_for_tick(json!({"completed": true})))
}

#[derive(Deserialize)]
struct RequestChanges {
    feedback: String,
    #[serde(default)]
    files: Vec<String>,
}

/// A refinery asks for rework of the MR it is hooked to; the files it names are listed under
/// the feedback.
fn request_changes(ctx: &Ctx<'_>, agent_id: &str, req: &Request) -> Result<Outcome, ApiError> {
    let b: RequestChanges = body(req)?;
    if b.feedback.trim().is_empty() {
        return Err(ApiError::invalid("feedback", "Feedback is required"));
    }
    let refinery = agents::get(ctx, agent_id)?;
    let mr_id = refinery.current_hook_bead_id.ok_or_else(|| {
        DomainError::conflict(format!("agent {agent_id} is not reviewing a merge request"))
    })?;
    let feedback = match b.files.as_slice() {
        [] => b.feedback,
        files => format!("{}\n\nFiles:\n- {}", b.feedback, files.join("\n- ")),
    };
    let rework = reviews::request_changes(ctx, agent_id, &mr_id, &feedback)?;
    Ok(created(json!({"rework_bead_id": rework.bead_id})))
}

/// The agent's undelivered nudges, urgent first, in the fields the container reads.
fn pending_nudges(ctx: &Ctx<'_>, agent_id: &str) -> Result<Outcome, ApiError> {
    let items: Vec<Json> = nudges::pending(ctx, agent_id)?
        .into_iter()
        .map(|n| {
            json!({
                "nudge_id": n.nudge_id,
                "message": n.message,
                "mode": n.mode,
                "priority": n.priority,
                "source": n.source,
            })
        })
        .collect();
    Ok(data(Json::Array(items)))
}

#[derive(Deserialize)]
struct NudgeDelivered {
    nudge_id: String,
}

fn nudge_delivered(ctx: &Ctx<'_>, agent_id: &str, req: &Request) -> Result<Outcome, ApiError> {
    let b: NudgeDelivered = body(req)?;
    nudges::mark_delivered(ctx, agent_id, &b.nudge_id)?;
    Ok(data(json!({"marked": true})))
}

#[derive(Deserialize)]
struct StatusMessage {
    message: String,
}

#[derive(Deserialize)]
struct Checkpoint {
    #[serde(default)]
    data: Json,
}

#[derive(Deserialize)]
struct Eviction {
    branch: String,
    agent_name: String,
    saved_at: String,
}
