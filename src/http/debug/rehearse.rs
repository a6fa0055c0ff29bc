//! Rehearsals: what the reconciler would do, on a throwaway state.
//!
//! `reconcile-dry-run` drains the pending events and reconciles; `replay-events` re-applies the
//! events created in `[from, to]` (processed or not) on top of the current state and reconciles.
//! Both run inside one atomic unit that is always rolled back (the Durable Object's SQL refuses
//! `SAVEPOINT`, so the unit is `storage.transactionSync()` with a forced rollback), and neither
//! writes an AE point, touches the alarm or calls a remote: side effects are listed, not run.
//! The answer is computed inside the unit and carried out of it by the rollback itself.

use crate::domain::apply::apply_event;
use crate::domain::Ctx;
use crate::metrics::ReconcilerMetrics;
use crate::reconciler::load;
use crate::reconciler::{reconcile, Options};
use crate::sql::{atomically, SqlError};
use crate::store::{events, rows};
use crate::tick::{self, apply::apply_all};
use crate::vocabulary::actions::Action;
use crate::vocabulary::time::Millis;
use serde_json::{json, Value as Json};

/// Carries the rehearsal's answer out of the rolled-back unit.
struct Rollback(Result<Json, SqlError>);

impl From<SqlError> for Rollback {
    fn from(e: SqlError) -> Self {
        Rollback(Err(e))
    }
}

/// Runs `body` and throws every write it made away; returns what it computed.
fn rehearse(
    ctx: &Ctx<'_>,
    body: impl FnOnce() -> Result<Json, SqlError>,
) -> Result<Json, SqlError> {
    let outcome: Result<(), Rollback> = atomically(ctx.sql, || Err(Rollback(body())));
    match outcome {
        Err(Rollback(answer)) => answer,
        Ok(()) => unreachable!("a rehearsal always rolls back"),
    }
}

/// Reconciles the rehearsed state, applies the mutations, and describes the result.
fn reconcile_and_describe(
    ctx: &Ctx<'_>,
    metrics: &mut ReconcilerMetrics,
) -> Result<Json, SqlError> {
    let snapshot = load::snapshot(ctx.sql, ctx.now).map_err(|e| SqlError::Engine(e.to_string()))?;
    let actions: Vec<Action> = reconcile(&snapshot, &Options::of(&snapshot), ctx.now);
    metrics.count_actions(actions.iter().map(Action::type_name));
    let applied = apply_all(ctx, &actions);
    metrics.pending_event_count = events::backlog(ctx.sql, ctx.now)?.count;
    let side_effects: Vec<&str> = applied.effects.iter().map(|e| e.type_name()).collect();
    Ok(json!({
        "actions": actions,
        "actions_failed": applied.failed,
        "side_effects_not_run": side_effects,
        "metrics": {
            "events_drained": metrics.events_drained,
            "events_failed": metrics.events_failed,
            "actions_emitted": metrics.actions_emitted,
            "actions_by_type": metrics.actions_by_type,
            "pending_event_count": metrics.pending_event_count,
        },
        "state": state(ctx)?,
    }))
}

/// Every agent and every live bead, as the rehearsal left them.
fn state(ctx: &Ctx<'_>) -> Result<Json, SqlError> {
    let agents = crate::store::agents::list(ctx.sql)?;
    let beads: Vec<Json> = ctx
        .sql
        .query(
            &format!(
                "SELECT {} FROM beads b WHERE b.type <> 'agent'
                 AND b.status NOT IN ('closed', 'failed') ORDER BY b.created_at, b.bead_id",
                rows::BEAD_COLUMNS
            ),
            &[],
        )?
        .into_iter()
        .map(|r| rows::bead(&r).map(|b| serde_json::to_value(b).expect("beads serialize")))
        .collect::<Result<_, _>>()?;
    Ok(json!({"agents": agents, "non_terminal_beads": beads}))
}

/// `POST /debug/towns/{t}/reconcile-dry-run`: drain (up to `limit` events) and reconcile.
pub fn dry_run(ctx: &Ctx<'_>, limit: u32) -> Result<Json, SqlError> {
    rehearse(ctx, || {
        let mut metrics = ReconcilerMetrics::default();
        tick::drain::drain(ctx, limit, &mut metrics);
        reconcile_and_describe(ctx, &mut metrics)
    })
}

/// `POST /debug/towns/{t}/replay-events`: re-apply the events created in `[from, to]`.
pub fn replay(ctx: &Ctx<'_>, from: Millis, to: Millis) -> Result<Json, SqlError> {
    rehearse(ctx, || {
        let mut metrics = ReconcilerMetrics::default();
        let replayed = events::created_between(ctx.sql, from, to)?;
        let mut failures = Vec::new();
        for event in &replayed {
            let applied = atomically(ctx.sql, || -> Result<(), ReplayFailure> {
                apply_event(ctx, event).map_err(|e| ReplayFailure(e.to_string()))
            });
            if let Err(ReplayFailure(error)) = applied {
                failures.push(json!({"event_id": event.event_id, "error": error}));
            }
        }
        metrics.events_drained = replayed.len() as u64;
        metrics.events_failed = failures.len() as u64;
        let mut answer = reconcile_and_describe(ctx, &mut metrics)?;
        answer["caveat"] = json!(
            "approximate: events are re-applied on top of the current state, and applying an \
             event twice is not always the same as applying it once"
        );
        answer["events_replayed"] = json!(replayed.len());
        answer["replay_failures"] = json!(failures);
        Ok(answer)
    })
}

struct ReplayFailure(String);

impl From<SqlError> for ReplayFailure {
    fn from(e: SqlError) -> Self {
        ReplayFailure(e.to_string())
    }
}
