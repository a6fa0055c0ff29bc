//! Applying the reconciler's actions (GASTOWN-DOMAIN.md 4.1): each mutation through its domain
//! operation, and the synchronous part of each side effect, which yields the [`Effect`] the tick
//! runs once every action has been applied.
//!
//! Actions are applied in emitted order, each in its own atomic unit: one that fails is rolled
//! back and logged with its type, and the others still apply. Before them, the polecats the
//! batch's dispatches need are registered together, a rig at a time; a run of consecutive
//! dispatches of new polecats is then hooked together in one unit when every one of them is the
//! plain case, with the rows one at a time would have written.

use crate::domain::error::DomainError;
use crate::domain::{agents, beads, convoys, nudges, reviews, rigs, triage, Ctx};
use crate::effects::pr_url::repo_mismatch;
use crate::sql::atomically;
use crate::store::agents as agent_store;
use crate::store::beads as bead_store;
use crate::vocabulary::actions::{Action, Effect};
use crate::vocabulary::model::{
    AgentRole, BeadStatus, BeadType, FailureReason, NudgeMode, NudgePriority,
};
use crate::vocabulary::time::iso;
use serde_json::{json, Map};
use std::collections::BTreeMap;

/// What applying a batch of actions produced.
#[derive(Debug, Default)]
pub struct Applied {
    pub effects: Vec<Effect>,
    /// Actions whose application failed (rolled back).
    pub failed: u64,
    /// `emit_event` actions: (event name, data), written by the tick.
    pub analytics: Vec<(String, Map<String, serde_json::Value>)>,
}

/// Registers, before the actions apply, the polecats the batch's dispatches will need and their
/// rigs have not got free: one registration per rig instead of one per dispatch (naming and
/// inserting a polecat alone costs about six statements). Each dispatch then takes a free
/// polecat of its rig, oldest first, as it would have taken the one it registered. Fewer than
/// two such dispatches register their own.
fn register_needed_polecats(ctx: &Ctx<'_>, actions: &[Action]) -> Result<(), DomainError> {
    let wanted: Vec<(&str, &str)> = actions.iter().filter_map(new_polecat_dispatch).collect();
    if wanted.len() < 2 {
        return Ok(());
    }
    let beads: Vec<&str> = wanted.iter().map(|(bead, _)| *bead).collect();
    // A merge request's dispatch takes the rig's refinery.
    let issues = bead_store::not_merge_requests(ctx.sql, &beads)?;
    let mut needed: BTreeMap<&str, usize> = BTreeMap::new();
    for (bead, rig) in &wanted {
        if issues.contains(*bead) {
            *needed.entry(rig).or_default() += 1;
        }
    }
    let rigs: Vec<&str> = needed.keys().copied().collect();
    let free = agent_store::free_polecats_by_rig(ctx.sql, &rigs)?;
    for (rig, n) in needed {
        let short = n.saturating_sub(free.get(rig).copied().unwrap_or(0));
        agents::register_polecats(ctx, rig, short)?;
    }
    Ok(())
}

/// The `(bead, rig)` of a dispatch that wants a new polecat on a rig.
fn new_polecat_dispatch(action: &Action) -> Option<(&str, &str)> {
    match action {
        Action::DispatchAgent {
            agent_id: None,
            bead_id,
            rig_id,
        } if !rig_id.is_empty() => Some((bead_id.as_str(), rig_id.as_str())),
        _ => None,
    }
}

/// A run of consecutive dispatches of new polecats, applied together when they are all plain
/// ([`agents::start_polecats`]): their effects, or `None` when they must go one at a time.
fn start_run(ctx: &Ctx<'_>, run: &[Action]) -> Option<Vec<Effect>> {
    let wanted: Vec<(&str, &str)> = run.iter().filter_map(new_polecat_dispatch).collect();
    match atomically(ctx.sql, || agents::start_polecats(ctx, &wanted)) {
        Ok(Some(polecats)) => Some(
            polecats
                .into_iter()
                .zip(&wanted)
                .map(|(agent_id, (bead_id, rig_id))| Effect::Dispatch {
                    agent_id,
                    bead_id: (*bead_id).to_owned(),
                    rig_id: (*rig_id).to_owned(),
                })
                .collect(),
        ),
        Ok(None) => None,
        Err(e) => {
            crate::log::warn("dispatch_batch_failed", &[("error", &e.to_string())]);
            None
        }
    }
}

