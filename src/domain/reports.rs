//! What an agent reports about itself besides proof of life: a status message (shown on the
//! status page), a checkpoint (the next dispatch's prompt resumes from it), the WIP branch it
//! saved before an eviction (noted on its hooked bead), and the mayor's "waiting for input".

use super::beads::{self, event};
use super::error::Result;
use super::{agents, Ctx, DomainError};
use crate::store::agents as store;
use crate::store::beads::{self as bead_store, NewEvent};
use crate::vocabulary::model::{Agent, AgentRole, AgentStatus};
use serde_json::{Map, Value as Json};

/// Longest status message, in characters.
pub const STATUS_MESSAGE_MAX: usize = 280;

/// Sets the agent's status message (trimmed; 1-280 characters).
pub fn set_status_message(ctx: &Ctx<'_>, agent_id: &str, message: &str) -> Result<()> {
    agents::get(ctx, agent_id)?;
    let message = message.trim();
    let len = message.chars().count();
    if !(1..=STATUS_MESSAGE_MAX).contains(&len) {
        return Err(DomainError::invalid(
            "message",
            format!("must be 1-{STATUS_MESSAGE_MAX} characters, not {len}"),
        ));
    }
    Ok(store::set_status_message(
        ctx.sql, agent_id, message, ctx.now,
    )?)
}

/// Stores the agent's checkpoint: a string as it is, any other JSON value as JSON text; `null`
/// clears it.
pub fn checkpoint(ctx: &Ctx<'_>, agent_id: &str, data: &Json) -> Result<()> {
    agents::get(ctx, agent_id)?;
    match data {
        Json::Null => Ok(store::clear_checkpoint(ctx.sql, agent_id)?),
        Json::String(s) => Ok(store::set_checkpoint(ctx.sql, agent_id, s)?),
        other => Ok(store::set_checkpoint(
            ctx.sql,
            agent_id,
            &other.to_string(),
        )?),
    }
}

/// Where an evicted agent left its work.
#[derive(Debug, Clone, PartialEq)]
pub struct EvictionContext<'a> {
    pub branch: &'a str,
    pub agent_name: &'a str,
    pub saved_at: &'a str,
}

/// Notes the WIP branch on the agent's hooked bead (appended to its body, and logged), so the
/// next agent on the bead starts from it. Without a hooked bead nothing is written.
pub fn eviction_context(ctx: &Ctx<'_>, agent_id: &str, c: &EvictionContext<'_>) -> Result<()> {
    let agent = agents::get(ctx, agent_id)?;
    let Some(bead_id) = agent.current_hook_bead_id.as_deref() else {
        return Ok(());
    };
    let bead = beads::get(ctx, bead_id)?;
    let note = format!(
        "Work in progress was pushed to branch `{}` by {} at {} before the container was evicted; continue from it.",
        c.branch, c.agent_name, c.saved_at
    );
    let body = match bead.body.as_deref() {
        Some(b) if !b.trim().is_empty() => format!("{b}\n\n{note}"),
        _ => note,
    };
    bead_store::set_body(ctx.sql, bead_id, &body, ctx.now)?;
    let mut metadata = Map::new();
    metadata.insert("agent_name".into(), c.agent_name.into());
    metadata.insert("saved_at".into(), c.saved_at.into());
    beads::log(
        ctx,
        &NewEvent {
            bead_id,
            agent_id: Some(agent_id),
            event_type: event::EVICTION_CONTEXT,
            new_value: Some(c.branch),
            metadata,
            ..Default::default()
        },
    )
}

/// The mayor's turn ended and it waits for input: a working mayor becomes `waiting` (not
/// active work, so the alarm slows down). Anything else is acknowledged unchanged.
pub fn waiting(ctx: &Ctx<'_>, agent_id: &str) -> Result<Agent> {
    let agent = agents::get(ctx, agent_id)?;
    if agent.role == AgentRole::Mayor && agent.status == AgentStatus::Working {
        return agents::set_status_of(ctx, agent, AgentStatus::Waiting);
    }
    Ok(agent)
}
