//! Starting an agent (GASTOWN-DOMAIN.md 4.2): the bookkeeping before the start is sent, the
//! start body as the original sends it (UPSTREAM-WIRE.md section 1: prompt, system prompt,
//! model, branches, environment and tokens), and what the answer means.
//!
//! Departures from the original, on purpose: the per-bead `last_dispatch_error` records why the
//! last attempt failed (NULL after a success), which is what the circuit breaker counts; and a
//! start the container refused puts the agent back to `idle` and a non-MR bead back to `open`
//! with its hook kept, so the dispatch backoff (2/2/5/10/30 min, max 5) governs the retry,
//! where the original left the agent `working` until the 90 s heartbeat rule noticed.

use super::container::{RigEntry, StartAgent, StartRole};
use super::credentials::{model, small_model, Credentials};
use crate::domain::done::PATROL;
use crate::domain::error::DomainError;
use crate::domain::{agents, beads, Ctx};
use crate::params;
use crate::sql::id_list;
use crate::store::agents as agent_store;
use crate::store::beads as bead_store;
use crate::store::reviews as review_store;
use crate::vocabulary::model::{
    labels, Agent, AgentRole, AgentStatus, Bead, BeadStatus, BeadType, Review, Rig,
};
use crate::vocabulary::time::iso;
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
    creds: &Credentials<'_>,
    rigs: &[Rig],
    wanted: &[Wanted<'_>],
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
            let role = start_role(agent.role).ok_or_else(|| {
                DomainError::conflict(format!(
                    "{} is a {} agent, a role the container does not start",
                    agent.agent_id, agent.role
                ))
            })?;
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
                role,
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
            Ok(Ok(payload(creds, &f, &bead)))
        })
        .collect()
}

/// What a dispatch starts from.
struct Found<'a> {
    agent: &'a Agent,
    role: StartRole,
    bead: &'a Bead,
    rig: &'a Rig,
    /// The merge request's review, for a refinery's start.
    review: Option<Review>,
}

/// The container's name for an agent's role; `None` for a role it does not start (`witness`).
fn start_role(role: AgentRole) -> Option<StartRole> {
    match role {
        AgentRole::Polecat => Some(StartRole::Polecat),
        AgentRole::Refinery => Some(StartRole::Refinery),
        AgentRole::Mayor => Some(StartRole::Mayor),
        AgentRole::Witness => None,
    }
}

/// The start body of a rig agent on `bead` (its current row). Branches as the original names
/// them: `gt/<slug(name)>/<bead8>` (a refinery's too: the branch under review is in its system
/// prompt); a convoy bead's beside its feature branch, started from it; the clone is always
/// of the rig's default branch. Patrol's triage batch goes out as a lightweight polecat.
fn payload(creds: &Credentials<'_>, f: &Found<'_>, bead: &Bead) -> StartAgent {
    let (town, agent, rig) = (creds.town(), f.agent, f.rig);
    let feature = f
        .review
        .is_none()
        .then(|| bead.meta_str("feature_branch"))
        .flatten();
    let triage = bead.has_label(labels::TRIAGE) && bead.created_by.as_deref() == Some(PATROL);
    let system_prompt = match (&f.review, f.role) {
        (Some(r), StartRole::Refinery) => Some(super::prompts::refinery(agent, rig, town, bead, r)),
        (None, StartRole::Polecat) if triage => Some(super::prompts::triage(agent, town)),
        (None, StartRole::Polecat) => super::prompts::polecat_pr(rig, town, bead),
        _ => None,
    };
    StartAgent {
        agent_id: agent.agent_id.clone(),
        rig_id: rig.rig_id.clone(),
        town_id: town.town_id.clone(),
        role: f.role,
        name: agent.name.clone(),
        identity: agent.identity.clone(),
        prompt: super::prompts::task(bead, agent.checkpoint.as_deref()),
        model: model(&town.config, f.role),
        small_model: small_model(&town.config),
        system_prompt,
        git_url: rig.git_url.clone(),
        branch: match feature {
            Some(feature) => convoy_branch_name(feature, &agent.name, &bead.bead_id),
            None => branch_name(&agent.name, &bead.bead_id),
        },
        default_branch: rig.default_branch.clone(),
        env_vars: creds.env_vars(&agent.agent_id, &rig.rig_id),
        start_point: feature.map(|b| format!("origin/{b}")),
        lightweight: triage.then_some(true),
        organization_id: town.config.organization_id.clone(),
        rigs: None,
    }
}

