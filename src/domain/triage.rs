//! Triage requests (GASTOWN-DOMAIN.md 1.7): questions about an agent that need a decision,
//! filed as `gt:triage-request` issue beads, de-duplicated and capped; and the triage loop
//! (section 10) that gets them decided: the housekeeping batches the open requests into one
//! `gt:triage` issue bead created by `patrol` on the town's first rig, which the reconciler
//! dispatches like any open bead (as a lightweight triage agent, `effects::start`); the agent
//! resolves each request (`triage_resolution`) and calls `done`, which closes the batch. After
//! a failed batch no new one is made for [`BATCH_COOLDOWN_MS`].

use super::beads;
use super::error::Result;
use super::triage_resolution::PATROL;
use super::{agents, object, Ctx, SYSTEM};
use crate::sql::Sql;
use crate::store::beads::NewBead;
use crate::store::rigs as rig_store;
use crate::store::triage as store;
use crate::vocabulary::model::{labels, Bead, BeadStatus, BeadType, Priority, TriageType};
use crate::vocabulary::time::{iso, parse_iso, Millis, MINUTE};
use serde_json::json;

/// No new batch for this long after one failed (the original's `DISPATCH_COOLDOWN_MS`).
pub const BATCH_COOLDOWN_MS: Millis = 2 * MINUTE;

/// Most requests listed in one batch's task (the rest wait for the next batch).
pub const BATCH_LIST_LIMIT: u32 = 50;

/// Where the triage loop stands: what the housekeeping does next, and whether open requests
/// are work the town can get done (they keep the alarm on the active interval only then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batching {
    /// No open request.
    Nothing,
    /// A batch is being worked on.
    InFlight { batch_id: String },
    /// A batch waits for the reconciler to dispatch it.
    Waiting { batch_id: String },
    /// A new batch can be made (on this rig).
    Ready { rig_id: String },
    /// The dispatch circuit breaker is open: no batch could be dispatched.
    BreakerOpen,
    /// The last batch failed; no new one before `until`.
    CoolingDown { until: Millis },
    /// The town has no rig to run a triage agent on.
    NoRig,
}

impl Batching {
    /// Whether open requests are work the town can get done now.
    pub fn is_workable(&self) -> bool {
        matches!(
            self,
            Batching::InFlight { .. } | Batching::Waiting { .. } | Batching::Ready { .. }
        )
    }

    /// A short name for logs and the status page.
    pub fn as_str(&self) -> &'static str {
        match self {
            Batching::Nothing => "nothing_pending",
            Batching::InFlight { .. } => "in_flight",
            Batching::Waiting { .. } => "waiting_for_dispatch",
            Batching::Ready { .. } => "ready",
            Batching::BreakerOpen => "blocked_breaker_open",
            Batching::CoolingDown { .. } => "blocked_cooldown",
            Batching::NoRig => "blocked_no_rig",
        }
    }
}

/// Where the loop stands at `now`, given whether the dispatch circuit breaker is open.
pub fn assess(sql: &dyn Sql, now: Millis, breaker_open: bool) -> Result<Batching> {
    let (_, pending) = store::pending(sql, 0)?;
    if pending == 0 {
        return Ok(Batching::Nothing);
    }
    let batch = store::current_batch(sql, &iso(now - BATCH_COOLDOWN_MS))?;
    if let Some(b) = batch
        .as_ref()
        .filter(|b| b.status == BeadStatus::InProgress)
    {
        return Ok(Batching::InFlight {
            batch_id: b.bead_id.clone(),
        });
    }
    if breaker_open {
        return Ok(Batching::BreakerOpen);
    }
    match batch {
        Some(b) if b.status == BeadStatus::Open => Ok(Batching::Waiting {
            batch_id: b.bead_id,
        }),
        Some(b) => Ok(Batching::CoolingDown {
            until: parse_iso(&b.updated_at).unwrap_or(now) + BATCH_COOLDOWN_MS,
        }),
        None => Ok(rig_store::list(sql)?
            .into_iter()
            .next()
            .map_or(Batching::NoRig, |r| Batching::Ready { rig_id: r.rig_id })),
    }
}

