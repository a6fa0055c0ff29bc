//! Convoys (GASTOWN-DOMAIN.md 1.4): slinging a task DAG onto a feature branch, starting a
//! staged convoy, and the progress helper that lands a convoy when its members are done.

use super::beads::{self};
use super::error::Result;
use super::{object, Ctx, DomainError, SYSTEM};
use crate::store::beads::NewBead;
use crate::store::convoys as store;
use crate::store::dependencies;
use crate::store::events::Subject;
use crate::store::{rigs, town};
use crate::vocabulary::events::{BeadCreated, ConvoyStarted, EventKind};
use crate::vocabulary::model::{
    labels, Bead, BeadStatus, BeadType, Convoy, DependencyType, MergeMode,
};
use serde_json::json;
use std::collections::BTreeSet;

/// Longest slug of the title inside a feature branch name.
const SLUG_MAX: usize = 40;

/// A convoy: its bead and its `convoy_metadata` row.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvoyState {
    pub bead: Bead,
    pub convoy: Convoy,
}

/// The convoy, or `NotFound` (also for a bead that is not a convoy).
pub fn get(ctx: &Ctx<'_>, convoy_id: &str) -> Result<ConvoyState> {
    let missing = || DomainError::not_found("convoy", convoy_id);
    let convoy = store::get(ctx.sql, convoy_id)?.ok_or_else(missing)?;
    let bead = crate::store::beads::get(ctx.sql, convoy_id)?.ok_or_else(missing)?;
    Ok(ConvoyState { bead, convoy })
}

/// One task of a convoy; `depends_on` holds indexes of tasks it waits for.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvoyTask {
    pub title: String,
    pub body: Option<String>,
    pub depends_on: Vec<usize>,
}

/// A convoy to sling.
#[derive(Debug, Clone, PartialEq)]
pub struct SlingConvoy {
    pub title: String,
    pub rig_id: String,
    /// Defaults to `review-then-land`.
    pub merge_mode: Option<MergeMode>,
    /// Defaults to the town's `staged_convoys_default`.
    pub staged: Option<bool>,
    pub tasks: Vec<ConvoyTask>,
    pub created_by: String,
}

/// What slinging made: the convoy and its issue beads, in task order.
#[derive(Debug, Clone, PartialEq)]
pub struct Slung {
    pub convoy: ConvoyState,
    pub bead_ids: Vec<String>,
}

