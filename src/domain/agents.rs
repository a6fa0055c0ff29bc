//! Agents (GASTOWN-DOMAIN.md 1.2): the hook, heartbeats, get-or-create with the name pool,
//! status changes and deletion.

use super::beads::{self, event};
use super::error::Result;
use super::{Ctx, DomainError, SYSTEM};
use crate::store::agents::{self as store, NewAgent};
use crate::store::beads::{self as bead_store, NewEvent};
use crate::store::page::{Page, PageQuery};
use crate::store::town;
use crate::vocabulary::model::{Agent, AgentRole, AgentStatus, Bead, BeadStatus, BeadType};
use crate::vocabulary::time::{iso, parse_iso};
use std::collections::{BTreeMap, HashMap};

pub use crate::store::agents::Watermark;

/// Names given to new polecats, in order; after these come `Polecat-21`, `Polecat-22`, ...
pub const NAME_POOL: [&str; 20] = [
    "Toast", "Maple", "Birch", "Shadow", "Clover", "Ember", "Sage", "Dusk", "Flint", "Coral",
    "Slate", "Reed", "Thorn", "Pike", "Moss", "Wren", "Blaze", "Gale", "Drift", "Lark",
];

/// Bead types an agent can never be hooked to.
const UNHOOKABLE: [BeadType; 4] = [
    BeadType::Escalation,
    BeadType::Convoy,
    BeadType::Agent,
    BeadType::Message,
];

// Every operation returns the agent as it now is. It is built from the row read before the write
// and what the write changed, not read again: in the Durable Object each statement costs a
// crossing into JavaScript whatever it does, and the re-reads were a third of a tick's statements.
// tests/domain_results.rs checks each result against a fresh read.

/// The agent, or `NotFound`.
pub fn get(ctx: &Ctx<'_>, agent_id: &str) -> Result<Agent> {
    store::get(ctx.sql, agent_id)?.ok_or_else(|| DomainError::not_found("agent", agent_id))
}

/// A page of the agents, oldest first.
pub fn page(ctx: &Ctx<'_>, which: &PageQuery) -> Result<Page<Agent>> {
    Ok(store::page(ctx.sql, which)?)
}

/// Hooks `bead_id` to the agent (the one bead it must work on).
///
/// Refuses escalation, convoy, agent and message beads, `gt:triage-request` beads and beads
/// that are already closed or failed (`Conflict`). Hooking the bead the agent already holds
/// changes nothing; an agent hooked to another bead is a `Conflict`. Any other agent holding the
/// bead is unhooked first. The agent becomes idle and active now with its status message
/// cleared; the bead gets the agent as assignee and keeps its status (dispatch moves it to
/// `in_progress`); a `hooked` event is logged.
pub fn hook(ctx: &Ctx<'_>, agent_id: &str, bead_id: &str) -> Result<Agent> {
    hook_of(ctx, get(ctx, agent_id)?, &beads::get(ctx, bead_id)?)
}

/// [`hook`] of the agent and the bead as just read.
pub fn hook_of(ctx: &Ctx<'_>, agent: Agent, bead: &Bead) -> Result<Agent> {
    hook_with(ctx, agent, bead, false)
}

/// What a dispatch writes before its start is sent, as one step: [`hook_of`] (when the agent is
/// not hooked to the bead yet), the agent `working`, the bead `in_progress` with its
/// `status_changed` logged as [`beads::set_status`] does (not terminal, so no convoy changes).
/// The hook, the status and the history entries share their statements.
pub fn hook_to_start_of(ctx: &Ctx<'_>, agent: Agent, bead: &Bead) -> Result<Agent> {
    hook_with(ctx, agent, bead, true)
}

