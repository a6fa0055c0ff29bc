//! Starting an agent (GASTOWN-DOMAIN.md 4.2): the bookkeeping before the start is sent, the
//! start payload (prompt, system prompt, branch, per-agent token), and what the answer means.
//!
//! Departures from the original, on purpose: the per-bead `last_dispatch_error` records why the
//! last attempt failed (NULL after a success), which is what the circuit breaker counts; and a
//! start the container refused puts the agent back to `idle` and a non-MR bead back to `open`
//! with its hook kept, so the dispatch backoff (2/2/5/10/30 min, max 5) governs the retry,
//! where the original left the agent `working` until the 90 s heartbeat rule noticed.

use super::container::StartAgent;
use crate::domain::error::DomainError;
use crate::domain::model::{
    Agent, AgentRole, AgentStatus, Bead, BeadStatus, BeadType, Review, Rig,
};
use crate::domain::{agents, beads, Ctx};
use crate::http::auth::agent_token;
use crate::params;
use crate::sql::id_list;
use crate::store::agents as agent_store;
use crate::store::beads as bead_store;
use crate::store::reviews as review_store;
use crate::store::town::Town;
use crate::time::iso;
use std::collections::HashMap;

/// One dispatch to prepare: the agent hooked to the bead, started on the rig.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted<'a> {
    pub agent_id: &'a str,
    pub bead_id: &'a str,
    pub rig_id: &'a str,
}

/// Counts the attempts and builds the start payloads of a tick's dispatches, just before the
/// starts are sent, together: the agents and the beads read in one statement each, the attempts
/// counted in one UPDATE per table. A dispatch whose agent, bead, rig or review is missing gets
/// that error and writes nothing; an SQL error fails them all (the caller's unit rolls back).
pub fn prepare_all(
    ctx: &Ctx<'_>,
    town: &Town,
    rigs: &[Rig],
    wanted: &[Wanted<'_>],
    signing_key: &str,
) -> Result<Vec<Result<StartAgent, DomainError>>, DomainError> {
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
    // What each dispatch starts from, or why it cannot start; nothing is written yet.
    let found: Vec<Result<Found<'_>, DomainError>> = wanted
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
            let review = if bead.bead_type == BeadType::MergeRequest {
                let review = review_store::get(ctx.sql, w.bead_id)?
                    .ok_or_else(|| DomainError::not_found("merge request", w.bead_id))?;
                Some(review)
            } else {
                None
            };
            Ok(Found {
                agent,
                bead,
                rig,
                review,
            })
        })
        .collect();
    let ready: Vec<&Wanted<'_>> = wanted
        .iter()
        .zip(&found)
        .filter_map(|(w, f)| f.is_ok().then_some(w))
        .collect();
    if !ready.is_empty() {
        let agent_ids: Vec<&str> = ready.iter().map(|w| w.agent_id).collect();
        let bead_ids: Vec<&str> = ready.iter().map(|w| w.bead_id).collect();
        // Working, with the attempt counted.
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
    }
    wanted
        .iter()
        .zip(found)
        .map(|(w, found)| {
            let f = match found {
                Ok(f) => f,
                Err(e) => return Ok(Err(e)),
            };
            // A bead a failed start reopened goes back in progress, with its history entry.
            let bead = f.bead.clone();
            let bead = if !bead.status.is_terminal() && bead.status != BeadStatus::InProgress {
                beads::set_status_of(ctx, bead, BeadStatus::InProgress, w.agent_id, None)?
            } else {
                bead
            };
            let review = f.review.as_ref();
            Ok(Ok(payload(
                town,
                f.agent,
                &bead,
                f.rig,
                review,
                signing_key,
            )))
        })
        .collect()
}

/// What a dispatch starts from.
struct Found<'a> {
    agent: &'a Agent,
    bead: &'a Bead,
    rig: &'a Rig,
    /// The merge request's review, for a refinery's start.
    review: Option<Review>,
}

/// The start payload: prompt, system prompt, branch and the agent's callback token.
fn payload(
    town: &Town,
    agent: &Agent,
    bead: &Bead,
    rig: &Rig,
    review: Option<&Review>,
    signing_key: &str,
) -> StartAgent {
    let (branch, default_branch) = match review {
        Some(r) => (r.branch.clone(), r.target_branch.clone()),
        // A bead of a review-then-land convoy starts from the convoy's feature branch.
        None => (
            branch_name(&agent.name, &bead.bead_id),
            bead.meta_str("feature_branch")
                .map_or_else(|| rig.default_branch.clone(), str::to_owned),
        ),
    };
    let system_prompt = match (review, agent.role) {
        (Some(r), AgentRole::Refinery) => Some(super::prompts::refinery(agent, rig, town, bead, r)),
        (None, AgentRole::Polecat) => super::prompts::polecat_pr(rig, town, bead),
        _ => None,
    };
    StartAgent {
        agent_id: agent.agent_id.clone(),
        rig_id: rig.rig_id.clone(),
        town_id: town.town_id.clone(),
        role: agent.role,
        name: agent.name.clone(),
        identity: agent.identity.clone(),
        prompt: super::prompts::task(bead, agent.checkpoint.as_deref()),
        system_prompt,
        git_url: rig.git_url.clone(),
        branch,
        default_branch,
        agent_token: agent_token(signing_key, &town.town_id, &agent.agent_id),
    }
}

/// `gt/<slug(name)>/<beadId[0:8]>`.
pub fn branch_name(agent_name: &str, bead_id: &str) -> String {
    let slug: String = agent_name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let short: String = bead_id.chars().take(8).collect();
    format!("gt/{slug}/{short}")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_names_slug_the_agent_and_cut_the_bead_id() {
        assert_eq!(branch_name("Toast", "abcdef0123456"), "gt/toast/abcdef01");
        assert_eq!(branch_name("Polecat 21!", "b1"), "gt/polecat-21/b1");
    }
}