/// Applies every action in order, each atomically, except that a run of two or more
/// consecutive dispatches of new polecats is applied together in one unit when all of them are
/// plain, with the same result as one at a time (otherwise, or should the unit fail, they are
/// applied one at a time).
pub fn apply_all(ctx: &Ctx<'_>, actions: &[Action]) -> Applied {
    // Best effort: should it fail, each dispatch registers its own polecat.
    if let Err(e) = atomically(ctx.sql, || register_needed_polecats(ctx, actions)) {
        crate::log::warn("polecat_registration_failed", &[("error", &e.to_string())]);
    }
    let mut applied = Applied::default();
    let mut rest = actions;
    while !rest.is_empty() {
        let run = rest
            .iter()
            .take_while(|a| new_polecat_dispatch(a).is_some())
            .count()
            .max(1);
        let (now, later) = rest.split_at(run);
        match (run >= 2).then(|| start_run(ctx, now)).flatten() {
            Some(effects) => applied.effects.extend(effects),
            None => now
                .iter()
                .for_each(|action| apply_alone(ctx, action, &mut applied)),
        }
        rest = later;
    }
    applied
}

/// Applies one action in its own unit, recording what it yields or that it failed.
fn apply_alone(ctx: &Ctx<'_>, action: &Action, applied: &mut Applied) {
    if let Action::EmitEvent { event_name, data } = action {
        applied.analytics.push((event_name.clone(), data.clone()));
        return;
    }
    match atomically(ctx.sql, || apply(ctx, action)) {
        Ok(Some(effect)) => applied.effects.push(effect),
        Ok(None) => {}
        Err(e) => {
            applied.failed += 1;
            crate::log::warn(
                "action_failed",
                &[("type", action.type_name()), ("error", &e.to_string())],
            );
        }
    }
}

/// Applies one action; `Some` when it has an outbound part.
pub fn apply(ctx: &Ctx<'_>, action: &Action) -> Result<Option<Effect>, DomainError> {
    match action {
        Action::TransitionBead {
            bead_id,
            to,
            reason,
            actor,
            ..
        } => {
            let failure = (*to == BeadStatus::Failed)
                .then(|| FailureReason::new("reconciler", reason.clone(), "scheduler"));
            beads::set_status(ctx, bead_id, *to, actor, failure.as_ref())?;
        }
        Action::AssignBead { bead_id, agent_id } => {
            beads::assign(ctx, bead_id, agent_id)?;
        }
        Action::ClearBeadAssignee { bead_id } => {
            beads::clear_assignee(ctx, bead_id)?;
        }
        Action::CreateMrBead {
            source_bead_id,
            agent_id,
            rig_id,
            branch,
            target_branch,
            pr_url,
            summary,
        } => {
            reviews::submit(
                ctx,
                &reviews::Submission {
                    source_bead_id: source_bead_id.clone(),
                    agent_id: agent_id.clone(),
                    rig_id: Some(rig_id.clone()),
                    branch: branch.clone(),
                    pr_url: pr_url.clone(),
                    summary: summary.clone(),
                    default_branch: Some(target_branch.clone()),
                },
            )?;
        }
        Action::CreateLandingMr {
            convoy_id,
            rig_id,
            feature_branch,
            target_branch,
        } => {
            reviews::create_landing_mr(ctx, convoy_id, rig_id, feature_branch, target_branch)?;
        }
        Action::CloseSiblingMrs {
            source_bead_id,
            exclude_mr_id,
        } => reviews::close_siblings(ctx, source_bead_id, exclude_mr_id)?,
        Action::SetReviewPrUrl { bead_id, pr_url } => {
            reviews::set_pr_url(ctx, bead_id, pr_url)?;
        }
        Action::TransitionAgent { agent_id, to, .. } => {
            agents::set_status(ctx, agent_id, *to)?;
        }
        Action::HookAgent { agent_id, bead_id } => {
            agents::hook(ctx, agent_id, bead_id)?;
        }
        Action::UnhookAgent { agent_id, .. } => {
            agents::unhook(ctx, agent_id)?;
        }
        Action::ClearAgentCheckpoint { agent_id } => {
            agents::clear_checkpoint(ctx, agent_id)?;
        }
        Action::DeleteAgent { agent_id, .. } => agents::delete(ctx, agent_id)?,
        Action::UpdateConvoyProgress {
            convoy_id,
            closed_beads,
        } => {
            convoys::update_progress(ctx, convoy_id, *closed_beads)?;
        }
        Action::SetConvoyReadyToLand { convoy_id } => {
            convoys::set_ready_to_land(ctx, convoy_id)?;
        }
        Action::CloseConvoy { convoy_id } => {
            convoys::close(ctx, convoy_id)?;
        }
        Action::CreateTriageRequest {
            agent_id,
            triage_type,
            reason,
        } => {
            triage::create_request(ctx, agent_id, *triage_type, reason)?;
        }
        Action::DispatchAgent {
            agent_id,
            bead_id,
            rig_id,
        } => return dispatch(ctx, agent_id.as_deref(), bead_id, rig_id).map(Some),
        Action::StopAgent { agent_id, reason } => {
            return Ok(Some(Effect::Stop {
                agent_id: agent_id.clone(),
                reason: reason.clone(),
            }))
        }
        Action::PollPr { bead_id, pr_url } => {
            let mut patch = Map::new();
            patch.insert("last_poll_at".into(), json!(iso(ctx.now)));
            beads::merge_metadata(ctx, bead_id, &patch)?;
            return Ok(Some(Effect::PollPr {
                bead_id: bead_id.clone(),
                pr_url: pr_url.clone(),
            }));
        }
        Action::MergePr { bead_id, pr_url } => return merge_guard(ctx, bead_id, pr_url),
        Action::SendNudge {
            agent_id,
            message,
            tier,
        } => {
            let nudge = nudges::queue(
                ctx,
                &nudges::Queue {
                    agent_id: agent_id.clone(),
                    message: message.clone(),
                    mode: NudgeMode::Immediate,
                    priority: NudgePriority::Urgent,
                    source: tier.source().to_owned(),
                    ttl_ms: None,
                },
            )?;
            return Ok(Some(Effect::Nudge {
                agent_id: agent_id.clone(),
                nudge_id: nudge.nudge_id,
                message: message.clone(),
            }));
        }
        Action::NotifyMayor { message, notice } => {
            return Ok(Some(Effect::NotifyMayor {
                message: message.clone(),
                notice: *notice,
            }))
        }
        Action::EmitEvent { .. } => {}
    }
    Ok(None)
}