/// The mayor's start with `message` as its prompt: rig `mayor-<town>`, branch `gt/mayor`, the
/// first rig's repository (or none), and every rig of the town.
pub fn mayor_start(
    creds: &Credentials<'_>,
    mayor: &Agent,
    rigs: &[Rig],
    message: &str,
) -> StartAgent {
    let town = creds.town();
    let rig_id = format!("mayor-{}", town.town_id);
    let first = rigs.first();
    StartAgent {
        agent_id: mayor.agent_id.clone(),
        env_vars: creds.env_vars(&mayor.agent_id, &rig_id),
        rig_id,
        town_id: town.town_id.clone(),
        role: StartRole::Mayor,
        name: mayor.name.clone(),
        identity: mayor.identity.clone(),
        prompt: message.to_owned(),
        model: model(&town.config, StartRole::Mayor),
        small_model: small_model(&town.config),
        system_prompt: None,
        git_url: first.map(|r| r.git_url.clone()).unwrap_or_default(),
        branch: "gt/mayor".to_owned(),
        default_branch: first.map_or_else(|| "main".to_owned(), |r| r.default_branch.clone()),
        start_point: None,
        lightweight: None,
        organization_id: town.config.organization_id.clone(),
        rigs: Some(
            rigs.iter()
                .map(|r| RigEntry {
                    rig_id: r.rig_id.clone(),
                    git_url: r.git_url.clone(),
                    default_branch: r.default_branch.clone(),
                })
                .collect(),
        ),
    }
}

/// The slug of an agent's name in its branch, as the original makes it: lower-cased, every
/// character outside `[a-z0-9-]` a `-`, runs of `-` collapsed (ends are kept).
fn slug(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.to_lowercase().chars() {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
            c
        } else {
            '-'
        };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    out
}

/// The first 8 characters of a bead id.
fn short(bead_id: &str) -> String {
    bead_id.chars().take(8).collect()
}

/// A convoy bead's branch: beside the feature branch's `/head`, under the same prefix
/// (`convoy/<c>/<id>/gt/<slug>/<bead8>`), so neither ref blocks the other.
pub fn convoy_branch_name(feature_branch: &str, agent_name: &str, bead_id: &str) -> String {
    let prefix = feature_branch
        .strip_suffix("/head")
        .unwrap_or(feature_branch);
    format!("{prefix}/gt/{}/{}", slug(agent_name), short(bead_id))
}

/// `gt/<slug(name)>/<beadId[0:8]>`.
pub fn branch_name(agent_name: &str, bead_id: &str) -> String {
    format!("gt/{}/{}", slug(agent_name), short(bead_id))
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
        // The original keeps a trailing `-` and collapses runs, the name's own `-` included.
        assert_eq!(branch_name("Polecat 21!", "b1"), "gt/polecat-21-/b1");
        assert_eq!(branch_name("--A  b__c--", "b1"), "gt/-a-b-c-/b1");
        assert_eq!(branch_name("Zoë", "b1"), "gt/zo-/b1");
    }

    #[test]
    fn convoy_branches_sit_beside_the_feature_head() {
        assert_eq!(
            convoy_branch_name("convoy/login/c0ffee12/head", "Toast", "abcdef0123"),
            "convoy/login/c0ffee12/gt/toast/abcdef01"
        );
        assert_eq!(
            convoy_branch_name("feature/x", "Toast", "b1"),
            "feature/x/gt/toast/b1"
        );
    }
}