/// Slings a convoy: validates the tasks and refuses a dependency cycle (Kahn's algorithm)
/// before writing anything; then creates the convoy bead (no rig, `gt:convoy`, metadata
/// `{feature_branch}`), its metadata row, one issue bead per task (metadata `{convoy_id,
/// feature_branch}`, `tracks` -> convoy), the `blocks` edges, and one `bead_created` event per
/// issue bead. No agent is assigned: the reconciler does that lazily.
pub fn sling(ctx: &Ctx<'_>, s: &SlingConvoy) -> Result<Slung> {
    if s.title.trim().is_empty() {
        return Err(DomainError::invalid("title", "must not be empty"));
    }
    if s.tasks.is_empty() {
        return Err(DomainError::invalid(
            "beads",
            "a convoy needs at least one bead",
        ));
    }
    let mut waits_on: Vec<BTreeSet<usize>> = Vec::with_capacity(s.tasks.len());
    for (i, task) in s.tasks.iter().enumerate() {
        if task.title.trim().is_empty() {
            return Err(DomainError::invalid(
                format!("beads[{i}].title"),
                "must not be empty",
            ));
        }
        if let Some(bad) = task.depends_on.iter().find(|&&j| j >= s.tasks.len()) {
            return Err(DomainError::invalid(
                format!("beads[{i}].depends_on"),
                format!("index {bad} is out of range (0..{})", s.tasks.len()),
            ));
        }
        waits_on.push(task.depends_on.iter().copied().collect());
    }
    check_acyclic(&waits_on)?;
    let town = town::get(ctx.sql)?.ok_or_else(|| DomainError::not_found("town", "(this town)"))?;
    if rigs::get(ctx.sql, &s.rig_id)?.is_none() {
        return Err(DomainError::not_found("rig", &s.rig_id));
    }

    let convoy_id = ctx.ids.new_id();
    let branch = feature_branch(&s.title, &convoy_id);
    let merge_mode = s.merge_mode.unwrap_or(MergeMode::ReviewThenLand);
    let staged = s.staged.unwrap_or(town.config.staged_convoys_default);
    let mut bead = NewBead::new(&convoy_id, BeadType::Convoy, &s.title);
    bead.labels = vec![labels::CONVOY.to_owned()];
    bead.metadata = object(json!({"feature_branch": branch}));
    bead.created_by = Some(s.created_by.clone());
    beads::create(ctx, &bead)?;
    store::insert(
        ctx.sql,
        &convoy_id,
        s.tasks.len() as i64,
        &branch,
        merge_mode,
        staged,
    )?;

    let mut bead_ids = Vec::with_capacity(s.tasks.len());
    for task in &s.tasks {
        let mut issue = NewBead::new(&ctx.ids.new_id(), BeadType::Issue, &task.title);
        issue.body = task.body.clone();
        issue.rig_id = Some(s.rig_id.clone());
        issue.metadata = object(json!({"convoy_id": convoy_id, "feature_branch": branch}));
        issue.created_by = Some(s.created_by.clone());
        beads::create(ctx, &issue)?;
        dependencies::insert(ctx.sql, &issue.bead_id, &convoy_id, DependencyType::Tracks)?;
        bead_ids.push(issue.bead_id);
    }
    for (i, deps) in waits_on.iter().enumerate() {
        for &j in deps {
            dependencies::insert(ctx.sql, &bead_ids[i], &bead_ids[j], DependencyType::Blocks)?;
        }
    }
    for (i, id) in bead_ids.iter().enumerate() {
        ctx.record(
            &EventKind::BeadCreated(BeadCreated {
                bead_type: BeadType::Issue.as_str().into(),
                rig_id: Some(s.rig_id.clone()),
                convoy_id: Some(convoy_id.clone()),
                has_blockers: Some(!waits_on[i].is_empty()),
            }),
            &Subject::bead(id),
        )?;
    }
    Ok(Slung {
        convoy: get(ctx, &convoy_id)?,
        bead_ids,
    })
}

/// Kahn's algorithm over "task i waits on tasks `waits_on[i]`": a `Cycle` names the tasks
/// that can never start.
fn check_acyclic(waits_on: &[BTreeSet<usize>]) -> Result<()> {
    let n = waits_on.len();
    let mut pending: Vec<usize> = waits_on.iter().map(BTreeSet::len).collect();
    let mut ready: Vec<usize> = (0..n).filter(|&i| pending[i] == 0).collect();
    let mut started = 0;
    while let Some(done) = ready.pop() {
        started += 1;
        for (i, deps) in waits_on.iter().enumerate() {
            if deps.contains(&done) {
                pending[i] -= 1;
                if pending[i] == 0 {
                    ready.push(i);
                }
            }
        }
    }
    if started == n {
        return Ok(());
    }
    let stuck: Vec<String> = (0..n)
        .filter(|&i| pending[i] > 0)
        .map(|i| i.to_string())
        .collect();
    Err(DomainError::Cycle(format!(
        "beads {} depend on each other",
        stuck.join(", ")
    )))
}

/// `convoy/<slug(title)[<=40]>/<convoyId[0:8]>/head`.
pub fn feature_branch(title: &str, convoy_id: &str) -> String {
    let short: String = convoy_id.chars().take(8).collect();
    format!("convoy/{}/{short}/head", slug(title))
}

