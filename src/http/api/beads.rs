//! `POST /beads`, `GET /beads`, `GET /beads/{b}` and `PATCH /beads/{b}` (cancel).

use super::{created, ok, page, show};
use crate::domain::beads::{self, NewIssue};
use crate::domain::{Ctx, API};
use crate::http::handler::{body, After, Outcome};
use crate::http::{ApiError, Request};
use crate::store::beads::{self as store, Filter};
use crate::store::dependencies;
use crate::vocabulary::events::CancelStatus;
use crate::vocabulary::model::{BeadStatus, BeadType, Priority};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBead {
    rig_id: String,
    title: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    priority: Option<Priority>,
    #[serde(default)]
    labels: Vec<String>,
}

/// Files an issue bead; records `bead_created`.
pub fn create(ctx: &Ctx<'_>, req: &Request) -> Result<Outcome, ApiError> {
    let b: CreateBead = body(req)?;
    let bead = beads::create_issue(
        ctx,
        &NewIssue {
            rig_id: b.rig_id,
            title: b.title,
            body: b.body,
            priority: b.priority.unwrap_or(Priority::Medium),
            labels: b.labels,
            created_by: API.to_owned(),
        },
    )?;
    Ok(created(json!({"bead": show(&bead)})))
}

/// A page of the beads filtered by the query's `status`, `type` and `rig_id` (agent beads only
/// by type), after its `cursor` ([`page`]).
pub fn list(ctx: &Ctx<'_>, req: &Request) -> Result<Outcome, ApiError> {
    fn parsed<T>(
        req: &Request,
        name: &str,
        parse: fn(&str) -> Option<T>,
    ) -> Result<Option<T>, ApiError> {
        req.query_param(name)
            .map(|v| {
                parse(v).ok_or_else(|| ApiError::invalid(name, format!("unknown value {v:?}")))
            })
            .transpose()
    }
    let filter = Filter {
        status: parsed(req, "status", BeadStatus::parse)?,
        bead_type: parsed(req, "type", BeadType::parse)?,
        rig_id: req.query_param("rig_id").map(str::to_owned),
    };
    let found = store::page(ctx.sql, &filter, &page::requested(req)?)?;
    Ok(ok(page::answer("beads", found, |b| show(&b))))
}

/// One bead with its dependencies and history.
pub fn get(ctx: &Ctx<'_>, bead_id: &str) -> Result<Outcome, ApiError> {
    let bead = beads::get(ctx, bead_id)?;
    Ok(ok(json!({
        "bead": show(&bead),
        "dependencies": show(&dependencies::touching(ctx.sql, bead_id)?),
        "events": show(&store::events_of(ctx.sql, bead_id)?),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBead {
    status: CancelStatus,
}

/// Cancels a bead (`closed` or `failed`): records `bead_cancelled`, then writes the status.
pub fn patch(ctx: &Ctx<'_>, bead_id: &str, req: &Request) -> Result<Outcome, ApiError> {
    let b: PatchBead = body(req)?;
    let bead = beads::cancel(ctx, bead_id, b.status, API)?;
    Ok(Outcome::new(
        crate::http::Response::json(200, &json!({"bead": show(&bead)})),
        After::ArmIfNeeded,
    ))
}
