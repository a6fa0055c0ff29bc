//! The review queue (GASTOWN-DOMAIN.md 1.3): submitting merge requests, completing reviews with
//! all their consequences, PR URLs, and refinery change requests.

use super::beads::{self, event};
use super::error::Result;
use super::{agents, convoys, object, Ctx, DomainError, SYSTEM};
use crate::store::beads::{NewBead, NewEvent};
use crate::store::events::Subject;
use crate::store::page::{Page, PageQuery};
use crate::store::{convoys as convoy_store, dependencies, escalations, reviews as store, rigs};
use crate::vocabulary::events::{BeadCreated, EventKind};
use crate::vocabulary::model::{
    labels, AgentRole, Bead, BeadStatus, BeadType, DependencyType, FailureReason, MergeMode,
    Priority, Review,
};
use serde_json::{json, Map};

/// Branch merged into when neither a convoy nor the rig says otherwise.
pub const DEFAULT_TARGET_BRANCH: &str = "main";

/// A merge request to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    /// The bead whose work is reviewed (a convoy bead for a landing MR).
    pub source_bead_id: String,
    /// The submitting agent (`system` for landing MRs).
    pub agent_id: String,
    pub rig_id: Option<String>,
    pub branch: String,
    pub pr_url: Option<String>,
    pub summary: Option<String>,
    /// Target when the source is not in a review-then-land convoy; else the rig's default.
    pub default_branch: Option<String>,
}

/// How a review ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Merged,
    Failed,
    Conflict,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Merged => "merged",
            Outcome::Failed => "failed",
            Outcome::Conflict => "conflict",
        }
    }
}

/// The merge request, or `NotFound` (also for a bead of another type).
pub fn get(ctx: &Ctx<'_>, mr_id: &str) -> Result<(Bead, Review)> {
    let missing = || DomainError::not_found("merge request", mr_id);
    let bead = crate::store::beads::get(ctx.sql, mr_id)?
        .filter(|b| b.bead_type == BeadType::MergeRequest)
        .ok_or_else(missing)?;
    let review = store::get(ctx.sql, mr_id)?.ok_or_else(missing)?;
    Ok((bead, review))
}

/// A page of the merge requests with their review rows, oldest first.
pub fn page(ctx: &Ctx<'_>, which: &PageQuery) -> Result<Page<(Bead, Review)>> {
    Ok(store::page(ctx.sql, which)?)
}

/// How the API names an MR's status: pending, running, merged or failed.
pub fn api_status(status: BeadStatus) -> &'static str {
    match status {
        BeadStatus::Open => "pending",
        BeadStatus::InProgress | BeadStatus::InReview => "running",
        BeadStatus::Closed => "merged",
        BeadStatus::Failed => "failed",
    }
}

/// Whether `url` is an `https://` URL with a host.
pub fn is_https_url(url: &str) -> bool {
    url.strip_prefix("https://").is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && !url.chars().any(char::is_whitespace)
    })
}

