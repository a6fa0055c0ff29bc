//! The bookkeeping of starting an agent (GASTOWN-DOMAIN.md 4.2): what a dispatch starts from,
//! its attempt counted just before the start is sent, and what the container's answer leaves.
//!
//! Departures from the original, on purpose: the per-bead `last_dispatch_error` records why the
//! last attempt failed (NULL after a success), which is what the circuit breaker counts; and a
//! start the container refused puts the agent back to `idle` and a non-MR bead back to `open`
//! with its hook kept, so the dispatch backoff (2/2/5/10/30 min, max 5) governs the retry,
//! where the original left the agent `working` until the 90 s heartbeat rule noticed.

use super::error::DomainError;
use super::{agents, beads, Ctx};
use crate::params;
use crate::sql::id_list;
use crate::store::agents as agent_store;
use crate::store::beads as bead_store;
use crate::store::reviews as review_store;
use crate::vocabulary::model::{Agent, AgentStatus, Bead, BeadStatus, BeadType, Review, Rig};
use crate::vocabulary::time::iso;
use std::collections::HashMap;

/// Dispatch attempts after which a bead is failed instead of dispatched again.
pub const MAX_DISPATCH_ATTEMPTS: i64 = 5;

/// One dispatch: the agent hooked to the bead, started on the rig.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted<'a> {
    pub agent_id: &'a str,
    pub bead_id: &'a str,
    pub rig_id: &'a str,
}

/// What a dispatch starts from: the rows its start body is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub agent: Agent,
    pub bead: Bead,
    pub rig: Rig,
    /// The merge request's review, for a refinery's start.
    pub review: Option<Review>,
}

/// Reads what each of `wanted` starts from, or why it cannot start (its agent, bead, rig or
/// review is missing), in order; the agents and the beads in one statement each. Writes nothing.
pub fn find(
    ctx: &Ctx<'_>,
    rigs: &[Rig],
    wanted: &[Wanted<'_>],
) -> Result<Vec<Result<Found, DomainError>>, DomainError> {
    let agent_ids: Vec<&str> = wanted.iter().map(|w| w.agent_id).collect();
    let bead_ids: Vec<&str> = wanted.iter().map(|w| w.bead_id).collect();
    let agents: HashMap<String, Agent> = agent_store::by_ids(ctx.sql, &agent_ids)?
        .into_iter()
        .map(|a| (a.agent_id.clone(), a))
        .collect();
    let beads: HashMap<String, Bead> = bead_store::by_ids(ctx.sql, &bead_ids)?
        .into_iter()
        .map(|b| (b.bead_id.clone(), b))
        .collect();
    Ok(wanted
        .iter()
        .map(|w| {
            let agent = agents
                .get(w.agent_id)
                .ok_or_else(|| DomainError::not_found("agent", w.agent_id))?;
            let bead = beads
                .get(w.bead_id)
                .ok_or_else(|| DomainError::not_found("bead", w.bead_id))?;
            let rig = rigs
                .iter()
                .find(|r| r.rig_id == w.rig_id)
                .ok_or_else(|| DomainError::not_found("rig", w.rig_id))?;
            let review = match bead.bead_type {
                BeadType::MergeRequest => Some(
                    review_store::get(ctx.sql, w.bead_id)?
                        .ok_or_else(|| DomainError::not_found("merge request", w.bead_id))?,
                ),
                _ => None,
            };
            Ok(Found {
                agent: agent.clone(),
                bead: bead.clone(),
                rig: rig.clone(),
                review,
            })
        })
        .collect())
}

/// The starts about to be sent: each agent working with its attempt counted, each bead's
/// attempt counted (one UPDATE per table for them all), and a bead a failed start reopened
/// back in progress, with its history entry. Returns `found` with the beads as they now are.
pub fn begin(ctx: &Ctx<'_>, found: Vec<Found>) -> Result<Vec<Found>, DomainError> {
    if found.is_empty() {
        return Ok(found);
    }
    let agent_ids: Vec<&str> = found.iter().map(|f| f.agent.agent_id.as_str()).collect();
    let bead_ids: Vec<&str> = found.iter().map(|f| f.bead.bead_id.as_str()).collect();
    ctx.sql.execute(
        "UPDATE agent_metadata SET status = 'working', stalled_at = NULL,
                dispatch_attempts = dispatch_attempts + 1, last_activity_at = ?
         WHERE bead_id IN (SELECT value FROM json_each(?))",
        &[iso(ctx.now).into(), id_list(&agent_ids)],
    )?;
    ctx.sql.execute(
        "UPDATE beads SET dispatch_attempts = dispatch_attempts + 1,
                last_dispatch_attempt_at = ?
         WHERE bead_id IN (SELECT value FROM json_each(?))",
        &[iso(ctx.now).into(), id_list(&bead_ids)],
    )?;
    found
        .into_iter()
        .map(|mut f| {
            if !f.bead.status.is_terminal() && f.bead.status != BeadStatus::InProgress {
                f.bead = beads::set_status_of(
                    ctx,
                    f.bead,
                    BeadStatus::InProgress,
                    &f.agent.agent_id,
                    None,
                )?;
            }
            Ok(f)
        })
        .collect()
}

/// The container accepted these starts (agent, bead): the agents' attempts reset (refineries
/// keep their count) and the beads' last errors cleared, one statement per table for them all.
/// A bead with no error is not written (most starts are first attempts).
pub fn started(ctx: &Ctx<'_>, starts: &[(&str, &str)]) -> Result<(), DomainError> {
    if starts.is_empty() {
        return Ok(());
    }
    let (agents, beads): (Vec<&str>, Vec<&str>) = starts.iter().copied().unzip();
    ctx.sql.execute(
        "UPDATE agent_metadata SET dispatch_attempts = 0
         WHERE role <> 'refinery' AND bead_id IN (SELECT value FROM json_each(?))",
        &[id_list(&agents)],
    )?;
    ctx.sql.execute(
        "UPDATE beads SET last_dispatch_error = NULL
         WHERE last_dispatch_error IS NOT NULL AND bead_id IN (SELECT value FROM json_each(?))",
        &[id_list(&beads)],
    )?;
    Ok(())
}

/// The start failed: record why on the bead, put the agent back to idle (hook kept) and a
/// non-MR bead back to open, so the reconciler retries after the backoff.
pub fn failed(
    ctx: &Ctx<'_>,
    agent_id: &str,
    bead_id: &str,
    reason: &str,
) -> Result<(), DomainError> {
    ctx.sql.execute(
        "UPDATE beads SET last_dispatch_error = ? WHERE bead_id = ?",
        &params![reason, bead_id],
    )?;
    if let Ok(agent) = agents::get(ctx, agent_id) {
        if agent.status == AgentStatus::Working {
            agents::set_status_of(ctx, agent, AgentStatus::Idle)?;
        }
    }
    let bead: Bead = beads::get(ctx, bead_id)?;
    if bead.bead_type != BeadType::MergeRequest && bead.status == BeadStatus::InProgress {
        beads::set_status_of(ctx, bead, BeadStatus::Open, agent_id, None)?;
    }
    Ok(())
}
