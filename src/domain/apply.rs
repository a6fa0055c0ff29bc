//! How a recorded event changes the town (GASTOWN-DOMAIN.md 2.2).
//!
//! The tick calls [`apply_event`] inside an atomic unit: an `Err` rolls back the event's writes
//! and the tick retries it, poisoning it after three failures. An unreadable payload, an
//! `agent_done` whose agent no longer exists and storage errors fail; an event about another
//! missing entity is logged and counts as applied, since retrying cannot make it appear.

use super::reviews::{self, Outcome};
use super::{agents, beads, convoys, done, exits, pr_feedback, Ctx, DomainError, SYSTEM};
use crate::vocabulary::events::{CancelStatus, EventKind, RecordedEvent};
use crate::vocabulary::model::{BeadStatus, FailureReason};
use std::fmt;

/// Why an event could not be applied (the tick retries it, then poisons it).
#[derive(Debug, Clone, PartialEq)]
pub enum ApplyError {
    /// The stored payload no longer parses as its type.
    BadPayload(String),
    /// The domain refused or storage failed.
    Domain(DomainError),
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::BadPayload(m) => write!(f, "bad payload: {m}"),
            ApplyError::Domain(e) => e.fmt(f),
        }
    }
}

impl From<DomainError> for ApplyError {
    fn from(e: DomainError) -> Self {
        ApplyError::Domain(e)
    }
}

impl From<crate::sql::SqlError> for ApplyError {
    fn from(e: crate::sql::SqlError) -> Self {
        ApplyError::Domain(e.into())
    }
}

/// Applies one event.
pub fn apply_event(ctx: &Ctx<'_>, event: &RecordedEvent) -> Result<(), ApplyError> {
    let kind = event
        .kind
        .as_ref()
        .map_err(|e| ApplyError::BadPayload(e.to_string()))?;
    let agent = event.agent_id.as_deref();
    let bead = event.bead_id.as_deref();
    match kind {
        EventKind::AgentDone(d) => match agent {
            Some(a) => done::apply(ctx, a, d)?,
            None => skip(event, "no agent_id"),
        },
        EventKind::AgentCompleted(c) => match agent {
            Some(a) => exits::completed(ctx, a, c)?,
            None => skip(event, "no agent_id"),
        },
        EventKind::PrStatusChanged(p) => match bead {
            Some(mr) => {
                let outcome = match p.pr_state.as_str() {
                    "merged" => Some((Outcome::Merged, "PR merged (detected by polling)")),
                    "closed" => Some((Outcome::Failed, "PR closed without merge")),
                    _ => None,
                };
                if let Some((outcome, message)) = outcome {
                    let result = reviews::complete(ctx, mr, outcome, Some(message), None);
                    tolerate_missing(event, result.map(drop))?;
                }
            }
            None => skip(event, "no bead_id"),
        },
        EventKind::BeadCreated(_)
        | EventKind::ContainerEviction(_)
        | EventKind::NudgeTimeout(_) => {}
        EventKind::BeadCancelled(c) => match bead {
            Some(b) => {
                let (to, failure) = match c.cancel_status {
                    CancelStatus::Closed => (BeadStatus::Closed, None),
                    CancelStatus::Failed => (
                        BeadStatus::Failed,
                        Some(FailureReason::new("cancelled", "cancelled", "user")),
                    ),
                };
                let result = beads::set_status(ctx, b, to, SYSTEM, failure.as_ref())
                    .and_then(|_| agents::unhook_all(ctx, b));
                tolerate_missing(event, result)?;
            }
            None => skip(event, "no bead_id"),
        },
        EventKind::ConvoyStarted(s) => {
            tolerate_missing(event, convoys::unstage(ctx, &s.convoy_id))?;
        }
        EventKind::ContainerStatus(s) => match agent {
            Some(a) => exits::container_status(ctx, a, s)?,
            None => skip(event, "no agent_id"),
        },
        EventKind::PrFeedbackDetected(f) => {
            pr_feedback::detected(ctx, bead.unwrap_or(&f.mr_bead_id), f)?;
        }
        EventKind::PrAutoMerge(m) => {
            pr_feedback::auto_merge(ctx, bead.unwrap_or(&m.mr_bead_id))?;
        }
    }
    Ok(())
}

fn skip(event: &RecordedEvent, why: &str) {
    crate::log::warn(
        "event_skipped",
        &[("event_id", &event.event_id), ("reason", why)],
    );
}

/// A missing entity is logged and the event counts as applied.
fn tolerate_missing(
    event: &RecordedEvent,
    result: super::error::Result<()>,
) -> Result<(), ApplyError> {
    match result {
        Err(e @ DomainError::NotFound { .. }) => {
            skip(event, &e.to_string());
            Ok(())
        }
        other => Ok(other?),
    }
}
