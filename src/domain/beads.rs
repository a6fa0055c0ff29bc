//! Beads (GASTOWN-DOMAIN.md 1.1, 1.5): creation, the status helper that guards terminal states,
//! assignment, metadata and dependencies.

use super::error::Result;
use super::{agents, convoys, Ctx, DomainError};
use crate::store::beads::{self as store, NewBead, NewEvent};
use crate::store::dependencies;
use crate::store::events::Subject;
use crate::store::rigs;
use crate::vocabulary::events::{BeadCancelled, BeadCreated, CancelStatus, EventKind};
use crate::vocabulary::model::{
    Bead, BeadStatus, BeadType, DependencyType, FailureReason, Priority,
};
use crate::vocabulary::time::iso;
use serde_json::{json, Map, Value as Json};

/// `bead_events.event_type` values.
pub mod event {
    pub const CREATED: &str = "created";
    pub const STATUS_CHANGED: &str = "status_changed";
    pub const ASSIGNED: &str = "assigned";
    pub const HOOKED: &str = "hooked";
    pub const UNHOOKED: &str = "unhooked";
    pub const REVIEW_SUBMITTED: &str = "review_submitted";
    pub const REVIEW_COMPLETED: &str = "review_completed";
    pub const PR_CREATED: &str = "pr_created";
    pub const PR_CREATION_FAILED: &str = "pr_creation_failed";
    pub const REWORK_REQUESTED: &str = "rework_requested";
    pub const MAIL_SENT: &str = "mail_sent";
    pub const MAIL_DELIVERED: &str = "mail_delivered";
    pub const EVICTION_CONTEXT: &str = "eviction_context";
    pub const TRIAGE_RESOLVED: &str = "triage_resolved";
    pub const RE_ESCALATED: &str = "re_escalated";
    pub const ACKNOWLEDGED: &str = "acknowledged";
}

// Like the agents' operations, these return the bead as it now is, built from the row read
// before the write and what the write changed (see `domain::agents`).

/// The bead, or `NotFound`.
pub fn get(ctx: &Ctx<'_>, bead_id: &str) -> Result<Bead> {
    store::get(ctx.sql, bead_id)?.ok_or_else(|| DomainError::not_found("bead", bead_id))
}

/// Appends one entry to a bead's history.
pub(crate) fn log(ctx: &Ctx<'_>, e: &NewEvent<'_>) -> Result<()> {
    store::log_event(ctx.sql, &ctx.ids.new_id(), e, ctx.now)?;
    Ok(())
}

/// Inserts a bead (status `open`) and logs `created`.
pub fn create(ctx: &Ctx<'_>, bead: &NewBead) -> Result<Bead> {
    store::insert(ctx.sql, bead, ctx.now)?;
    log(
        ctx,
        &NewEvent {
            bead_id: &bead.bead_id,
            agent_id: bead.created_by.as_deref(),
            event_type: event::CREATED,
            new_value: Some(bead.bead_type.as_str()),
            ..Default::default()
        },
    )?;
    get(ctx, &bead.bead_id)
}

/// An issue as a person files it through the API.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIssue {
    pub rig_id: String,
    pub title: String,
    pub body: Option<String>,
    pub priority: Priority,
    pub labels: Vec<String>,
    pub created_by: String,
}

/// Files an open, unassigned issue bead in an existing rig and records `bead_created`; the
/// reconciler assigns it.
pub fn create_issue(ctx: &Ctx<'_>, issue: &NewIssue) -> Result<Bead> {
    if issue.title.trim().is_empty() {
        return Err(DomainError::invalid("title", "must not be empty"));
    }
    if rigs::get(ctx.sql, &issue.rig_id)?.is_none() {
        return Err(DomainError::not_found("rig", &issue.rig_id));
    }
    let mut new = NewBead::new(&ctx.ids.new_id(), BeadType::Issue, &issue.title);
    new.body = issue.body.clone();
    new.rig_id = Some(issue.rig_id.clone());
    new.priority = issue.priority;
    new.labels = issue.labels.clone();
    new.created_by = Some(issue.created_by.clone());
    let bead = create(ctx, &new)?;
    ctx.record(
        &EventKind::BeadCreated(BeadCreated {
            bead_type: BeadType::Issue.as_str().into(),
            rig_id: bead.rig_id.clone(),
            convoy_id: None,
            has_blockers: Some(false),
        }),
        &Subject::bead(&bead.bead_id),
    )?;
    Ok(bead)
}

