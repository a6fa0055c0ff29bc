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
use crate::domain::model::{AgentRole, AgentStatus, Bead, BeadStatus, BeadType, Rig};
use crate::domain::{agents, beads, reviews, Ctx};
use crate::http::auth::agent_token;
use crate::params;
use crate::store::town::Town;
use crate::time::iso;

/// Counts the attempt and builds the start payload. Runs just before the start is sent.
pub fn prepare(
    ctx: &Ctx<'_>,
    town: &Town,
    rigs: &[Rig],
    agent_id: &str,
    bead_id: &str,
    rig_id: &str,
    signing_key: &str,
) -> Result<StartAgent, DomainError> {
    let agent = agents::get(ctx, agent_id)?;
    let bead = beads::get(ctx, bead_id)?;
    let rig = rigs
        .iter()
        .find(|r| r.rig_id == rig_id)
        .ok_or_else(|| DomainError::not_found("rig", rig_id))?;
    let bead = if !bead.status.is_terminal() && bead.status != BeadStatus::InProgress {
        beads::set_status_of(ctx, bead, BeadStatus::InProgress, agent_id, None)?
    } else {
        bead
    };
    // Working, with the attempt counted, in one statement.
    ctx.sql.execute(
        "UPDATE agent_metadata SET status = 'working', stalled_at = NULL,
                dispatch_attempts = dispatch_attempts + 1, last_activity_at = ?
         WHERE bead_id = ?",
        &params![iso(ctx.now), agent_id],
    )?;
    ctx.sql.execute(
        "UPDATE beads SET dispatch_attempts = dispatch_attempts + 1, last_dispatch_attempt_at = ?
         WHERE bead_id = ?",
        &params![iso(ctx.now), bead_id],
    )?;
    let review = if bead.bead_type == BeadType::MergeRequest {
        Some(reviews::get(ctx, bead_id)?.1)
    } else {
        None
    };
    let (branch, default_branch) = match &review {
        Some(r) => (r.branch.clone(), r.target_branch.clone()),
        // A bead of a review-then-land convoy starts from the convoy's feature branch.
        None => (
            branch_name(&agent.name, bead_id),
            bead.meta_str("feature_branch")
                .map_or_else(|| rig.default_branch.clone(), str::to_owned),
        ),
    };
    let system_prompt = match (&review, agent.role) {
        (Some(r), AgentRole::Refinery) => {
            Some(super::prompts::refinery(&agent, rig, town, &bead, r))
        }
        (None, AgentRole::Polecat) => super::prompts::polecat_pr(rig, town, &bead),
        _ => None,
    };
    Ok(StartAgent {
        agent_id: agent.agent_id.clone(),
        rig_id: rig.rig_id.clone(),
        town_id: town.town_id.clone(),
        role: agent.role,
        name: agent.name.clone(),
        identity: agent.identity.clone(),
        prompt: super::prompts::task(&bead, agent.checkpoint.as_deref()),
        system_prompt,
        git_url: rig.git_url.clone(),
        branch,
        default_branch,
        agent_token: agent_token(signing_key, &town.town_id, &agent.agent_id),
    })
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
pub fn started(ctx: &Ctx<'_>, starts: &[(&str, &str)]) -> Result<(), DomainError> {
    if starts.is_empty() {
        return Ok(());
    }
    let (agents, beads): (Vec<&str>, Vec<&str>) = starts.iter().copied().unzip();
    let json = |ids: &[&str]| serde_json::to_string(ids).expect("ids serialize");
    ctx.sql.execute(
        "UPDATE agent_metadata SET dispatch_attempts = 0
         WHERE role <> 'refinery' AND bead_id IN (SELECT value FROM json_each(?))",
        &params![json(&agents)],
    )?;
    ctx.sql.execute(
        "UPDATE beads SET last_dispatch_error = NULL
         WHERE bead_id IN (SELECT value FROM json_each(?))",
        &params![json(&beads)],
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
