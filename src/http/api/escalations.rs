//! `GET /escalations` (newest first, a page at a time; `?unacknowledged=true` for those still
//! open to re-escalation) and `POST /escalations/{e}/acknowledge` (never re-escalated again).

use super::ok;
use crate::domain::escalations;
use crate::domain::{Ctx, API};
use crate::http::town::Outcome;
use crate::http::{ApiError, Request};
use crate::store::escalations::{self as store, Escalation};
use serde_json::{json, Value as Json};

/// Escalations per page unless `limit` says otherwise, and the most it may say.
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

pub fn list(ctx: &Ctx<'_>, req: &Request) -> Result<Outcome, ApiError> {
    let limit = match req.query_param("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::invalid("limit", format!("must be an integer from 1 to {MAX_LIMIT}"))
            })?,
    };
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
    let after = req.query_param("cursor").map(cursor).transpose()?;
    let page = store::page(
        ctx.sql,
        unacknowledged,
        after.as_ref().map(|(at, id)| (at.as_str(), id.as_str())),
        limit + 1,
    )?;
    let more = page.len() > limit as usize;
    let shown: Vec<&Escalation> = page.iter().take(limit as usize).collect();
    let next = shown
        .last()
        .filter(|_| more)
        .map(|e| format!("{}|{}", e.created_at, e.bead_id));
    Ok(ok(json!({
        "escalations": shown.iter().map(|e| show(e)).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

pub fn acknowledge(ctx: &Ctx<'_>, escalation_id: &str) -> Result<Outcome, ApiError> {
    let e = escalations::acknowledge(ctx, escalation_id, API)?;
    Ok(ok(json!({"escalation": show(&e)})))
}

/// The cursor a page hands out: the last escalation's `created_at|bead_id`.
fn cursor(v: &str) -> Result<(String, String), ApiError> {
    v.split_once('|')
        .filter(|(at, id)| crate::time::parse_iso(at).is_some() && !id.is_empty())
        .map(|(at, id)| (at.to_owned(), id.to_owned()))
        .ok_or_else(|| ApiError::invalid("cursor", "not a cursor this route handed out"))
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