/// The status helper. Moves a bead to `to` on behalf of `actor`:
/// - a `closed` or `failed` bead never changes (logged, returned unchanged);
/// - `to` equal to the current status changes nothing;
/// - otherwise the status is written (with `closed_at` when closing), a `status_changed` event
///   is logged (with `failure_reason` in its metadata when failing), and on a terminal status
///   the progress of every convoy the bead belongs to is recomputed.
pub fn set_status(
    ctx: &Ctx<'_>,
    bead_id: &str,
    to: BeadStatus,
    actor: &str,
    failure: Option<&FailureReason>,
) -> Result<Bead> {
    set_status_of(ctx, get(ctx, bead_id)?, to, actor, failure)
}

/// [`set_status`] of the bead as just read.
pub fn set_status_of(
    ctx: &Ctx<'_>,
    bead: Bead,
    to: BeadStatus,
    actor: &str,
    failure: Option<&FailureReason>,
) -> Result<Bead> {
    let bead_id = bead.bead_id.as_str();
    if bead.status.is_terminal() {
        if bead.status != to {
            crate::log::warn(
                "terminal_bead_not_changed",
                &[
                    ("bead_id", bead_id),
                    ("status", bead.status.as_str()),
                    ("refused", to.as_str()),
                    ("actor", actor),
                ],
            );
        }
        return Ok(bead);
    }
    if bead.status == to {
        return Ok(bead);
    }
    let closed_at = (to == BeadStatus::Closed).then(|| iso(ctx.now));
    store::set_status(ctx.sql, bead_id, to, closed_at.as_deref(), ctx.now)?;
    let mut changed = status_changed(bead_id, actor, bead.status, to);
    if let (BeadStatus::Failed, Some(reason)) = (to, failure) {
        changed
            .metadata
            .insert("failure_reason".into(), json!(reason));
    }
    log(ctx, &changed)?;
    if to.is_terminal() {
        convoys::recompute_progress(ctx, bead_id)?;
    }
    Ok(Bead {
        status: to,
        closed_at: closed_at.or(bead.closed_at),
        updated_at: iso(ctx.now),
        ..bead
    })
}

/// The `status_changed` history entry of a move from `from` to `to` by `actor`.
pub(crate) fn status_changed<'a>(
    bead_id: &'a str,
    actor: &'a str,
    from: BeadStatus,
    to: BeadStatus,
) -> NewEvent<'a> {
    NewEvent {
        bead_id,
        agent_id: Some(actor),
        event_type: event::STATUS_CHANGED,
        old_value: Some(from.as_str()),
        new_value: Some(to.as_str()),
        metadata: Map::new(),
    }
}

/// Sets the bead's assignee (an agent id, or `system`).
pub fn assign(ctx: &Ctx<'_>, bead_id: &str, assignee: &str) -> Result<Bead> {
    let bead = get(ctx, bead_id)?;
    store::set_assignee(ctx.sql, bead_id, Some(assignee), ctx.now)?;
    log(
        ctx,
        &NewEvent {
            bead_id,
            agent_id: Some(assignee),
            event_type: event::ASSIGNED,
            old_value: bead.assignee_agent_bead_id.as_deref(),
            new_value: Some(assignee),
            ..Default::default()
        },
    )?;
    Ok(Bead {
        assignee_agent_bead_id: Some(assignee.to_owned()),
        updated_at: iso(ctx.now),
        ..bead
    })
}