/// Queues a merge request for `source_bead_id`: an open MR bead titled `Review: <branch>`
/// (body = summary, unassigned, `gt:merge-request`, metadata `{source_bead_id,
/// source_agent_id, pr_url?, convoy_id?, convoy_feature_branch?}`), a `tracks` edge MR ->
/// source and its review row. The target branch is the convoy's feature branch when the source
/// is in a review-then-land convoy that has one, else `default_branch`, the rig's default
/// branch or `main`.
pub fn submit(ctx: &Ctx<'_>, s: &Submission) -> Result<Bead> {
    let source = beads::get(ctx, &s.source_bead_id)?;
    if s.branch.trim().is_empty() {
        return Err(DomainError::invalid("branch", "must not be empty"));
    }
    if let Some(url) = s.pr_url.as_deref().filter(|u| !is_https_url(u)) {
        return Err(DomainError::invalid(
            "pr_url",
            format!("{url} is not an https URL"),
        ));
    }
    let mut metadata = object(json!({
        "source_bead_id": source.bead_id,
        "source_agent_id": s.agent_id,
    }));
    if let Some(url) = &s.pr_url {
        metadata.insert("pr_url".into(), url.as_str().into());
    }
    let mut target = None;
    for convoy_id in convoy_store::tracking(ctx.sql, &source.bead_id)? {
        let convoy = convoys::get(ctx, &convoy_id)?.convoy;
        metadata.insert("convoy_id".into(), convoy_id.as_str().into());
        if convoy.merge_mode != Some(MergeMode::ReviewAndMerge) {
            if let Some(branch) = convoy.feature_branch {
                metadata.insert("convoy_feature_branch".into(), branch.as_str().into());
                target = Some(branch);
            }
        }
    }
    let target = match (target, &s.default_branch, &s.rig_id) {
        (Some(branch), _, _) => branch,
        (None, Some(branch), _) => branch.clone(),
        (None, None, Some(rig)) => rigs::get(ctx.sql, rig)?
            .map_or_else(|| DEFAULT_TARGET_BRANCH.to_owned(), |r| r.default_branch),
        (None, None, None) => DEFAULT_TARGET_BRANCH.to_owned(),
    };
    let mut mr = NewBead::new(
        &ctx.ids.new_id(),
        BeadType::MergeRequest,
        &format!("Review: {}", s.branch),
    );
    mr.body = s.summary.clone();
    mr.rig_id = s.rig_id.clone();
    mr.labels = vec![labels::MERGE_REQUEST.to_owned()];
    mr.metadata = metadata;
    mr.created_by = Some(s.agent_id.clone());
    beads::create(ctx, &mr)?;
    dependencies::insert(
        ctx.sql,
        &mr.bead_id,
        &source.bead_id,
        DependencyType::Tracks,
    )?;
    store::insert(
        ctx.sql,
        &mr.bead_id,
        &s.branch,
        &target,
        s.pr_url.as_deref(),
    )?;
    beads::log(
        ctx,
        &NewEvent {
            bead_id: &source.bead_id,
            agent_id: Some(&s.agent_id),
            event_type: event::REVIEW_SUBMITTED,
            new_value: Some(&mr.bead_id),
            ..Default::default()
        },
    )?;
    beads::get(ctx, &mr.bead_id)
}

/// Queues the MR that lands a convoy's feature branch on `target_branch` (submitted by
/// `system`, source = the convoy bead).
pub fn create_landing_mr(
    ctx: &Ctx<'_>,
    convoy_id: &str,
    rig_id: &str,
    feature_branch: &str,
    target_branch: &str,
) -> Result<Bead> {
    convoys::get(ctx, convoy_id)?;
    submit(
        ctx,
        &Submission {
            source_bead_id: convoy_id.to_owned(),
            agent_id: SYSTEM.to_owned(),
            rig_id: Some(rig_id.to_owned()),
            branch: feature_branch.to_owned(),
            pr_url: None,
            summary: Some(format!("Land convoy {convoy_id} on {target_branch}")),
            default_branch: Some(target_branch.to_owned()),
        },
    )
}

/// The source bead an MR reviews (its metadata, else its `tracks` edge).
fn source_of(ctx: &Ctx<'_>, mr: &Bead) -> Result<Option<Bead>> {
    if let Some(id) = mr.meta_str("source_bead_id") {
        return Ok(crate::store::beads::get(ctx.sql, id)?);
    }
    Ok(
        dependencies::targets(ctx.sql, &mr.bead_id, DependencyType::Tracks, None)?
            .into_iter()
            .next(),
    )
}

