//! The alarm tick: drain and apply events, then measure, record and re-arm.
//!
//! Phases (GASTOWN-DOMAIN.md 5.2), each isolated so that one failing phase never skips the
//! re-arm: destroyed guard -> bounded drain & apply -> metrics -> tick history -> re-arm.
//!
//! Exactly once: each event's state change and its processed mark run in one atomic unit, so a
//! tick interrupted anywhere and run again (alarms are at-least-once) neither loses nor re-applies
//! an event. A failing event's partial writes are rolled back; it is retried by later ticks and
//! poisoned after three failures (kept with its error text). The original left failing events
//! pending forever (`47aceb61`) and drained without a bound; here at most `drain_limit` events
//! are read per tick, oldest first, and a backlog re-arms the alarm at once.

pub mod concurrency;

use crate::domain::apply::apply_event;
use crate::domain::Ctx;
use crate::metrics::point::DataPoint;
use crate::metrics::writer::{Analytics, Origin};
use crate::metrics::ReconcilerMetrics;
use crate::params;
use crate::sql::{atomically, SqlError};
use crate::store::{events, town};
use crate::time::{iso, Millis, SECOND};

/// Knobs of the tick (from the Worker's vars and the town config).
#[derive(Debug, Clone, PartialEq)]
pub struct TickOptions {
    /// Most events applied per tick.
    pub drain_limit: u32,
    /// Re-arm delay while there is work.
    pub active_interval_ms: Millis,
    /// Re-arm delay while idle.
    pub idle_interval_ms: Millis,
    /// Ticks kept in the metrics history.
    pub metrics_keep: u32,
}

impl Default for TickOptions {
    fn default() -> Self {
        Self {
            drain_limit: 500,
            active_interval_ms: 5 * SECOND,
            idle_interval_ms: 300 * SECOND,
            metrics_keep: 1_000,
        }
    }
}

/// When the alarm should fire next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rearm {
    /// The town is gone: no alarm.
    Stop,
    /// Events are still pending: fire again at once.
    Now,
    /// Work in flight.
    Active(Millis),
    /// Nothing to do.
    Idle(Millis),
}

impl Rearm {
    /// The delay from now, or `None` for no alarm.
    pub fn delay_ms(self) -> Option<Millis> {
        match self {
            Rearm::Stop => None,
            Rearm::Now => Some(0),
            Rearm::Active(ms) | Rearm::Idle(ms) => Some(ms),
        }
    }
}

/// What one tick did.
#[derive(Debug, Clone, PartialEq)]
pub struct TickReport {
    pub metrics: ReconcilerMetrics,
    /// The `reconciler_tick` point as written (`None` for a deleted town).
    pub point: Option<DataPoint>,
    pub rearm: Rearm,
}

/// Runs one tick.
pub fn run(
    ctx: &Ctx<'_>,
    sink: &dyn crate::ports::AnalyticsSink,
    options: &TickOptions,
) -> TickReport {
    let town = match town::get(ctx.sql) {
        Ok(Some(town)) => town,
        Ok(None) => {
            return TickReport {
                metrics: ReconcilerMetrics::default(),
                point: None,
                rearm: Rearm::Stop,
            }
        }
        Err(e) => {
            // Without the town row nothing else can run; try again soon.
            crate::log::error("tick_town_load_failed", &[("error", &e.to_string())]);
            return TickReport {
                metrics: ReconcilerMetrics::default(),
                point: None,
                rearm: Rearm::Active(options.active_interval_ms),
            };
        }
    };
    let analytics = Analytics::new(
        sink,
        Origin {
            town_id: town.town_id.clone(),
            owner_user_id: town.owner_user_id.clone(),
        },
    );
    let started = ctx.now;
    let mut metrics = ReconcilerMetrics::default();

    drain(ctx, options.drain_limit, &mut metrics);

    metrics.wall_clock_ms = (ctx.now - started) as f64;
    let backlog = events::backlog(ctx.sql, ctx.now).unwrap_or_else(|e| {
        crate::log::error("tick_backlog_failed", &[("error", &e.to_string())]);
        events::Backlog::default()
    });
    metrics.pending_event_count = backlog.count;
    metrics.oldest_pending_age_ms = backlog.oldest_age_ms as f64;

    let point = analytics.tick(&metrics);
    if let Err(e) = remember(ctx, &point, options.metrics_keep) {
        crate::log::error("tick_history_failed", &[("error", &e.to_string())]);
    }
    if let Err(e) = events::prune(ctx.sql, ctx.now) {
        crate::log::error("tick_prune_failed", &[("error", &e.to_string())]);
    }

    let interval = |configured: Option<u32>, default: Millis| {
        configured.map_or(default, |s| Millis::from(s) * SECOND)
    };
    let rearm = if backlog.count > 0 {
        Rearm::Now
    } else {
        Rearm::Idle(interval(
            town.config.alarm_interval_idle,
            options.idle_interval_ms,
        ))
    };
    TickReport {
        metrics,
        point: Some(point),
        rearm,
    }
}

/// Phase 0: applies up to `limit` pending events, oldest first, each exactly once.
fn drain(ctx: &Ctx<'_>, limit: u32, metrics: &mut ReconcilerMetrics) {
    let batch = match events::pending(ctx.sql, limit) {
        Ok(batch) => batch,
        Err(e) => {
            crate::log::error("drain_failed", &[("error", &e.to_string())]);
            return;
        }
    };
    metrics.events_drained = batch.len() as u64;
    for event in &batch {
        let applied = atomically(ctx.sql, || -> Result<(), ApplyFailure> {
            apply_event(ctx, event).map_err(|e| ApplyFailure(e.to_string()))?;
            events::mark_processed(ctx.sql, &event.event_id, ctx.now)?;
            Ok(())
        });
        let Err(ApplyFailure(error)) = applied else {
            continue;
        };
        metrics.events_failed += 1;
        let fields = [
            ("event_id", event.event_id.as_str()),
            ("error", error.as_str()),
        ];
        match events::record_failure(ctx.sql, &event.event_id, &error, ctx.now) {
            Ok(events::Failure::WillRetry) => crate::log::warn("event_failed", &fields),
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

/// Keeps the point in the bounded tick history.
fn remember(ctx: &Ctx<'_>, point: &DataPoint, keep: u32) -> Result<(), SqlError> {
    let json = serde_json::to_string(point).expect("points serialize");
    ctx.sql.execute(
        "INSERT INTO tick_metrics (at, point) VALUES (?, ?)",
        &params![iso(ctx.now), json],
    )?;
    ctx.sql.execute(
        "DELETE FROM tick_metrics WHERE tick_id <= (SELECT MAX(tick_id) FROM tick_metrics) - ?",
        &params![keep],
    )?;
    Ok(())
}
