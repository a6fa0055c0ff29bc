//! `GET /agents/{a}/nudges` and `POST /agents/{a}/nudges/{n}/delivered`.

use super::{ok, show};
use crate::domain::{nudges, Ctx};
use crate::http::town::Outcome;
use crate::http::ApiError;
use serde_json::json;

/// The agent's undelivered nudges, urgent first.
pub fn pending(ctx: &Ctx<'_>, agent_id: &str) -> Result<Outcome, ApiError> {
    Ok(ok(
        json!({"nudges": show(&nudges::pending(ctx, agent_id)?)}),
    ))
}

/// Acknowledges one.
pub fn delivered(ctx: &Ctx<'_>, agent_id: &str, nudge_id: &str) -> Result<Outcome, ApiError> {
    let nudge = nudges::mark_delivered(ctx, agent_id, nudge_id)?;
    Ok(ok(json!({"nudge": show(&nudge)})))
}
