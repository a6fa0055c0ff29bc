//! `POST /rigs` and `GET /rigs`.

use super::{created, ok, show};
use crate::domain::rigs::{self, NewRig};
use crate::domain::Ctx;
use crate::http::handler::{body, Outcome};
use crate::http::routes::valid_id;
use crate::http::{ApiError, Request};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRig {
    #[serde(default)]
    rig_id: Option<String>,
    name: String,
    git_url: String,
    #[serde(default)]
    default_branch: Option<String>,
}

pub fn create(ctx: &Ctx<'_>, req: &Request) -> Result<Outcome, ApiError> {
    let b: CreateRig = body(req)?;
    if b.rig_id.as_deref().is_some_and(|id| !valid_id(id)) {
        return Err(ApiError::invalid(
            "rig_id",
            "must be 1-128 characters of A-Z a-z 0-9 . _ : -",
        ));
    }
    let rig = rigs::create(
        ctx,
        &NewRig {
            rig_id: b.rig_id,
            name: b.name,
            git_url: b.git_url,
            default_branch: b.default_branch,
        },
    )?;
    Ok(created(json!({"rig": show(&rig)})))
}

pub fn list(ctx: &Ctx<'_>) -> Result<Outcome, ApiError> {
    Ok(ok(json!({"rigs": show(&rigs::list(ctx)?)})))
}
