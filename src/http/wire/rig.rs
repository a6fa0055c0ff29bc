//! The rig-scoped agent tools, `/api/towns/{t}/rigs/{r}/…`. The calling agent is the one an
//! agent token proves, else the `X-Gastown-Agent-Id` header the container sends (see
//! [`crate::http::edge`]).

use super::{created, data, data_for_tick, show};
use crate::domain::escalations::{self, Raise};
use crate::domain::mail::{self, Letter};
use crate::domain::nudges::{self, Queue};
use crate::domain::triage_resolution::{self as triage, Action};
use crate::domain::{agent_events, beads, Ctx};
use crate::http::edge::AGENT_HEADER;
use crate::http::handler::{body, Outcome};
use crate::http::routes::RigTool;
use crate::http::{ApiError, Request};
use crate::vocabulary::model::{BeadStatus, NudgeMode, NudgePriority, Priority};
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};

/// Serves one rig tool.
pub fn serve(
    ctx: &Ctx<'_>,
    rig_id: &str,
    tool: &RigTool,
    req: &Request,
) -> Result<Outcome, ApiError> {
    let caller = req.get_header(AGENT_HEADER).filter(|a| !a.is_empty());
    match tool {
        RigTool::TriageResolve => {
            let b: TriageBody = body(req)?;
            let action = Action::parse(&b.action).ok_or_else(|| {
                ApiError::invalid("action", format!("{} is not a triage action", b.action))
            })?;
            let resolver = match caller {
                Some(agent) if triage::may_resolve(ctx, agent)? => agent,
                _ => return Err(ApiError::forbidden(
                    "only the agent hooked to a patrol triage batch may resolve triage requests",
                )),
            };
            let request = triage::resolve(
                ctx,
                resolver,
                &b.triage_request_bead_id,
                action,
                &b.resolution_notes,
            )?;
            Ok(data_for_tick(show(&request)))
        }
        RigTool::Nudge => {
            let b: NudgeBody = body(req)?;
            let nudge = nudges::queue(
                ctx,
                &Queue {
                    agent_id: b.target_agent_id,
                    message: b.message,
                    mode: b.mode.unwrap_or(NudgeMode::WaitIdle),
                    priority: NudgePriority::Normal,
                    source: "agent".into(),
                    ttl_ms: None,
                },
            )?;
            Ok(data(json!({"nudge_id": nudge.nudge_id})))
        }
        RigTool::SendMail => {
            let b: MailBody = body(req)?;
            let sent = mail::send(
                ctx,
                &Letter {
                    from_agent_id: &b.from_agent_id,
                    to_agent_id: &b.to_agent_id,
                    subject: &b.subject,
                    body: &b.body,
                },
            )?;
            Ok(created(show(&sent)))
        }
        RigTool::Escalate => {
            let b: EscalationBody = body(req)?;
            let bead = escalations::raise(
                ctx,
                &Raise {
                    rig_id,
                    agent_id: caller,
                    title: &b.title,
                    body: b.body.as_deref(),
                    priority: b.priority.unwrap_or(Priority::Medium),
                    metadata: b.metadata,
                },
            )?;
            Ok(created(show(&bead)))
        }
        RigTool::GetBead(bead_id) => Ok(data(show(&beads::get(ctx, bead_id)?))),
        RigTool::CloseBead(bead_id) => {
            let b: CloseBody = body(req)?;
            let actor = b.agent_id.as_deref().or(caller).unwrap_or("agent");
            let bead = beads::set_status(ctx, bead_id, BeadStatus::Closed, actor, None)?;
            Ok(data(show(&bead)))
        }
        RigTool::AgentEvents => {
            let b: AgentEventBody = body(req)?;
            let agent = b.agent_id.as_deref().or(caller).ok_or_else(|| {
                ApiError::invalid("agent_id", "name the agent (or send X-Gastown-Agent-Id)")
            })?;
            agent_events::append(ctx, agent, &b.event_type, &b.data)?;
            Ok(data(json!({"recorded": true})))
        }
    }
}

#[derive(Deserialize)]
struct TriageBody {
    triage_request_bead_id: String,
    action: String,
    #[serde(default)]
    resolution_notes: String,
}

#[derive(Deserialize)]
struct NudgeBody {
    target_agent_id: String,
    message: String,
    #[serde(default)]
    mode: Option<NudgeMode>,
}

#[derive(Deserialize)]
struct MailBody {
    from_agent_id: String,
    to_agent_id: String,
    subject: String,
    body: String,
}

#[derive(Deserialize)]
struct EscalationBody {
    title: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    priority: Option<Priority>,
    #[serde(default)]
    metadata: Map<String, Json>,
}

#[derive(Deserialize)]
struct AgentEventBody {
    #[serde(default)]
    agent_id: Option<String>,
    event_type: String,
    #[serde(default)]
    data: Json,
}

#[derive(Deserialize)]
struct CloseBody {
    #[serde(default)]
    agent_id: Option<String>,
}