/// Lower-case ASCII letters and digits, other runs become one `-`, trimmed, at most 40 chars.
fn slug(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(SLUG_MAX);
    let trimmed = out.trim_end_matches('-');
    if trimmed.is_empty() {
        "convoy".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Starts a staged convoy: clears `staged` and records `convoy_started`. A landed convoy or
/// one that is not staged is a `Conflict`.
pub fn start(ctx: &Ctx<'_>, convoy_id: &str) -> Result<ConvoyState> {
    let state = get(ctx, convoy_id)?;
    if state.bead.status.is_terminal() {
        return Err(DomainError::conflict(format!(
            "convoy {convoy_id} is {}",
            state.bead.status
        )));
    }
    if !state.convoy.staged {
        return Err(DomainError::conflict(format!(
            "convoy {convoy_id} is not staged"
        )));
    }
    store::set_staged(ctx.sql, convoy_id, false)?;
    ctx.record(
        &EventKind::ConvoyStarted(ConvoyStarted {
            convoy_id: convoy_id.to_owned(),
        }),
        &Subject::town(),
    )?;
    get(ctx, convoy_id)
}

/// Clears `staged` (applying `convoy_started`; idempotent).
pub fn unstage(ctx: &Ctx<'_>, convoy_id: &str) -> Result<()> {
    get(ctx, convoy_id)?;
    store::set_staged(ctx.sql, convoy_id, false)?;
    Ok(())
}

/// The progress helper, run on every terminal transition of `bead_id`: for each convoy the bead
/// belongs to, stores how many members are done (closed or failed with no open or in-progress
/// MR); when all are, a review-then-land convoy with a feature branch is flagged
/// `ready_to_land` and any other convoy is closed and landed.
pub fn recompute_progress(ctx: &Ctx<'_>, bead_id: &str) -> Result<()> {
    for convoy_id in store::tracking(ctx.sql, bead_id)? {
        let state = get(ctx, &convoy_id)?;
        if state.bead.status.is_terminal() {
            continue;
        }
        let done = store::done_members(ctx.sql, &convoy_id)?;
        store::set_closed_beads(ctx.sql, &convoy_id, done)?;
        let total = state.convoy.total_beads;
        if total == 0 || done < total {
            continue;
        }
        if lands_after_review(&state.convoy) {
            if !state.bead.flag("ready_to_land") {
                set_ready_to_land(ctx, &convoy_id)?;
            }
        } else {
            close(ctx, &convoy_id)?;
        }
    }
    Ok(())
}

/// Whether the convoy's work is merged into its feature branch and landed by one final MR.
fn lands_after_review(convoy: &Convoy) -> bool {
    convoy.merge_mode != Some(MergeMode::ReviewAndMerge) && convoy.feature_branch.is_some()
}

/// Stores the number of done members (the reconciler's `update_convoy_progress`).
pub fn update_progress(ctx: &Ctx<'_>, convoy_id: &str, closed_beads: i64) -> Result<ConvoyState> {
    get(ctx, convoy_id)?;
    store::set_closed_beads(ctx.sql, convoy_id, closed_beads)?;
    get(ctx, convoy_id)
}

/// Flags the convoy `ready_to_land` (metadata `ready_to_land = 1`, `updated_at` touched).
pub fn set_ready_to_land(ctx: &Ctx<'_>, convoy_id: &str) -> Result<ConvoyState> {
    get(ctx, convoy_id)?;
    beads::merge_metadata(ctx, convoy_id, &object(json!({"ready_to_land": 1})))?;
    get(ctx, convoy_id)
}

/// Closes the convoy bead (actor `system`) and records when it landed.
pub fn close(ctx: &Ctx<'_>, convoy_id: &str) -> Result<ConvoyState> {
    let state = get(ctx, convoy_id)?;
    beads::set_status(ctx, convoy_id, BeadStatus::Closed, SYSTEM, None)?;
    if state.convoy.landed_at.is_none() {
        store::set_landed(ctx.sql, convoy_id, ctx.now)?;
    }
    get(ctx, convoy_id)
}

/// Records that the convoy landed (its landing MR merged), unless it already had.
pub fn mark_landed(ctx: &Ctx<'_>, convoy_id: &str) -> Result<()> {
    if get(ctx, convoy_id)?.convoy.landed_at.is_none() {
        store::set_landed(ctx.sql, convoy_id, ctx.now)?;
    }
    Ok(())
}
