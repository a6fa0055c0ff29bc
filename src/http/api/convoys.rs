//! `POST /convoys`, `POST /convoys/{c}/start` and `GET /convoys/{c}`.

use super::{created, ok};
use crate::domain::convoys::{self, ConvoyState, ConvoyTask, SlingConvoy};
use crate::domain::{Ctx, API};
use crate::http::handler::{body, After, Outcome};
use crate::http::{ApiError, Request, Response};
use crate::store::dependencies;
use crate::vocabulary::model::{BeadStatus, BeadType, DependencyType, MergeMode};
use serde::Deserialize;
use serde_json::{json, Value as Json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateConvoy {
    title: String,
    rig_id: String,
    #[serde(default)]
    merge_mode: Option<MergeMode>,
    #[serde(default)]
    staged: Option<bool>,
    beads: Vec<Task>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Task {
    title: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    depends_on: Vec<usize>,
}

/// Slings a convoy; a dependency cycle is a 422 and writes nothing.
pub fn create(ctx: &Ctx<'_>, req: &Request) -> Result<Outcome, ApiError> {
    let b: CreateConvoy = body(req)?;
    let slung = convoys::sling(
        ctx,
        &SlingConvoy {
            title: b.title,
            rig_id: b.rig_id,
            merge_mode: b.merge_mode,
            staged: b.staged,
            tasks: b
                .beads
                .into_iter()
                .map(|t| ConvoyTask {
                    title: t.title,
                    body: t.body,
                    depends_on: t.depends_on,
                })
                .collect(),
            created_by: API.to_owned(),
        },
    )?;
    Ok(created(json!({
        "convoy": convoy_json(ctx, &slung.convoy)?,
        "bead_ids": slung.bead_ids,
    })))
}

/// Starts a staged convoy; records `convoy_started`.
pub fn start(ctx: &Ctx<'_>, convoy_id: &str) -> Result<Outcome, ApiError> {
    let state = convoys::start(ctx, convoy_id)?;
    Ok(Outcome::new(
        Response::json(200, &json!({"convoy": convoy_json(ctx, &state)?})),
        After::ArmIfNeeded,
    ))
}

/// The convoy with its progress and members.
pub fn get(ctx: &Ctx<'_>, convoy_id: &str) -> Result<Outcome, ApiError> {
    let state = convoys::get(ctx, convoy_id)?;
    Ok(ok(json!({"convoy": convoy_json(ctx, &state)?})))
}

/// `active` until the convoy bead closes, then `landed`.
fn convoy_json(ctx: &Ctx<'_>, s: &ConvoyState) -> Result<Json, ApiError> {
    let members: Vec<Json> = dependencies::sources(
        ctx.sql,
        &s.bead.bead_id,
        DependencyType::Tracks,
        Some(BeadType::Issue),
    )?
    .iter()
    .map(|b| json!({"bead_id": b.bead_id, "title": b.title, "status": b.status}))
    .collect();
    Ok(json!({
        "convoy_id": s.bead.bead_id,
        "title": s.bead.title,
        "status": if s.bead.status == BeadStatus::Closed { "landed" } else { "active" },
        "bead_status": s.bead.status,
        "total_beads": s.convoy.total_beads,
        "closed_beads": s.convoy.closed_beads,
        "landed_at": s.convoy.landed_at,
        "feature_branch": s.convoy.feature_branch,
        "merge_mode": s.convoy.merge_mode,
        "staged": s.convoy.staged,
        "ready_to_land": s.bead.flag("ready_to_land"),
        "created_at": s.bead.created_at,
        "updated_at": s.bead.updated_at,
        "beads": members,
    }))
}
