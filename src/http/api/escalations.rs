//! `GET /escalations` (a page at a time, oldest first, `?unacknowledged=true` for those still
//! open to re-escalation) and `POST /escalations/{e}/acknowledge` (never re-escalated again).

use super::{ok, page};
use crate::domain::escalations;
use crate::domain::{Ctx, API};
use crate::http::handler::Outcome;
use crate::http::{ApiError, Request};
use crate::store::escalations::{self as store, Escalation};
use serde_json::{json, Value as Json};

pub fn list(ctx: &Ctx<'_>, req: &Request) -> Result<Outcome, ApiError> {
    let which = page::requested(req)?;
    let unacknowledged = match req.query_param("unacknowledged") {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            return Err(ApiError::invalid(
                "unacknowledged",
                format!("must be true or false, not {v:?}"),
            ))
        }
    };
    let found = store::page(ctx.sql, &which, unacknowledged)?;
    Ok(ok(page::answer("escalations", found, |e| show(&e))))
}

pub fn acknowledge(ctx: &Ctx<'_>, escalation_id: &str) -> Result<Outcome, ApiError> {
    let e = escalations::acknowledge(ctx, escalation_id, API)?;
    Ok(ok(json!({"escalation": show(&e)})))
}

fn show(e: &Escalation) -> Json {
    json!({
        "escalation_id": e.bead_id,
        "title": e.title,
        "body": e.body,
        "rig_id": e.rig_id,
        "status": e.status,
        "severity": e.severity,
        "category": e.category,
        "acknowledged": e.acknowledged,
        "acknowledged_at": e.acknowledged_at,
        "re_escalation_count": e.re_escalation_count,
        "created_at": e.created_at,
    })
}
