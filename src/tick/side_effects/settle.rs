//! What each outcome means for the town, in one `match` over every outcome: each that writes is
//! settled in its own atomic unit (the starts the container accepted together, in one), its
//! failure logged, and the agents' analytics points written.
//!
//! Outcomes are truthful (the original counted almost everything as succeeded, 4.5): an effect
//! succeeded only when the remote accepted it.

use super::call::{Heard, Outcome};
use super::calls::Ran;
use super::pull_requests::{settle_merge, settle_poll, MergeAttempt};
use crate::domain::{agents, dispatch, mail, nudges, Ctx, DomainError};
use crate::effects::container::StartAgent;
use crate::effects::credentials::config_digest;
use crate::effects::remotes::Tally;
use crate::effects::CallError;
use crate::metrics::layout::blob;
use crate::metrics::writer::Analytics;
use crate::sql::atomically;
use crate::store::{town, upkeep};
use crate::vocabulary::actions::MayorNotice;
use crate::vocabulary::model::AgentStatus;

/// Settles every outcome of `ran`; `header` is the `X-Town-Config` the starts carried.
pub fn settle(ctx: &Ctx<'_>, analytics: &Analytics<'_>, ran: Ran, header: &str) -> Tally {
    if let Some(token) = &ran.token {
        if token.is_ok() {
            if let Err(e) = upkeep::token_pushed(ctx.sql, ctx.now) {
                crate::log::error("container_token_unrecorded", &[("error", &e.to_string())]);
            }
        }
    }
    let mut tally = Tally {
        attempted: ran.outcomes.len() as u64,
        ..Tally::default()
    };
    let mut accepted: Vec<(String, String, Box<StartAgent>)> = Vec::new();
    for outcome in ran.outcomes {
        match outcome.error() {
            None => tally.succeeded += 1,
            Some(reason) => {
                tally.failed += 1;
                let stage = if outcome.was_prepared() {
                    "call"
                } else {
                    "prepare"
                };
                crate::log::warn(
                    "side_effect_failed",
                    &[
                        ("type", outcome.type_name()),
                        ("stage", stage),
                        ("error", &reason),
                    ],
                );
            }
        }
        // Each outcome that writes is settled in a unit of its own; the accepted starts
        // together, after the loop.
        match outcome {
            Outcome::Start {
                agent_id,
                bead_id,
                start: Some(start),
                result: Ok(()),
            } => accepted.push((agent_id, bead_id, start)),
            Outcome::Start {
                agent_id,
                bead_id,
                start,
                result: Err(e),
            } => in_unit(ctx, &mut || {
                let reason = e.to_string();
                dispatch::failed(ctx, &agent_id, &bead_id, &reason)?;
                if let Some(start) = &start {
                    let mut p = analytics.internal("agent.dispatch_failed");
                    p.set_blob(blob::AGENT_ID, &agent_id)
                        .set_blob(blob::BEAD_ID, &bead_id)
                        .set_blob(blob::RIG_ID, &start.rig_id)
                        .set_blob(blob::ROLE, start.role.as_str())
                        .set_blob(blob::LABEL, &reason);
                    analytics.write(p);
                }
                Ok(())
            }),
            // A start with no body is never sent, so it never succeeds.
            Outcome::Start {
                start: None,
                result: Ok(()),
                ..
            } => {}
            Outcome::Stop {
                force: true,
                result: Ok(()),
                ..
            } => {}
            Outcome::Stop {
                agent_id,
                force: false,
                result: Ok(()),
            } => in_unit(ctx, &mut || agents::stop_confirmed(ctx, &agent_id)),
            Outcome::Stop {
                agent_id,
                force: true,
                result: Err(e),
            } => in_unit(ctx, &mut || {
                if agents::force_stop_unconfirmed(ctx, &agent_id)? {
                    crate::log::warn(
                        "gupp_stop_unconfirmed",
                        &[("agent_id", &agent_id), ("error", &e.to_string())],
                    );
                }
                Ok(())
            }),
            // R7 stops the refinery again while it stays hooked to a finished review.
            Outcome::Stop {
                force: false,
                result: Err(_),
                ..
            } => {}
            Outcome::Poll {
                bead_id,
                pr_url,
                wanted,
                polled,
            } => in_unit(ctx, &mut || {
                settle_poll(ctx, &bead_id, &pr_url, wanted, &polled)
            }),
            // Not attempted: the merge is still pending, and the next tick's reconcile asks for
            // it again.
            Outcome::Merge {
                attempt: MergeAttempt::Failed(CallError::NotSent(_)),
                ..
            } => {}
            Outcome::Merge {
                bead_id,
                pr_url,
                attempt,
            } => in_unit(ctx, &mut || settle_merge(ctx, &bead_id, &pr_url, &attempt)),
            Outcome::Nudge {
                agent_id,
                nudge_id,
                result: Ok(()),
            } => in_unit(ctx, &mut || {
                nudges::mark_delivered(ctx, &agent_id, &nudge_id)?;
                Ok(())
            }),
            Outcome::Mail {
                agent_id,
                mail_ids,
                result: Ok(()),
            } => in_unit(ctx, &mut || {
                mail::pushed(ctx, &agent_id, &mail_ids)?;
                Ok(())
            }),
            // Not delivered: the nudge expires, the mail is pushed again by a later tick.
            Outcome::Nudge { result: Err(_), .. } | Outcome::Mail { result: Err(_), .. } => {}
            Outcome::Mayor {
                mayor_id: Some(mayor_id),
                heard,
                result: Ok(started),
            } => in_unit(ctx, &mut || {
                if started {
                    agents::set_status(ctx, &mayor_id, AgentStatus::Working)?;
                }
                match &heard {
                    Heard::Notice(notice) => record_notice(ctx, *notice)?,
                    Heard::Mail(mail_ids) => {
                        mail::pushed(ctx, &mayor_id, mail_ids)?;
                    }
                }
                Ok(())
            }),
            // Not heard: the reconciler (a notice) or the housekeeping (mail) asks again.
            Outcome::Mayor { result: Err(_), .. } => {}
            // No mayor means no call was made, so it was never heard.
            Outcome::Mayor {
                mayor_id: None,
                result: Ok(_),
                ..
            } => {}
        }
    }
    if !accepted.is_empty() {
        // The starts carried the town config: the container has it.
        if let Err(e) = upkeep::config_accepted(ctx.sql, &config_digest(header)) {
            crate::log::error("container_config_unrecorded", &[("error", &e.to_string())]);
        }
    }
    settle_started(ctx, analytics, &accepted);
    tally
}

