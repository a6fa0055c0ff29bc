//! The start body of an agent as the original sends it (UPSTREAM-WIRE.md section 1: prompt,
//! system prompt, model, branches, environment and tokens), made from what its dispatch found.

use super::container::{RigEntry, StartAgent, StartRole};
use super::credentials::{model, small_model, Credentials};
use super::prompts;
use crate::domain::dispatch::Found;
use crate::domain::done::PATROL;
use crate::vocabulary::model::{labels, Agent, AgentRole, Rig};

/// The container's name for an agent's role; `None` for a role it does not start (`witness`).
pub fn role(role: AgentRole) -> Option<StartRole> {
    match role {
        AgentRole::Polecat => Some(StartRole::Polecat),
        AgentRole::Refinery => Some(StartRole::Refinery),
        AgentRole::Mayor => Some(StartRole::Mayor),
        AgentRole::Witness => None,
    }
}

/// The start body of a rig agent in `role` on what its dispatch `found`. Branches as the
/// original names them: `gt/<slug(name)>/<bead8>` (a refinery's too: the branch under review is
/// in its system prompt); a convoy bead's beside its feature branch, started from it; the clone
/// is always of the rig's default branch. Patrol's triage batch goes out as a lightweight polecat.
pub fn rig_agent(creds: &Credentials<'_>, found: &Found, role: StartRole) -> StartAgent {
    let (town, agent, rig, bead) = (creds.town(), &found.agent, &found.rig, &found.bead);
    let feature = found
        .review
        .is_none()
        .then(|| bead.meta_str("feature_branch"))
        .flatten();
    let triage = bead.has_label(labels::TRIAGE) && bead.created_by.as_deref() == Some(PATROL);
    let system_prompt = match (&found.review, role) {
        (Some(r), StartRole::Refinery) => Some(prompts::refinery(agent, rig, town, bead, r)),
        (None, StartRole::Polecat) if triage => Some(prompts::triage(agent, town)),
        (None, StartRole::Polecat) => prompts::polecat_pr(rig, town, bead),
        _ => None,
    };
    StartAgent {
        agent_id: agent.agent_id.clone(),
        rig_id: rig.rig_id.clone(),
        town_id: town.town_id.clone(),
        role,
        name: agent.name.clone(),
        identity: agent.identity.clone(),
        prompt: prompts::task(bead, agent.checkpoint.as_deref()),
        model: model(&town.config, role),
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
pub fn mayor(creds: &Credentials<'_>, mayor: &Agent, rigs: &[Rig], message: &str) -> StartAgent {
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