/// The synchronous part of `dispatch_agent` (4.2): resolve the agent when none is named (a
/// refinery for a merge request, else a polecat of the rig, hooked to the bead), then set the
/// agent `working` and the bead `in_progress` on its behalf. The attempt counters move only
/// when the start is sent (`domain::dispatch`).
///
/// A named agent must still be hooked to the bead: the actions of a pass are all computed from
/// one snapshot, and an earlier one may have unhooked it (R2 reopening a stuck review before R6
/// re-dispatches its refinery, B1b clearing an assignee before B2). Dispatching it anyway
/// started a process on work the town no longer gave it, leaving a working agent without a
/// hook (#7); such a dispatch is refused instead.
fn dispatch(
    ctx: &Ctx<'_>,
    agent_id: Option<&str>,
    bead_id: &str,
    rig_id: &str,
) -> Result<Effect, DomainError> {
    let bead = beads::get(ctx, bead_id)?;
    let agent = match agent_id {
        Some(id) => {
            let agent = agents::get(ctx, id)?;
            if agent.current_hook_bead_id.as_deref() != Some(bead_id) {
                return Err(DomainError::conflict(format!(
                    "agent {id} is no longer hooked to {bead_id}"
                )));
            }
            agent
        }
        None => {
            let role = if bead.bead_type == BeadType::MergeRequest {
                AgentRole::Refinery
            } else {
                AgentRole::Polecat
            };
            agents::get_or_create(ctx, role, Some(rig_id))?
        }
    };
    let agent = agents::hook_to_start_of(ctx, agent, &bead)?;
    let rig_id = if rig_id.is_empty() {
        agent.rig_id.clone().unwrap_or_default()
    } else {
        rig_id.to_owned()
    };
    Ok(Effect::Dispatch {
        agent_id: agent.agent_id,
        bead_id: bead_id.to_owned(),
        rig_id,
    })
}

/// The synchronous guard of `merge_pr` (4.4): a PR of another repository than the MR's rig is
/// never merged; its pending flag is dropped instead.
fn merge_guard(ctx: &Ctx<'_>, bead_id: &str, pr_url: &str) -> Result<Option<Effect>, DomainError> {
    let bead = beads::get(ctx, bead_id)?;
    let git_url = match bead.rig_id.as_deref() {
        Some(rig) => rigs::get(ctx, rig).ok().map(|r| r.git_url),
        None => None,
    };
    if let Some(mismatch) = git_url.as_deref().and_then(|g| repo_mismatch(g, pr_url)) {
        crate::log::warn(
            "merge_refused_repo_mismatch",
            &[
                ("bead_id", bead_id),
                ("pr_url", pr_url),
                ("why", &mismatch.to_string()),
            ],
        );
        let mut patch = Map::new();
        patch.insert("auto_merge_pending".into(), serde_json::Value::Null);
        beads::merge_metadata(ctx, bead_id, &patch)?;
        return Ok(None);
    }
    Ok(Some(Effect::MergePr {
        bead_id: bead_id.to_owned(),
        pr_url: pr_url.to_owned(),
    }))
}
