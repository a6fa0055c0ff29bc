//! What the PR host's findings do once applied (GASTOWN-DOMAIN.md 2.2): feedback on a PR
//! becomes a `gt:pr-feedback` bead the MR waits on; a PR that stayed green is flagged for
//! auto-merge.

use super::beads;
use super::error::Result;
use super::{object, Ctx, SYSTEM};
use crate::store::beads::{self as bead_store, NewBead};
use crate::store::dependencies;
use crate::vocabulary::events::PrFeedbackDetected;
use crate::vocabulary::model::{labels, Bead, BeadType, DependencyType};
use serde_json::json;

/// The live MR, or `None` (logged at debug: routine once a PR settled) when it is missing or
/// already closed or failed.
fn live_mr(ctx: &Ctx<'_>, mr_id: &str, event: &str) -> Result<Option<Bead>> {
    let mr = bead_store::get(ctx.sql, mr_id)?
        .filter(|b| b.bead_type == BeadType::MergeRequest && !b.status.is_terminal());
    if mr.is_none() {
        crate::log::debug(event, &[("mr_bead_id", mr_id), ("skipped", "no live MR")]);
    }
    Ok(mr)
}

/// Applies `pr_feedback_detected`: unless the MR is gone or finished, or a live
/// `gt:pr-feedback` bead already blocks it, files an issue bead in the MR's rig (parent = the
/// MR, metadata `{pr_feedback_for, pr_url, branch}`) with instructions for a polecat, and makes
/// the MR block on it. Returns the new bead.
pub fn detected(ctx: &Ctx<'_>, mr_id: &str, f: &PrFeedbackDetected) -> Result<Option<Bead>> {
    let Some(mr) = live_mr(ctx, mr_id, "pr_feedback_skipped")? else {
        return Ok(None);
    };
    let pending = dependencies::targets(ctx.sql, mr_id, DependencyType::Blocks, None)?
        .into_iter()
        .any(|b| b.has_label(labels::PR_FEEDBACK) && !b.status.is_terminal());
    if pending {
        return Ok(None);
    }
    let mut bead = NewBead::new(&ctx.ids.new_id(), BeadType::Issue, &title(f));
    bead.body = Some(instructions(f));
    bead.rig_id = mr.rig_id.clone();
    bead.parent_bead_id = Some(mr_id.to_owned());
    bead.labels = vec![labels::PR_FEEDBACK.to_owned()];
    bead.metadata = object(json!({
        "pr_feedback_for": mr_id,
        "pr_url": f.pr_url,
        "branch": f.branch,
    }));
    bead.created_by = Some(SYSTEM.to_owned());
    let bead = beads::create(ctx, &bead)?;
    dependencies::insert(ctx.sql, mr_id, &bead.bead_id, DependencyType::Blocks)?;
    Ok(Some(bead))
}

/// `Address <what> on PR #N (<repo name>)`.
fn title(f: &PrFeedbackDetected) -> String {
    let mut what = Vec::new();
    if f.has_unresolved_comments {
        what.push("review comments");
    }
    if f.has_failing_checks {
        what.push("failing CI");
    }
    let what = if what.is_empty() {
        "unchecked CI runs".to_owned()
    } else {
        what.join(" & ")
    };
    let repo = f.repo.rsplit('/').next().unwrap_or(&f.repo);
    format!("Address {what} on PR #{} ({repo})", f.pr_number)
}

/// What the polecat is asked to do.
fn instructions(f: &PrFeedbackDetected) -> String {
    let mut steps = vec![format!(
        "Pull request {} (branch `{}`) needs attention before it can merge.",
        f.pr_url, f.branch
    )];
    steps.push(format!(
        "1. Check out the PR branch: `git fetch origin {b} && git checkout {b}`.",
        b = f.branch
    ));
    if f.has_unresolved_comments {
        steps.push(format!(
            "2. Read every review thread with `gh pr view {} --comments` and address each \
             unresolved comment (fix it, or reply why not).",
            f.pr_number
        ));
    }
    if f.has_failing_checks || f.has_unchecked_runs {
        steps.push(format!(
            "3. List the checks with `gh pr checks {}`; for each failing run read its log with \
             `gh run view <run-id> --log-failed` and fix the cause.",
            f.pr_number
        ));
    }
    if f.has_unchecked_runs {
        steps.push(
            "Note: this PR has more than 100 check runs, so some were not inspected by the \
             town; look at all of them with `gh pr checks`."
                .to_owned(),
        );
    }
    steps.push(
        "4. Push your commits to the same branch (do not open a new PR), then call gt_done \
         with the branch and the PR URL."
            .to_owned(),
    );
    steps.join("\n\n")
}

/// Applies `pr_auto_merge`: unless the MR is gone or finished, sets its metadata
/// `auto_merge_pending = 1` (the reconciler then emits the merge) and touches `updated_at`.
pub fn auto_merge(ctx: &Ctx<'_>, mr_id: &str) -> Result<()> {
    if live_mr(ctx, mr_id, "pr_auto_merge_skipped")?.is_some() {
        beads::merge_metadata(ctx, mr_id, &object(json!({"auto_merge_pending": 1})))?;
    }
    Ok(())
}