/// Settles one outcome's writes in an atomic unit; a failure is logged, and rolls back only it.
/// (Not generic: one copy of the unit's code in the Wasm for every arm.)
fn in_unit(ctx: &Ctx<'_>, settle: &mut dyn FnMut() -> Result<(), DomainError>) {
    if let Err(e) = atomically(ctx.sql, settle) {
        crate::log::error("side_effect_settle_failed", &[("error", &e.to_string())]);
    }
}

/// The starts the container accepted, settled in one unit: a busy tick accepts hundreds, and
/// settling each alone cost two statements and a transaction apiece.
fn settle_started(
    ctx: &Ctx<'_>,
    analytics: &Analytics<'_>,
    starts: &[(String, String, Box<StartAgent>)],
) {
    if starts.is_empty() {
        return;
    }
    let ids: Vec<(&str, &str)> = starts
        .iter()
        .map(|(a, b, _)| (a.as_str(), b.as_str()))
        .collect();
    if let Err(e) = atomically(ctx.sql, || dispatch::started(ctx, &ids)) {
        crate::log::error("side_effect_settle_failed", &[("error", &e.to_string())]);
        return;
    }
    for (agent_id, bead_id, start) in starts {
        let mut p = analytics.internal("agent.spawned");
        p.set_blob(blob::AGENT_ID, agent_id)
            .set_blob(blob::BEAD_ID, bead_id)
            .set_blob(blob::RIG_ID, &start.rig_id)
            .set_blob(blob::ROLE, start.role.as_str());
        analytics.write(p);
    }
}

/// The mayor heard the breaker notice: record it on the town, so it is sent once per opening
/// (and retried by the next tick's reconcile while it has not been heard).
fn record_notice(ctx: &Ctx<'_>, notice: MayorNotice) -> Result<(), DomainError> {
    let at = match notice {
        MayorNotice::BreakerOpened => Some(crate::vocabulary::time::iso(ctx.now)),
        MayorNotice::BreakerClosed => None,
    };
    town::set_breaker_notified(ctx.sql, at.as_deref())?;
    Ok(())
}
