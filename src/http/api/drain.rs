//! `POST /container-eviction` and `POST /container-ready`.

use super::{accepted, ok};
use crate::domain::{drain, Ctx};
use crate::http::town::{body, Outcome};
use crate::http::{ApiError, Request};
use serde::Deserialize;
use serde_json::json;

/// Starts draining; records `container_eviction` and answers with the nonce.
pub fn eviction(ctx: &Ctx<'_>) -> Result<Outcome, ApiError> {
    let nonce = drain::evict(ctx)?;
    Ok(accepted(json!({"draining": true, "drain_nonce": nonce})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ready {
    nonce: String,
}

/// Ends draining when the nonce matches (409 when it does not).
pub fn ready(ctx: &Ctx<'_>, req: &Request) -> Result<Outcome, ApiError> {
    let b: Ready = body(req)?;
    drain::container_ready(ctx, &b.nonce)?;
    Ok(ok(json!({"draining": false})))
}
