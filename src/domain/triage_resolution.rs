//! Resolving a triage request (the triage agent's `gt_triage_resolve`, GASTOWN-DOMAIN.md 10):
//! only the agent hooked to a patrol-created `gt:triage` batch bead may resolve; the chosen
//! action is applied to the agent the request is about and to the bead it was hooked to, and
//! the request is closed with its resolution.
//!
//! - RESTART, RESTART_WITH_BACKOFF, REASSIGN_BEAD: the agent lets go of the bead, which goes
//!   back to `open` unassigned for the reconciler to dispatch again (its dispatch backoff and
//!   counter are kept, so "with backoff" is the bead's own cooldown); once its dispatch attempts
//!   reached the limit (5) the bead is failed instead.
//! - CLOSE_BEAD: the bead is closed and the agent lets go of it.
//! - ESCALATE, ESCALATE_TO_MAYOR: an escalation bead (priority high) with the notes; the latter
//!   also mails the mayor when there is one.
//! - NUDGE, PROVIDE_GUIDANCE: the notes go to the agent, as a nudge or as mail.
//! - DISCARD: nothing but closing the request.

use super::beads::{self, event};
use super::error::Result;
use super::escalations::{self, Raise};
use super::mail::{self, Letter};
use super::nudges::{self, Queue};
use super::{agents, object, Ctx, DomainError};
use crate::domain::dispatch::MAX_DISPATCH_ATTEMPTS;
use crate::store::agents as agent_store;
use crate::store::beads::NewEvent;
use crate::vocabulary::model::{
    labels, AgentRole, Bead, BeadStatus, FailureReason, NudgeMode, NudgePriority, Priority,
};
use serde_json::{json, Map};

/// Who creates triage batch beads.
pub const PATROL: &str = "patrol";

/// The nine resolutions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Restart,
    RestartWithBackoff,
    CloseBead,
    Escalate,
    EscalateToMayor,
    Nudge,
    ReassignBead,
    Discard,
    ProvideGuidance,
}