/// Completes a review (`completeReviewWithResult`). An MR that is already closed or failed is
/// returned unchanged. Otherwise the MR becomes `closed` (merged) or `failed`, a
/// `review_completed` event is logged on the source, and:
/// - merged: the source is closed, every other live MR of the same source is force-closed, a
///   convoy source (landing MR) records `landed_at`;
/// - conflict: an `escalation` bead "Merge conflict: ..." (priority high) is filed, and the
///   source (unless terminal) goes back to `open` without assignee;
/// - failed: the source (unless terminal) goes back to `open` without assignee.
///
/// Convoy progress of the source is recomputed in every case.
pub fn complete(
    ctx: &Ctx<'_>,
    mr_id: &str,
    outcome: Outcome,
    message: Option<&str>,
    commit_sha: Option<&str>,
) -> Result<Bead> {
    let (mr, review) = get(ctx, mr_id)?;
    if mr.status.is_terminal() {
        return Ok(mr);
    }
    let source = source_of(ctx, &mr)?;
    match outcome {
        Outcome::Merged => {
            if let Some(sha) = commit_sha {
                store::set_merge_commit(ctx.sql, mr_id, sha)?;
            }
            beads::set_status(ctx, mr_id, BeadStatus::Closed, SYSTEM, None)?;
        }
        Outcome::Failed | Outcome::Conflict => {
            let (code, default) = match outcome {
                Outcome::Conflict => ("merge_conflict", "merge conflict"),
                _ => ("review_failed", "review failed"),
            };
            let reason = FailureReason::new(code, message.unwrap_or(default), "refinery");
            beads::set_status(ctx, mr_id, BeadStatus::Failed, SYSTEM, Some(&reason))?;
        }
    }
    if outcome == Outcome::Conflict {
        file_conflict_escalation(ctx, &mr, &review, message)?;
    }
    let Some(source) = source else {
        return beads::get(ctx, mr_id);
    };
    let mut details = object(json!({"mr_bead_id": mr_id, "outcome": outcome.as_str()}));
    if let Some(m) = message {
        details.insert("message".into(), m.into());
    }
    beads::log(
        ctx,
        &NewEvent {
            bead_id: &source.bead_id,
            agent_id: Some(SYSTEM),
            event_type: event::REVIEW_COMPLETED,
            new_value: Some(outcome.as_str()),
            metadata: details,
            ..Default::default()
        },
    )?;
    if outcome == Outcome::Merged {
        close_siblings(ctx, &source.bead_id, mr_id)?;
        if source.bead_type == BeadType::Convoy {
            convoys::mark_landed(ctx, &source.bead_id)?;
        }
        beads::set_status(ctx, &source.bead_id, BeadStatus::Closed, SYSTEM, None)?;
    } else if !source.status.is_terminal() {
        beads::set_status(ctx, &source.bead_id, BeadStatus::Open, SYSTEM, None)?;
        beads::clear_assignee(ctx, &source.bead_id)?;
    }
    convoys::recompute_progress(ctx, &source.bead_id)?;
    beads::get(ctx, mr_id)
}

/// Force-closes every MR of `source_bead_id` that is neither closed nor failed, except
/// `exclude_mr_id`.
pub fn close_siblings(ctx: &Ctx<'_>, source_bead_id: &str, exclude_mr_id: &str) -> Result<()> {
    let siblings = dependencies::sources(
        ctx.sql,
        source_bead_id,
        DependencyType::Tracks,
        Some(BeadType::MergeRequest),
    )?;
    for mr in siblings
        .iter()
        .filter(|mr| mr.bead_id != exclude_mr_id && !mr.status.is_terminal())
    {
        beads::set_status(ctx, &mr.bead_id, BeadStatus::Closed, SYSTEM, None)?;
    }
    Ok(())
}

fn file_conflict_escalation(
    ctx: &Ctx<'_>,
    mr: &Bead,
    review: &Review,
    message: Option<&str>,
) -> Result<Bead> {
    let mut bead = NewBead::new(
        &ctx.ids.new_id(),
        BeadType::Escalation,
        &format!(
            "Merge conflict: {} into {}",
            review.branch, review.target_branch
        ),
    );
    bead.body = Some(format!(
        "Merging {} into {} for merge request {} hit a conflict.\n\n{}",
        review.branch,
        review.target_branch,
        mr.bead_id,
        message.unwrap_or("No details were reported.")
    ));
    bead.rig_id = mr.rig_id.clone();
    bead.priority = Priority::High;
    bead.labels = vec![labels::ESCALATION.to_owned(), "severity:high".to_owned()];
    bead.metadata = object(json!({
        "mr_bead_id": mr.bead_id,
        "source_bead_id": mr.meta_str("source_bead_id"),
        "branch": review.branch,
    }));
    bead.created_by = Some(SYSTEM.to_owned());
    let escalation = beads::create(ctx, &bead)?;
    escalations::insert(ctx.sql, &escalation.bead_id, "high", "merge_conflict")?;
    Ok(escalation)
}