fn hook_with(ctx: &Ctx<'_>, agent: Agent, bead: &Bead, start: bool) -> Result<Agent> {
    let (agent_id, bead_id) = (agent.agent_id.as_str(), bead.bead_id.as_str());
    if UNHOOKABLE.contains(&bead.bead_type) {
        return Err(DomainError::conflict(format!(
            "a {} bead cannot be hooked",
            bead.bead_type
        )));
    }
    if bead.has_label(crate::vocabulary::model::labels::TRIAGE_REQUEST) {
        return Err(DomainError::conflict("a triage request cannot be hooked"));
    }
    match agent.current_hook_bead_id.as_deref() {
        Some(current) if current == bead_id => {
            if !start {
                return Ok(agent);
            }
            beads::set_status_of(ctx, bead.clone(), BeadStatus::InProgress, agent_id, None)?;
            return set_status_of(ctx, agent, AgentStatus::Working);
        }
        Some(current) => {
            return Err(DomainError::conflict(format!(
                "agent {agent_id} is already hooked to {current}"
            )))
        }
        None => {}
    }
    if bead.status.is_terminal() {
        return Err(DomainError::conflict(format!(
            "bead {bead_id} is {} and cannot be hooked",
            bead.status
        )));
    }
    for other in store::hooked_to(ctx.sql, bead_id)? {
        unhook_of(ctx, other)?;
    }
    let status = if start {
        AgentStatus::Working
    } else {
        AgentStatus::Idle
    };
    store::hook(ctx.sql, agent_id, bead_id, status, ctx.now)?;
    let hooked = hooked(bead_id, agent_id);
    let hooked_id = ctx.ids.new_id();
    if start && bead.status != BeadStatus::InProgress {
        bead_store::set_assignee_and_status(
            ctx.sql,
            bead_id,
            agent_id,
            BeadStatus::InProgress,
            ctx.now,
        )?;
        let started = beads::status_changed(bead_id, agent_id, bead.status, BeadStatus::InProgress);
        let started_id = ctx.ids.new_id();
        bead_store::log_events(
            ctx.sql,
            &[(&hooked_id, &hooked), (&started_id, &started)],
            ctx.now,
        )?;
    } else {
        bead_store::set_assignee(ctx.sql, bead_id, Some(agent_id), ctx.now)?;
        bead_store::log_event(ctx.sql, &hooked_id, &hooked, ctx.now)?;
    }
    Ok(Agent {
        current_hook_bead_id: Some(bead_id.to_owned()),
        status,
        stalled_at: None,
        last_activity_at: Some(iso(ctx.now)),
        ..agent
    })
}

/// The `hooked` history entry of a bead put on an agent's hook.
fn hooked<'a>(bead_id: &'a str, agent_id: &'a str) -> NewEvent<'a> {
    NewEvent {
        bead_id,
        agent_id: Some(agent_id),
        event_type: event::HOOKED,
        new_value: Some(agent_id),
        ..Default::default()
    }
}

/// Many dispatches of new work at once: for each `(bead, rig)`, in order, what [`get_or_create`]
/// of a polecat followed by [`hook_to_start_of`] writes one at a time (the rig's oldest free
/// polecat hooked and working, the bead assigned to it and `in_progress`, `hooked` and
/// `status_changed` logged, ids drawn in the same order), in a few statements: the beads, their
/// current holders and each rig's free polecats read together, then one write per table.
///
/// Returns the polecat of each dispatch, or `None`, having written nothing, unless every one is
/// that plain case: distinct beads, each an existing hookable non-MR bead, not a triage request,
/// neither terminal nor already in progress, held by no agent, with a rig that has enough free
/// polecats. The caller then applies them one at a time.
pub fn start_polecats(ctx: &Ctx<'_>, wanted: &[(&str, &str)]) -> Result<Option<Vec<String>>> {
    let bead_ids: Vec<&str> = wanted.iter().map(|(bead, _)| *bead).collect();
    let found = bead_store::by_ids(ctx.sql, &bead_ids)?;
    let plain = |b: &Bead| {
        b.bead_type != BeadType::MergeRequest
            && !UNHOOKABLE.contains(&b.bead_type)
            && !b.has_label(crate::vocabulary::model::labels::TRIAGE_REQUEST)
            && !b.status.is_terminal()
            && b.status != BeadStatus::InProgress
    };
    let beads: HashMap<&str, &Bead> = found.iter().map(|b| (b.bead_id.as_str(), b)).collect();
    if beads.len() != wanted.len()
        || wanted.iter().any(|(_, rig)| rig.is_empty())
        || !found.iter().all(plain)
        || !store::hooked_to_any(ctx.sql, &bead_ids)?.is_empty()
    {
        return Ok(None);
    }
    let mut per_rig: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, rig) in wanted {
        *per_rig.entry(rig).or_default() += 1;
    }
    let mut free: HashMap<&str, std::vec::IntoIter<Agent>> = HashMap::new();
    for (rig, n) in per_rig {
        let polecats = store::idle_unhooked_polecats(ctx.sql, rig, n)?;
        if polecats.len() < n {
            return Ok(None);
        }
        free.insert(rig, polecats.into_iter());
    }
    let polecats: Vec<String> = wanted
        .iter()
        .map(|(_, rig)| {
            free.get_mut(rig)
                .and_then(Iterator::next)
                .map(|a| a.agent_id)
        })
        .collect::<Option<_>>()
        .expect("each rig has a polecat per dispatch");
    let hooks: Vec<(&str, &str)> = polecats
        .iter()
        .zip(&bead_ids)
        .map(|(agent, bead)| (agent.as_str(), *bead))
        .collect();
    let mut history = Vec::with_capacity(2 * hooks.len());
    for &(agent_id, bead_id) in &hooks {
        let from = beads[bead_id].status;
        let started = beads::status_changed(bead_id, agent_id, from, BeadStatus::InProgress);
        history.push((ctx.ids.new_id(), hooked(bead_id, agent_id)));
        history.push((ctx.ids.new_id(), started));
    }
    store::hook_all(ctx.sql, &hooks, AgentStatus::Working, ctx.now)?;
    let assignments: Vec<(&str, &str)> = hooks.iter().map(|&(a, b)| (b, a)).collect();
    bead_store::set_assignees_and_status(ctx.sql, &assignments, BeadStatus::InProgress, ctx.now)?;
    let entries: Vec<(&str, &NewEvent<'_>)> =
        history.iter().map(|(id, e)| (id.as_str(), e)).collect();
    bead_store::log_events(ctx.sql, &entries, ctx.now)?;
    Ok(Some(polecats))
}

