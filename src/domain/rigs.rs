//! Rigs (GASTOWN-DOMAIN.md 1.7): the repositories a town works on.

use super::error::Result;
use super::reviews::DEFAULT_TARGET_BRANCH;
use super::{git, Ctx, DomainError};
use crate::store::rigs as store;
use crate::vocabulary::model::Rig;

/// A rig to register.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRig {
    /// Chosen by the town when absent.
    pub rig_id: Option<String>,
    pub name: String,
    pub git_url: String,
    /// `main` when absent.
    pub default_branch: Option<String>,
}

/// Registers a rig; an id already taken is a `Conflict`.
pub fn create(ctx: &Ctx<'_>, r: &NewRig) -> Result<Rig> {
    let rig_id = r.rig_id.clone().unwrap_or_else(|| ctx.ids.new_id());
    for (field, value) in [
        ("rig_id", &rig_id),
        ("name", &r.name),
        ("git_url", &r.git_url),
    ] {
        if value.trim().is_empty() {
            return Err(DomainError::invalid(field, "must not be empty"));
        }
    }
    if !git::valid_url(&r.git_url) {
        return Err(DomainError::invalid(
            "git_url",
            "must be an https://host/path, ssh://host/path or user@host:path URL",
        ));
    }
    let branch = r.default_branch.as_deref().unwrap_or(DEFAULT_TARGET_BRANCH);
    if !git::valid_branch(branch) {
        return Err(DomainError::invalid(
            "default_branch",
            "must be a branch name git accepts",
        ));
    }
    if store::get(ctx.sql, &rig_id)?.is_some() {
        return Err(DomainError::conflict(format!(
            "rig {rig_id} already exists"
        )));
    }
    store::insert(ctx.sql, &rig_id, &r.name, &r.git_url, branch, ctx.now)?;
    get(ctx, &rig_id)
}

/// The rig, or `NotFound`.
pub fn get(ctx: &Ctx<'_>, rig_id: &str) -> Result<Rig> {
    store::get(ctx.sql, rig_id)?.ok_or_else(|| DomainError::not_found("rig", rig_id))
}

/// Every rig, oldest first.
pub fn list(ctx: &Ctx<'_>) -> Result<Vec<Rig>> {
    Ok(store::list(ctx.sql)?)
}