impl Action {
    /// Reads an action name, case-insensitively.
    pub fn parse(name: &str) -> Option<Self> {
        use Action::*;
        Some(match name.to_ascii_uppercase().as_str() {
            "RESTART" => Restart,
            "RESTART_WITH_BACKOFF" => RestartWithBackoff,
            "CLOSE_BEAD" => CloseBead,
            "ESCALATE" => Escalate,
            "ESCALATE_TO_MAYOR" => EscalateToMayor,
            "NUDGE" => Nudge,
            "REASSIGN_BEAD" => ReassignBead,
            "DISCARD" => Discard,
            "PROVIDE_GUIDANCE" => ProvideGuidance,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        use Action::*;
        match self {
            Restart => "RESTART",
            RestartWithBackoff => "RESTART_WITH_BACKOFF",
            CloseBead => "CLOSE_BEAD",
            Escalate => "ESCALATE",
            EscalateToMayor => "ESCALATE_TO_MAYOR",
            Nudge => "NUDGE",
            ReassignBead => "REASSIGN_BEAD",
            Discard => "DISCARD",
            ProvideGuidance => "PROVIDE_GUIDANCE",
        }
    }
}

/// Whether `agent_id` may resolve triage requests: it is hooked to a `gt:triage` bead created
/// by the patrol.
pub fn may_resolve(ctx: &Ctx<'_>, agent_id: &str) -> Result<bool> {
    let Some(agent) = agent_store::get(ctx.sql, agent_id)? else {
        return Ok(false);
    };
    let Some(hook) = agent.current_hook_bead_id.as_deref() else {
        return Ok(false);
    };
    let batch = beads::get(ctx, hook)?;
    Ok(batch.has_label(labels::TRIAGE) && batch.created_by.as_deref() == Some(PATROL))
}

/// Applies `action` to the request's agent and bead and closes the request; returns it.
pub fn resolve(
    ctx: &Ctx<'_>,
    resolver: &str,
    request_id: &str,
    action: Action,
    notes: &str,
) -> Result<Bead> {
    let request = beads::get(ctx, request_id)?;
    if !request.has_label(labels::TRIAGE_REQUEST) {
        return Err(DomainError::invalid(
            "triage_request_bead_id",
            format!("{request_id} is not a triage request"),
        ));
    }
    if request.status.is_terminal() {
        return Err(DomainError::conflict(format!(
            "triage request {request_id} is already {}",
            request.status
        )));
    }
    let agent_id = request.meta_str("agent_bead_id").map(str::to_owned);
    let hooked = request.meta_str("hooked_bead_id").map(str::to_owned);
    let agent = match agent_id.as_deref() {
        Some(a) => agent_store::get(ctx.sql, a)?,
        None => None,
    };
    let bead = match hooked.as_deref() {
        Some(b) => Some(beads::get(ctx, b)?).filter(|b| !b.status.is_terminal()),
        None => None,
    };
    let let_go = |ctx: &Ctx<'_>| -> Result<()> {
        if let Some(a) = agent.as_ref().filter(|a| a.current_hook_bead_id == hooked) {
            agents::unhook(ctx, &a.agent_id)?;
        }
        Ok(())
    };
    match action {
        Action::Restart | Action::RestartWithBackoff | Action::ReassignBead => {
            let_go(ctx)?;
            if let Some(b) = bead {
                if b.dispatch_attempts >= MAX_DISPATCH_ATTEMPTS {
                    let reason = FailureReason::new(
                        "dispatch_attempts_exhausted",
                        format!(
                            "triage {}: {} dispatch attempts made",
                            action.as_str(),
                            b.dispatch_attempts
                        ),
                        "triage",
                    );
                    beads::set_status_of(ctx, b, BeadStatus::Failed, resolver, Some(&reason))?;
                } else {
                    let id = b.bead_id.clone();
                    beads::set_status_of(ctx, b, BeadStatus::Open, resolver, None)?;
                    beads::clear_assignee(ctx, &id)?;
                }
            }
        }
        Action::CloseBead => {
            let_go(ctx)?;
            if let Some(b) = bead {
                beads::set_status_of(ctx, b, BeadStatus::Closed, resolver, None)?;
            }
        }
        Action::Escalate | Action::EscalateToMayor => {
            let escalation = escalations::raise(
                ctx,
                &Raise {
                    rig_id: request.rig_id.as_deref().unwrap_or_default(),
                    agent_id: Some(resolver),
                    title: &format!("Triage escalation: {}", request.title),
                    body: Some(notes),
                    priority: Priority::High,
                    metadata: object(json!({"triage_request_bead_id": request_id})),
                },
            )?;
            let mayor = agent_store::first_with_role(ctx.sql, AgentRole::Mayor, None)?;
            if let (Action::EscalateToMayor, Some(mayor)) = (action, mayor) {
                mail::send(
                    ctx,
                    &Letter {
                        from_agent_id: resolver,
                        to_agent_id: &mayor.agent_id,
                        subject: &escalation.title,
                        body: notes,
                    },
                )?;
            }
        }
        Action::Nudge | Action::ProvideGuidance => {
            if let (Some(a), false) = (agent.as_ref(), notes.trim().is_empty()) {
                if action == Action::Nudge {
                    nudges::queue(
                        ctx,
                        &Queue {
                            agent_id: a.agent_id.clone(),
                            message: notes.to_owned(),
                            mode: NudgeMode::WaitIdle,
                            priority: NudgePriority::Normal,
                            source: "triage".into(),
                            ttl_ms: None,
                        },
                    )?;
                } else {
                    mail::send(
                        ctx,
                        &Letter {
                            from_agent_id: resolver,
                            to_agent_id: &a.agent_id,
                            subject: "Guidance from triage",
                            body: notes,
                        },
                    )?;
                }
            }
        }
        Action::Discard => {}
    }
    let mut resolution = Map::new();
    resolution.insert("resolution".into(), action.as_str().into());
    resolution.insert("resolution_notes".into(), notes.into());
    resolution.insert("resolved_by".into(), resolver.into());
    beads::merge_metadata(ctx, request_id, &resolution)?;
    beads::log(
        ctx,
        &NewEvent {
            bead_id: request_id,
            agent_id: Some(resolver),
            event_type: event::TRIAGE_RESOLVED,
            new_value: Some(action.as_str()),
            metadata: Map::new(),
            ..Default::default()
        },
    )?;
    beads::set_status(ctx, request_id, BeadStatus::Closed, resolver, None)
}