/// Empties the agent's hook: idle, checkpoint cleared, `unhooked` logged on the bead it held.
/// The bead keeps its assignee.
pub fn unhook(ctx: &Ctx<'_>, agent_id: &str) -> Result<Agent> {
    unhook_of(ctx, get(ctx, agent_id)?)
}

/// The container confirmed a stop R7 asked for: the refinery whose review finished is unhooked
/// only now (a stop that failed leaves it hooked, and R7 stops it again). An agent gone since
/// is nothing to do.
pub fn stop_confirmed(ctx: &Ctx<'_>, agent_id: &str) -> Result<()> {
    let agent = match get(ctx, agent_id) {
        Err(e) if e.is_not_found() => return Ok(()),
        found => found?,
    };
    let finished = match agent.current_hook_bead_id.as_deref() {
        None => false,
        Some(hook) => match beads::get(ctx, hook) {
            Err(e) if e.is_not_found() => true,
            found => found?.status.is_terminal(),
        },
    };
    if finished {
        unhook_of(ctx, agent)?;
    }
    Ok(())
}

/// A GUPP force stop the container did not confirm: the agent may still run, so a stalled one
/// is working again, and the next tick's GUPP pass (which sees it silent for over 2 hours)
/// force-stops it again. Returns whether it was put back.
pub fn force_stop_unconfirmed(ctx: &Ctx<'_>, agent_id: &str) -> Result<bool> {
    let agent = match get(ctx, agent_id) {
        Err(e) if e.is_not_found() => return Ok(false),
        found => found?,
    };
    if agent.status != AgentStatus::Stalled {
        return Ok(false);
    }
    set_status_of(ctx, agent, AgentStatus::Working)?;
    Ok(true)
}

/// [`unhook`] of the agent as just read.
pub fn unhook_of(ctx: &Ctx<'_>, agent: Agent) -> Result<Agent> {
    let agent_id = agent.agent_id.as_str();
    store::unhook(ctx.sql, agent_id)?;
    if let Some(bead_id) = agent.current_hook_bead_id.as_deref() {
        beads::log(
            ctx,
            &NewEvent {
                bead_id,
                agent_id: Some(agent_id),
                event_type: event::UNHOOKED,
                old_value: Some(agent_id),
                ..Default::default()
            },
        )?;
    }
    Ok(Agent {
        current_hook_bead_id: None,
        status: AgentStatus::Idle,
        stalled_at: None,
        checkpoint: None,
        ..agent
    })
}

/// Unhooks every agent hooked to `bead_id`.
pub fn unhook_all(ctx: &Ctx<'_>, bead_id: &str) -> Result<()> {
    for agent in store::hooked_to(ctx.sql, bead_id)? {
        unhook_of(ctx, agent)?;
    }
    Ok(())
}

