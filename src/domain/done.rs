//! What an agent's `gt_done` does once applied (GASTOWN-DOMAIN.md 2.2, "agent done"): hand the
//! work to the review queue, or finish it directly, depending on what is on the hook.

use super::beads::{self, event};
use super::error::Result;
use super::reviews::{self, Outcome, Submission};
use super::{agents, Ctx, DomainError};
use crate::store::beads::NewEvent;
use crate::store::reviews as review_store;
use crate::vocabulary::events::AgentDone;
use crate::vocabulary::model::{labels, Agent, AgentRole, Bead, BeadStatus, BeadType};

/// Who creates triage batch beads.
pub const PATROL: &str = "patrol";

/// Applies `agent_done` for `agent_id`; a missing agent is `NotFound` (the event is retried,
/// then poisoned).
///
/// 1. Nothing hooked: a refinery recovers its most recent live MR (PR URL given: stored and the
///    MR moves to `in_progress`, or the review fails for a non-https URL; no URL: merged);
///    anyone else is ignored.
/// 2. A patrol `gt:triage` batch bead, or 3. a `gt:rework` / `gt:pr-fixup` / `gt:pr-feedback`
///    bead: closed directly (no review; closing it unblocks the MR waiting on it), unhooked.
/// 4. A refinery: PR URL given: stored, MR `in_progress`, `pr_created` (or the review fails and
///    `pr_creation_failed` is logged for a non-https URL); no URL: merged. Then unhooked (idle).
/// 5. A polecat: the work is submitted for review, the agent unhooked, the source bead moves
///    to `in_review` keeping its assignee.
///
/// A hooked bead that is already closed or failed is only unhooked.
pub fn apply(ctx: &Ctx<'_>, agent_id: &str, done: &AgentDone) -> Result<()> {
    let agent = agents::get(ctx, agent_id)?;
    let Some(hooked_id) = agent.current_hook_bead_id.clone() else {
        return recover_refinery_review(ctx, &agent, done);
    };
    let hooked = match beads::get(ctx, &hooked_id) {
        Ok(bead) => bead,
        Err(DomainError::NotFound { .. }) => {
            agents::unhook_of(ctx, agent)?;
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if hooked.status.is_terminal() {
        crate::log::debug(
            "agent_done_on_terminal_bead",
            &[("agent_id", agent_id), ("bead_id", &hooked_id)],
        );
        agents::unhook_of(ctx, agent)?;
        return Ok(());
    }
    if closes_directly(&hooked) {
        // Closing the bead leaves its agents' rows alone: the agent is still as read.
        beads::set_status_of(ctx, hooked, BeadStatus::Closed, agent_id, None)?;
        agents::unhook_of(ctx, agent)?;
        return Ok(());
    }
    if agent.role == AgentRole::Refinery {
        if hooked.bead_type == BeadType::MergeRequest {
            finish_review(ctx, &agent, &hooked, done)?;
        } else {
            crate::log::warn(
                "refinery_done_without_merge_request",
                &[("agent_id", agent_id), ("bead_id", &hooked_id)],
            );
        }
        agents::unhook(ctx, agent_id)?;
        return Ok(());
    }
    let pr_url = done.pr_url.clone().filter(|url| {
        let ok = reviews::is_https_url(url);
        if !ok {
            crate::log::warn(
                "agent_done_pr_url_dropped",
                &[("agent_id", agent_id), ("pr_url", url)],
            );
        }
        ok
    });
    reviews::submit(
        ctx,
        &Submission {
            source_bead_id: hooked_id.clone(),
            agent_id: agent_id.to_owned(),
            rig_id: agent.rig_id.clone(),
            branch: done.branch.clone(),
            pr_url,
            summary: done.summary.clone(),
            default_branch: None,
        },
    )?;
    agents::unhook(ctx, agent_id)?;
    beads::set_status(ctx, &hooked_id, BeadStatus::InReview, agent_id, None)?;
    Ok(())
}

/// Work that needs no review of its own: patrol's triage batches, rework and PR fix-ups.
fn closes_directly(bead: &Bead) -> bool {
    (bead.has_label(labels::TRIAGE) && bead.created_by.as_deref() == Some(PATROL))
        || bead.has_label(labels::REWORK)
        || bead.has_label(labels::PR_FIXUP)
        || bead.has_label(labels::PR_FEEDBACK)
}

/// Step 1: a refinery that lost its hook (for instance to a race with its own exit) still
/// finishes the MR it was reviewing.
fn recover_refinery_review(ctx: &Ctx<'_>, agent: &Agent, done: &AgentDone) -> Result<()> {
    if agent.role != AgentRole::Refinery {
        crate::log::debug("agent_done_without_hook", &[("agent_id", &agent.agent_id)]);
        return Ok(());
    }
    match review_store::latest_live_assigned_to(ctx.sql, &agent.agent_id)? {
        Some(mr) => finish_review(ctx, agent, &mr, done),
        None => {
            crate::log::debug("agent_done_without_hook", &[("agent_id", &agent.agent_id)]);
            Ok(())
        }
    }
}

/// A refinery is done with an MR: a PR was opened (track it) or it merged itself.
fn finish_review(ctx: &Ctx<'_>, agent: &Agent, mr: &Bead, done: &AgentDone) -> Result<()> {
    let Some(url) = done.pr_url.as_deref() else {
        reviews::complete(
            ctx,
            &mr.bead_id,
            Outcome::Merged,
            done.summary.as_deref(),
            None,
        )?;
        return Ok(());
    };
    if !reviews::is_https_url(url) {
        reviews::complete(
            ctx,
            &mr.bead_id,
            Outcome::Failed,
            Some(&format!("invalid PR URL: {url}")),
            None,
        )?;
        beads::log(
            ctx,
            &NewEvent {
                bead_id: &mr.bead_id,
                agent_id: Some(&agent.agent_id),
                event_type: event::PR_CREATION_FAILED,
                new_value: Some(url),
                ..Default::default()
            },
        )?;
        return Ok(());
    }
    reviews::set_pr_url(ctx, &mr.bead_id, url)?;
    beads::set_status(
        ctx,
        &mr.bead_id,
        BeadStatus::InProgress,
        &agent.agent_id,
        None,
    )?;
    beads::log(
        ctx,
        &NewEvent {
            bead_id: &mr.bead_id,
            agent_id: Some(&agent.agent_id),
            event_type: event::PR_CREATED,
            new_value: Some(url),
            ..Default::default()
        },
    )?;
    Ok(())
}
