//! `GET /agents` (the agents' own calls are in [`crate::http::wire`]).

use super::{ok, show};
use crate::domain::{agents, Ctx};
use crate::http::town::Outcome;
use crate::http::ApiError;
use serde_json::json;

pub fn list(ctx: &Ctx<'_>) -> Result<Outcome, ApiError> {
    Ok(ok(json!({"agents": show(&agents::list(ctx)?)})))
}