/// A heartbeat: active now, `idle` becomes `working` (proof of life), the agent's dispatch
/// attempts reset, and the SDK activity watermark stored where supplied.
///
/// The watermark's `last_event_at` is kept in the town's own format and never later than now:
/// a time the town cannot read is dropped, and a future one (a skewed clock, or a forged
/// `9999-12-31`) is clamped, or the agent would look busy forever and GUPP never see it stuck.
pub fn touch(ctx: &Ctx<'_>, agent_id: &str, watermark: &Watermark) -> Result<Agent> {
    let agent = get(ctx, agent_id)?;
    let watermark = &Watermark {
        last_event_at: watermark
            .last_event_at
            .as_deref()
            .and_then(parse_iso)
            .map(|at| iso(at.min(ctx.now))),
        ..watermark.clone()
    };
    store::touch(ctx.sql, agent_id, watermark, ctx.now)?;
    Ok(Agent {
        last_activity_at: Some(iso(ctx.now)),
        status: match agent.status {
            AgentStatus::Idle => AgentStatus::Working,
            other => other,
        },
        dispatch_attempts: 0,
        last_event_type: watermark.last_event_type.clone().or(agent.last_event_type),
        last_event_at: watermark.last_event_at.clone().or(agent.last_event_at),
        active_tools: watermark.active_tools.clone().unwrap_or(agent.active_tools),
        ..agent
    })
}

/// Sets the agent's status, keeping `stalled_at` = when it entered `stalled` (cleared on leaving).
pub fn set_status(ctx: &Ctx<'_>, agent_id: &str, to: AgentStatus) -> Result<Agent> {
    set_status_of(ctx, get(ctx, agent_id)?, to)
}

/// [`set_status`] of the agent as just read.
pub fn set_status_of(ctx: &Ctx<'_>, agent: Agent, to: AgentStatus) -> Result<Agent> {
    let stalled_at = match (to, agent.status) {
        (AgentStatus::Stalled, AgentStatus::Stalled) => agent.stalled_at.clone(),
        (AgentStatus::Stalled, _) => Some(iso(ctx.now)),
        _ => None,
    };
    store::set_status(ctx.sql, &agent.agent_id, to, stalled_at.as_deref())?;
    Ok(Agent {
        status: to,
        stalled_at,
        ..agent
    })
}

pub fn clear_checkpoint(ctx: &Ctx<'_>, agent_id: &str) -> Result<Agent> {
    let agent = get(ctx, agent_id)?;
    store::clear_checkpoint(ctx.sql, agent_id)?;
    Ok(Agent {
        checkpoint: None,
        ..agent
    })
}

/// Resets the agent-level dispatch counter.
pub fn reset_dispatch_attempts(ctx: &Ctx<'_>, agent_id: &str) -> Result<Agent> {
    reset_dispatch_attempts_of(ctx, get(ctx, agent_id)?)
}

/// [`reset_dispatch_attempts`] of the agent as just read.
pub fn reset_dispatch_attempts_of(ctx: &Ctx<'_>, agent: Agent) -> Result<Agent> {
    store::reset_dispatch_attempts(ctx.sql, &agent.agent_id)?;
    Ok(Agent {
        dispatch_attempts: 0,
        ..agent
    })
}

/// Deletes an agent. Beads assigned to it lose their assignee and, unless closed or failed,
/// are reopened; then the agent bead, its metadata, nudges, history and edges are deleted.
pub fn delete(ctx: &Ctx<'_>, agent_id: &str) -> Result<()> {
    get(ctx, agent_id)?;
    for bead in bead_store::assigned_to(ctx.sql, agent_id)? {
        bead_store::set_assignee(ctx.sql, &bead.bead_id, None, ctx.now)?;
        if !bead.status.is_terminal() {
            beads::set_status(ctx, &bead.bead_id, BeadStatus::Open, SYSTEM, None)?;
        }
    }
    store::delete_satellites(ctx.sql, agent_id)?;
    bead_store::delete(ctx.sql, agent_id)?;
    Ok(())
}