/// Stores an MR's PR URL (https only) in its review row and its metadata.
pub fn set_pr_url(ctx: &Ctx<'_>, mr_id: &str, pr_url: &str) -> Result<Bead> {
    get(ctx, mr_id)?;
    if !is_https_url(pr_url) {
        return Err(DomainError::invalid(
            "pr_url",
            format!("{pr_url} is not an https URL"),
        ));
    }
    store::set_pr_url(ctx.sql, mr_id, pr_url)?;
    beads::merge_metadata(ctx, mr_id, &object(json!({"pr_url": pr_url})))
}

/// A refinery asks for changes on the MR it is reviewing: a `gt:rework` issue bead (rig and
/// parent = the MR, body = the feedback, metadata `{rework_for, mr_bead_id, branch,
/// target_branch}`) that the MR blocks on; records `bead_created` so the reconciler
/// dispatches it. Only the refinery hooked to a live MR may ask.
pub fn request_changes(
    ctx: &Ctx<'_>,
    refinery_id: &str,
    mr_id: &str,
    feedback: &str,
) -> Result<Bead> {
    let refinery = agents::get(ctx, refinery_id)?;
    let (mr, review) = get(ctx, mr_id)?;
    if refinery.role != AgentRole::Refinery {
        return Err(DomainError::conflict(format!(
            "agent {refinery_id} is a {}; only a refinery requests changes",
            refinery.role
        )));
    }
    if refinery.current_hook_bead_id.as_deref() != Some(mr_id) {
        return Err(DomainError::conflict(format!(
            "agent {refinery_id} is not reviewing {mr_id}"
        )));
    }
    if mr.status.is_terminal() {
        return Err(DomainError::conflict(format!(
            "merge request {mr_id} is already {}",
            mr.status
        )));
    }
    if feedback.trim().is_empty() {
        return Err(DomainError::invalid("feedback", "must not be empty"));
    }
    let source = source_of(ctx, &mr)?;
    let mut rework = NewBead::new(
        &ctx.ids.new_id(),
        BeadType::Issue,
        &format!(
            "Rework: {}",
            source
                .as_ref()
                .map_or(mr.title.as_str(), |s| s.title.as_str())
        ),
    );
    rework.body = Some(feedback.to_owned());
    rework.priority = source.as_ref().map_or(Priority::Medium, |s| s.priority);
    rework.rig_id = mr.rig_id.clone();
    rework.parent_bead_id = Some(mr_id.to_owned());
    rework.labels = vec![labels::REWORK.to_owned()];
    rework.metadata = object(json!({
        "rework_for": source.as_ref().map(|s| s.bead_id.as_str()),
        "mr_bead_id": mr_id,
        "branch": review.branch,
        "target_branch": review.target_branch,
    }));
    rework.created_by = Some(refinery_id.to_owned());
    let rework = beads::create(ctx, &rework)?;
    dependencies::insert(ctx.sql, mr_id, &rework.bead_id, DependencyType::Blocks)?;
    ctx.record(
        &EventKind::BeadCreated(BeadCreated {
            bead_type: BeadType::Issue.as_str().into(),
            rig_id: rework.rig_id.clone(),
            convoy_id: None,
            has_blockers: Some(false),
        }),
        &Subject::bead(&rework.bead_id),
    )?;
    let mut details = Map::new();
    details.insert(
        "feedback".into(),
        feedback.chars().take(500).collect::<String>().into(),
    );
    beads::log(
        ctx,
        &NewEvent {
            bead_id: mr_id,
            agent_id: Some(refinery_id),
            event_type: event::REWORK_REQUESTED,
            new_value: Some(&rework.bead_id),
            metadata: details,
            ..Default::default()
        },
    )?;
    Ok(rework)
}