/// Clears the bead's assignee and unhooks every agent hooked to it (no split brain).
pub fn clear_assignee(ctx: &Ctx<'_>, bead_id: &str) -> Result<Bead> {
    let bead = get(ctx, bead_id)?;
    store::set_assignee(ctx.sql, bead_id, None, ctx.now)?;
    agents::unhook_all(ctx, bead_id)?;
    Ok(Bead {
        assignee_agent_bead_id: None,
        updated_at: iso(ctx.now),
        ..bead
    })
}

/// Merges `patch` into the bead's metadata (top-level keys; `null` removes a key) and touches
/// `updated_at`.
pub fn merge_metadata(ctx: &Ctx<'_>, bead_id: &str, patch: &Map<String, Json>) -> Result<Bead> {
    let bead = get(ctx, bead_id)?;
    let mut metadata = bead.metadata.clone();
    for (k, v) in patch {
        if v.is_null() {
            metadata.remove(k);
        } else {
            metadata.insert(k.clone(), v.clone());
        }
    }
    store::set_metadata(ctx.sql, bead_id, &metadata, ctx.now)?;
    Ok(Bead {
        metadata,
        updated_at: iso(ctx.now),
        ..bead
    })
}

/// Adds `bead_id -> depends_on`. Both beads must exist; a bead cannot depend on itself, a
/// `blocks` edge that closes a loop is a `Cycle`, and an existing edge of another kind between
/// the two is a `Conflict`. Adding an existing edge again changes nothing.
pub fn add_dependency(
    ctx: &Ctx<'_>,
    bead_id: &str,
    depends_on: &str,
    kind: DependencyType,
) -> Result<()> {
    get(ctx, bead_id)?;
    get(ctx, depends_on)?;
    if bead_id == depends_on {
        return Err(DomainError::Cycle(format!(
            "{bead_id} cannot depend on itself"
        )));
    }
    if let Some(existing) = dependencies::get(ctx.sql, bead_id, depends_on)? {
        if existing.dependency_type == kind {
            return Ok(());
        }
        return Err(DomainError::conflict(format!(
            "{bead_id} already depends on {depends_on} ({})",
            existing.dependency_type
        )));
    }
    if kind == DependencyType::Blocks && dependencies::blocks_path(ctx.sql, depends_on, bead_id)? {
        return Err(DomainError::Cycle(format!(
            "{depends_on} already waits on {bead_id}"
        )));
    }
    dependencies::insert(ctx.sql, bead_id, depends_on, kind)?;
    Ok(())
}

/// Cancels a bead through the API: records `bead_cancelled` first, then writes the status
/// directly (the event's application unhooks the agents). Terminal and agent beads refuse, and
/// so does failing a convoy: a convoy is never `failed` (invariant #5), and no rule could bring
/// it back, so it is cancelled as `closed`.
pub fn cancel(ctx: &Ctx<'_>, bead_id: &str, to: CancelStatus, actor: &str) -> Result<Bead> {
    let bead = get(ctx, bead_id)?;
    if bead.bead_type == BeadType::Agent {
        return Err(DomainError::conflict(format!(
            "{bead_id} is an agent bead; agents are not cancelled"
        )));
    }
    if bead.bead_type == BeadType::Convoy && to == CancelStatus::Failed {
        return Err(DomainError::conflict(format!(
            "{bead_id} is a convoy; a convoy is cancelled as closed, never failed"
        )));
    }
    if bead.status.is_terminal() {
        return Err(DomainError::conflict(format!(
            "bead {bead_id} is already {}",
            bead.status
        )));
    }
    ctx.record(
        &EventKind::BeadCancelled(BeadCancelled { cancel_status: to }),
        &Subject::bead(bead_id),
    )?;
    let (status, failure) = match to {
        CancelStatus::Closed => (BeadStatus::Closed, None),
        CancelStatus::Failed => (
            BeadStatus::Failed,
            Some(FailureReason::new(
                "cancelled",
                format!("cancelled by {actor}"),
                "user",
            )),
        ),
    };
    set_status(ctx, bead_id, status, actor, failure.as_ref())
}
