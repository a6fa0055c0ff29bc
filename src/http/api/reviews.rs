//! `GET /reviews`: merge requests as pending, running, merged or failed, a page at a time.

use super::{ok, page};
use crate::domain::reviews;
use crate::domain::Ctx;
use crate::http::handler::Outcome;
use crate::http::{ApiError, Request};
use serde_json::json;

pub fn list(ctx: &Ctx<'_>, req: &Request) -> Result<Outcome, ApiError> {
    let found = reviews::page(ctx, &page::requested(req)?)?;
    Ok(ok(page::answer("reviews", found, |(bead, review)| {
        json!({
                "mr_bead_id": bead.bead_id,
                "status": reviews::api_status(bead.status),
                "bead_status": bead.status,
                "title": bead.title,
                "rig_id": bead.rig_id,
                "source_bead_id": bead.meta_str("source_bead_id"),
                "source_agent_id": bead.meta_str("source_agent_id"),
                "assignee_agent_bead_id": bead.assignee_agent_bead_id,
                "branch": review.branch,
                "target_branch": review.target_branch,
                "pr_url": review.pr_url,
                "merge_commit": review.merge_commit,
                "created_at": bead.created_at,
                "updated_at": bead.updated_at,
        })
    })))
}