/// The housekeeping's step of the loop: when a batch can be made, files the open requests
/// (the oldest [`BATCH_LIST_LIMIT`]) as one `gt:triage` bead for the reconciler to dispatch.
/// Returns where the loop stood and the batch made, if any.
pub fn batch(ctx: &Ctx<'_>, breaker_open: bool) -> Result<(Batching, Option<Bead>)> {
    let state = assess(ctx.sql, ctx.now, breaker_open)?;
    let Batching::Ready { rig_id } = &state else {
        return Ok((state, None));
    };
    let (requests, total) = store::pending(ctx.sql, BATCH_LIST_LIMIT)?;
    let mut task = format!(
        "Resolve each of these {total} open triage request(s) with gt_triage_resolve, then \
         call gt_done.\n"
    );
    for r in &requests {
        task.push_str(&format!(
            "\n- {id} ({kind}, agent {agent}): {title}",
            id = r.bead_id,
            kind = r.meta_str("triage_type").unwrap_or("unknown"),
            agent = r.meta_str("agent_bead_id").unwrap_or("-"),
            title = r.title,
        ));
    }
    let mut bead = NewBead::new(
        &ctx.ids.new_id(),
        BeadType::Issue,
        &format!("Triage batch: {total} request(s)"),
    );
    bead.body = Some(task);
    bead.rig_id = Some(rig_id.clone());
    bead.priority = Priority::High;
    bead.labels = vec![labels::TRIAGE.to_owned()];
    bead.created_by = Some(PATROL.to_owned());
    let made = beads::create(ctx, &bead)?;
    Ok((state, Some(made)))
}

/// Most open non-escalation triage requests in a town.
pub const OPEN_CAP: i64 = 5;

/// What the resolver may do with a request filed by the reconciler.
pub const OPTIONS: [&str; 3] = ["RESTART", "CLOSE", "ESCALATE"];

/// Files a triage request about `agent_id` (title `Triage: <reason>`, assignee = the agent,
/// body = the JSON context, metadata `{triage_type, agent_bead_id, hooked_bead_id, context,
/// options}`). Returns `None`, writing nothing, when an open request of the same type exists
/// for the agent, or when the type is not `escalation` and 5 such requests are already open.
pub fn create_request(
    ctx: &Ctx<'_>,
    agent_id: &str,
    triage_type: TriageType,
    reason: &str,
) -> Result<Option<Bead>> {
    let agent = agents::get(ctx, agent_id)?;
    if store::open_exists(ctx.sql, triage_type.as_str(), agent_id)? {
        return Ok(None);
    }
    if triage_type != TriageType::Escalation && store::open_non_escalation(ctx.sql)? >= OPEN_CAP {
        crate::log::warn(
            "triage_cap_reached",
            &[
                ("agent_id", agent_id),
                ("triage_type", triage_type.as_str()),
            ],
        );
        return Ok(None);
    }
    let context = json!({"reason": reason});
    let mut bead = NewBead::new(
        &ctx.ids.new_id(),
        BeadType::Issue,
        &format!("Triage: {reason}"),
    );
    bead.body = Some(context.to_string());
    bead.rig_id = agent.rig_id.clone();
    bead.assignee_agent_bead_id = Some(agent_id.to_owned());
    bead.labels = vec![labels::TRIAGE_REQUEST.to_owned()];
    bead.metadata = object(json!({
        "triage_type": triage_type.as_str(),
        "agent_bead_id": agent_id,
        "hooked_bead_id": agent.current_hook_bead_id,
        "context": context,
        "options": OPTIONS,
    }));
    bead.created_by = Some(SYSTEM.to_owned());
    beads::create(ctx, &bead).map(Some)
}
