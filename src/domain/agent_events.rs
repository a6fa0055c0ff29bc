//! Agent events: what an agent's session reports as it works (tool calls, messages, errors),
//! sent by the container fire-and-forget. They change nothing the reconciler reads; they are
//! kept per agent (the newest [`KEEP`](crate::store::agent_events::KEEP)) for an operator.

use super::error::Result;
use super::{agents, Ctx, DomainError};
use crate::store::agent_events as store;
use crate::vocabulary::time::iso;
use serde_json::Value as Json;

/// Longest accepted event type.
const MAX_TYPE_CHARS: usize = 128;

/// Records one event of an existing agent.
pub fn append(ctx: &Ctx<'_>, agent_id: &str, event_type: &str, data: &Json) -> Result<()> {
    agents::get(ctx, agent_id)?;
    let kind = event_type.trim();
    if kind.is_empty() || kind.chars().count() > MAX_TYPE_CHARS {
        return Err(DomainError::invalid(
            "event_type",
            format!("must be 1-{MAX_TYPE_CHARS} characters"),
        ));
    }
    store::append(ctx.sql, agent_id, kind, &data.to_string(), &iso(ctx.now))?;
    Ok(())
}
