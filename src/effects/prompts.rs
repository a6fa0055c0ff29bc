//! What an agent is told when it starts (GASTOWN-DOMAIN.md 4.2 and 10): its task, and for a
//! refinery or a polecat that opens its own pull request, a system prompt with its duties.

use crate::store::town::Town;
use crate::vocabulary::config::MergeStrategy;
use crate::vocabulary::model::{Agent, Bead, Review, Rig};

/// The task: the bead's title and body, plus where to resume from when a checkpoint exists.
pub fn task(bead: &Bead, checkpoint: Option<&str>) -> String {
    let mut prompt = bead.title.clone();
    if let Some(body) = bead.body.as_deref().filter(|b| !b.trim().is_empty()) {
        prompt.push_str("\n\n");
        prompt.push_str(body);
    }
    if let Some(cp) = checkpoint.filter(|c| !c.trim().is_empty()) {
        prompt.push_str("\n\nResume from checkpoint:\n");
        prompt.push_str(cp);
    }
    prompt
}

fn strategy(rig: &Rig, town: &Town) -> MergeStrategy {
    rig.merge_strategy.unwrap_or(town.config.merge_strategy)
}

/// The refinery's duties for one merge request.
pub fn refinery(agent: &Agent, rig: &Rig, town: &Town, mr: &Bead, review: &Review) -> String {
    let gates = if town.config.refinery.gates.is_empty() {
        "none configured".to_owned()
    } else {
        town.config.refinery.gates.join("; ")
    };
    let source_agent = mr.meta_str("source_agent_id").unwrap_or("unknown");
    let merge = match (strategy(rig, town), review.pr_url.as_deref()) {
        (_, Some(url)) => {
            format!("A pull request exists: {url}. Review it there; do not merge it yourself.")
        }
        (MergeStrategy::Pr, None) => {
            "Open a pull request from the branch and report its URL with gt_done.".to_owned()
        }
        (MergeStrategy::Direct, None) => format!(
            "Merge the branch into {} yourself when every gate passes, then call gt_done.",
            review.target_branch
        ),
    };
    format!(
        "You are {identity}, the refinery of rig {rig} in town {town}.\n\
         Review merge request {mr}: branch {branch} into {target}, submitted by {source_agent}.\n\
         Gates that must pass: {gates}.\n{merge}\n\
         If changes are needed, request them (a rework bead blocks this review) instead of \
         fixing them yourself.",
        identity = agent.identity,
        rig = rig.name,
        town = town.town_id,
        mr = mr.bead_id,
        branch = review.branch,
        target = review.target_branch,
    )
}

/// A polecat told to open its own pull request, when the rig merges through pull requests and
/// the bead is not an intermediate step of a review-then-land convoy (those land together).
pub fn polecat_pr(rig: &Rig, town: &Town, bead: &Bead) -> Option<String> {
    let in_convoy_branch = bead.meta_str("feature_branch").is_some();
    (strategy(rig, town) == MergeStrategy::Pr && !in_convoy_branch).then(|| {
        format!(
            "When your work on {bead} is done, push your branch, open a pull request against {base} \
             yourself, and call gt_done with its URL.",
            bead = bead.bead_id,
            base = rig.default_branch,
        )
    })
}

/// A triage agent's duties: patrol's batch of triage requests is its task (the bead's body).
pub fn triage(agent: &Agent, town: &Town) -> String {
    format!(
        "You are {identity}, the triage agent of town {town}. Your task lists triage requests \
         about agents of this town. Decide each one and record the decision with \
         gt_triage_resolve (RESTART, RESTART_WITH_BACKOFF, CLOSE_BEAD, ESCALATE, \
         ESCALATE_TO_MAYOR, NUDGE, REASSIGN_BEAD, DISCARD or PROVIDE_GUIDANCE), then call \
         gt_done. You change no code.",
        identity = agent.identity,
        town = town.town_id,
    )
}