/// The agent to work as `role`: the town's one mayor, the rig's one refinery (whatever its
/// status), or an idle polecat of the rig with an empty hook; registers a new one (idle, no
/// hook, never active) when there is none. Refineries and polecats need a rig.
pub fn get_or_create(ctx: &Ctx<'_>, role: AgentRole, rig_id: Option<&str>) -> Result<Agent> {
    // The town's id names a new agent; an existing one is returned without reading the town.
    let town_id = || -> Result<String> {
        Ok(town::get(ctx.sql)?
            .ok_or_else(|| DomainError::not_found("town", "(this town)"))?
            .town_id)
    };
    let (name, identity, rig_id) = match (role, rig_id) {
        (AgentRole::Witness, _) => {
            return Err(DomainError::invalid(
                "role",
                "witness agents are no longer created",
            ))
        }
        (AgentRole::Mayor, _) => {
            if let Some(mayor) = store::first_with_role(ctx.sql, role, None)? {
                return Ok(mayor);
            }
            let identity = format!("mayor-{}", prefix8(&town_id()?));
            ("mayor".to_owned(), identity, None)
        }
        (_, None) => {
            return Err(DomainError::invalid(
                "rig_id",
                format!("a {role} needs a rig"),
            ))
        }
        (AgentRole::Refinery, Some(rig)) => {
            if let Some(refinery) = store::first_with_role(ctx.sql, role, Some(rig))? {
                return Ok(refinery);
            }
            let name = "refinery".to_owned();
            let identity = identity(&name, role, rig, &town_id()?);
            (name, identity, Some(rig))
        }
        (AgentRole::Polecat, Some(rig)) => {
            if let Some(polecat) = store::idle_unhooked_polecat(ctx.sql, rig)? {
                return Ok(polecat);
            }
            return Ok(register_polecats(ctx, rig, 1)?.remove(0));
        }
    };
    let new = NewAgent {
        agent_id: ctx.ids.new_id(),
        role,
        name,
        identity,
        rig_id: rig_id.map(str::to_owned),
    };
    store::insert(ctx.sql, &new, ctx.now)?;
    Ok(new.registered(iso(ctx.now)))
}

/// `<name>-<role>-<rigId[0:8]>@<townId[0:8]>`.
pub fn identity(name: &str, role: AgentRole, rig_id: &str, town_id: &str) -> String {
    format!("{name}-{role}-{}@{}", prefix8(rig_id), prefix8(town_id))
}

/// The names of the next `count` polecats of a rig: the pool names whose identity is free, in
/// order, then `Polecat-21`, `Polecat-22`, ... The pool is checked with one read, and the
/// numbers come from the town's sequence, a block at a time, each block checked with one read
/// (the name was once probed with one query per candidate, so registering the n-th polecat of a
/// rig cost n queries).
fn polecat_names(ctx: &Ctx<'_>, rig_id: &str, town_id: &str, count: usize) -> Result<Vec<String>> {
    let of = |name: &str| identity(name, AgentRole::Polecat, rig_id, town_id);
    let pool: Vec<String> = NAME_POOL.iter().map(|n| of(n)).collect();
    let taken = store::taken_identities(ctx.sql, &pool)?;
    let mut names: Vec<String> = NAME_POOL
        .iter()
        .filter(|n| !taken.contains(&of(n)))
        .take(count)
        .map(|n| (*n).to_owned())
        .collect();
    while names.len() < count {
        let wanted = count - names.len();
        let first = store::next_polecat_numbers(ctx.sql, wanted)?;
        let block: Vec<String> = (first..first + wanted as i64)
            .map(|n| format!("Polecat-{n}"))
            .collect();
        let taken =
            store::taken_identities(ctx.sql, &block.iter().map(|n| of(n)).collect::<Vec<_>>())?;
        names.extend(block.into_iter().filter(|n| !taken.contains(&of(n))));
    }
    Ok(names)
}

/// Registers `count` new idle polecats on `rig_id` together, named as one-by-one registration
/// would name them, in the same order (oldest first, as [`get_or_create`] hands out free ones).
pub fn register_polecats(ctx: &Ctx<'_>, rig_id: &str, count: usize) -> Result<Vec<Agent>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let town_id = town::get(ctx.sql)?
        .ok_or_else(|| DomainError::not_found("town", "(this town)"))?
        .town_id;
    let new: Vec<NewAgent> = polecat_names(ctx, rig_id, &town_id, count)?
        .into_iter()
        .map(|name| NewAgent {
            agent_id: ctx.ids.new_id(),
            role: AgentRole::Polecat,
            identity: identity(&name, AgentRole::Polecat, rig_id, &town_id),
            name,
            rig_id: Some(rig_id.to_owned()),
        })
        .collect();
    store::insert_all(ctx.sql, &new, ctx.now)?;
    Ok(new
        .into_iter()
        .map(|a| a.registered(iso(ctx.now)))
        .collect())
}

fn prefix8(id: &str) -> &str {
    id.char_indices().nth(8).map_or(id, |(i, _)| &id[..i])
}
