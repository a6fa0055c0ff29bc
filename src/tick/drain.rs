//! Draining the town's events (phase 0) and ending a container drain that never finished.
//!
//! Exactly once: each event's state change and its processed mark commit together, so a tick
//! interrupted anywhere and run again (alarms are at-least-once) neither loses nor re-applies an
//! event. The batch is first applied as one unit (one transaction for all of it, one statement
//! marking it processed); if an event fails, that unit rolls back and the batch is applied event
//! by event, each in its own unit, so only the failing event's writes are undone. It is retried
//! by later ticks, spaced out (`store::events::RETRY_SPACING_MS`), and poisoned after three
//! failures (kept with its error text).

use crate::domain::apply::{apply_event, ApplyError};
use crate::domain::Ctx;
use crate::metrics::ReconcilerMetrics;
use crate::sql::{atomically, SqlError};
use crate::store::{events, town};
use crate::vocabulary::events::RecordedEvent;
use crate::vocabulary::time::{iso, Millis, MINUTE};

/// Draining ends by itself after this long (the container never reported ready).
pub const DRAIN_TIMEOUT_MS: Millis = 7 * MINUTE;

/// A container drain older than [`DRAIN_TIMEOUT_MS`] ends.
pub fn end_stale_drain(ctx: &Ctx<'_>, town: &town::Town) {
    if let Some(drain) = &town.drain {
        if ctx.now - drain.started_at > DRAIN_TIMEOUT_MS {
            crate::log::warn("drain_timed_out", &[("nonce", &drain.nonce)]);
            if let Err(e) = town::clear_drain(ctx.sql) {
                crate::log::error("drain_clear_failed", &[("error", &e.to_string())]);
            }
        }
    }
}

/// Applies up to `limit` pending events that are due, oldest first, each exactly once.
pub fn drain(ctx: &Ctx<'_>, limit: u32, metrics: &mut ReconcilerMetrics) {
    let batch = match events::pending(ctx.sql, limit, ctx.now) {
        Ok(batch) => batch,
        Err(e) => {
            crate::log::error("drain_failed", &[("error", &e.to_string())]);
            return;
        }
    };
    metrics.events_drained = batch.len() as u64;
    let apply_one = |event: &RecordedEvent| -> Result<(), ApplyFailure> {
        apply_event(ctx, event)?;
        events::mark_processed(ctx.sql, &event.event_id, ctx.now)?;
        Ok(())
    };
    // Fast path: the whole batch as one atomic unit (one transaction instead of one per event),
    // marked processed by one statement. If any event fails, the unit rolls back entirely and
    // the batch is applied event by event, each in its own unit, so the failure stays with its
    // event.
    let apply_batch = || -> Result<(), ApplyFailure> {
        for event in &batch {
            apply_event(ctx, event)?;
        }
        let ids: Vec<&str> = batch.iter().map(|e| e.event_id.as_str()).collect();
        events::mark_all_processed(ctx.sql, &ids, ctx.now)?;
        Ok(())
    };
    if atomically(ctx.sql, apply_batch).is_ok() {
        return;
    }
    for event in &batch {
        let applied = atomically(ctx.sql, || apply_one(event));
        let Err(ApplyFailure(error)) = applied else {
            continue;
        };
        metrics.events_failed += 1;
        let fields = [
            ("event_id", event.event_id.as_str()),
            ("error", error.as_str()),
        ];
        match events::record_failure(ctx.sql, &event.event_id, &error, ctx.now) {
            Ok(events::Failure::WillRetry { at }) => crate::log::warn(
                "event_failed",
                &[fields[0], fields[1], ("next_attempt_at", &iso(at))],
            ),
            Ok(events::Failure::Poisoned) => crate::log::error("event_poisoned", &fields),
            Err(e) => crate::log::error("event_failure_not_recorded", &[("error", &e.to_string())]),
        }
    }
}

struct ApplyFailure(String);

impl From<SqlError> for ApplyFailure {
    fn from(e: SqlError) -> Self {
        ApplyFailure(e.to_string())
    }
}

impl From<ApplyError> for ApplyFailure {
    fn from(e: ApplyError) -> Self {
        ApplyFailure(e.to_string())
    }
}
