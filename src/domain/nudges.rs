//! Nudges (GASTOWN-DOMAIN.md 1.6): messages queued for an agent, fetched urgent-first then
//! oldest-first, acknowledged, and expired.

use super::error::Result;
use super::{agents, Ctx, DomainError};
use crate::store::nudges::{self as store, NewNudge};
use crate::vocabulary::model::{Nudge, NudgeMode, NudgePriority};
use crate::vocabulary::time::{iso, Millis};

/// A nudge to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Queue {
    pub agent_id: String,
    pub message: String,
    pub mode: NudgeMode,
    pub priority: NudgePriority,
    /// `system`, `reconciler:<tier>`, ...
    pub source: String,
    /// How long a `queue`-mode nudge stays deliverable; `None` = forever.
    pub ttl_ms: Option<Millis>,
}

/// Queues a nudge for an existing agent.
pub fn queue(ctx: &Ctx<'_>, q: &Queue) -> Result<Nudge> {
    agents::get(ctx, &q.agent_id)?;
    if q.message.trim().is_empty() {
        return Err(DomainError::invalid("message", "must not be empty"));
    }
    let expires_at = match (q.mode, q.ttl_ms) {
        (NudgeMode::Queue, Some(ttl)) if ttl > 0 => Some(iso(ctx.now + ttl)),
        (NudgeMode::Queue, Some(_)) => {
            return Err(DomainError::invalid("ttl_ms", "must be positive"))
        }
        _ => None,
    };
    let nudge_id = ctx.ids.new_id();
    store::insert(
        ctx.sql,
        &NewNudge {
            nudge_id: nudge_id.clone(),
            agent_bead_id: q.agent_id.clone(),
            message: q.message.clone(),
            mode: q.mode,
            priority: q.priority,
            source: q.source.clone(),
            expires_at,
        },
        ctx.now,
    )?;
    get(ctx, &nudge_id)
}

fn get(ctx: &Ctx<'_>, nudge_id: &str) -> Result<Nudge> {
    store::get(ctx.sql, nudge_id)?.ok_or_else(|| DomainError::not_found("nudge", nudge_id))
}

/// The agent's undelivered, unexpired nudges: urgent first, then oldest first.
pub fn pending(ctx: &Ctx<'_>, agent_id: &str) -> Result<Vec<Nudge>> {
    agents::get(ctx, agent_id)?;
    Ok(store::pending(ctx.sql, agent_id, ctx.now)?)
}

/// Acknowledges a nudge of this agent (again: unchanged). Another agent's nudge is `NotFound`.
pub fn mark_delivered(ctx: &Ctx<'_>, agent_id: &str, nudge_id: &str) -> Result<Nudge> {
    agents::get(ctx, agent_id)?;
    let nudge = get(ctx, nudge_id)?;
    if nudge.agent_bead_id != agent_id {
        return Err(DomainError::not_found("nudge", nudge_id));
    }
    store::mark_delivered(ctx.sql, nudge_id, ctx.now)?;
    get(ctx, nudge_id)
}

/// Marks every expired, undelivered nudge delivered (housekeeping); returns how many.
pub fn expire(ctx: &Ctx<'_>) -> Result<u64> {
    Ok(store::expire(ctx.sql, ctx.now)?)
}
