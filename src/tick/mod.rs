//! The alarm tick (GASTOWN-DOMAIN.md 5.2), an orchestrator over the ports so the very same tick
//! runs natively in tests and in the Durable Object. Phases, each isolated so that one failing
//! phase never skips the re-arm:
//! destroyed guard -> container upkeep (health ping, config and token pushes) and agent
//! observation -> bounded drain & apply ->
//! drain timeout -> snapshot, reconcile, apply actions in order -> side effects (bounded, under a
//! deadline) -> invariants -> metrics and the AE point -> housekeeping (re-escalation, the
//! triage loop, mail, history, nudge expiry, prune) -> re-arm.
//!
//! Exactly once: each event's state change and its processed mark commit together, so a tick
//! interrupted anywhere and run again (alarms are at-least-once) neither loses nor re-applies an
//! event. The batch is first applied as one unit (one transaction for all of it, one statement
//! marking it processed); if an event fails, that unit rolls back and the batch is applied event
//! by event, each in its own unit, so only the failing event's writes are undone. It is retried
//! by later ticks, spaced out (`store::events::RETRY_SPACING_MS`), and poisoned after three
//! failures (kept with its error text). The original left failing events pending forever
//! (`47aceb61`) and drained without a bound; here at most `drain_limit` due events are read per
//! tick, oldest first, a backlog of due events re-arms the alarm at once, and a retry that falls
//! before the regular interval brings the alarm forward to it.

pub mod activity;
pub mod apply;
pub mod budget;
pub mod housekeeping;
pub mod observe;
pub mod phases;
pub mod side_effects;
pub mod upkeep;
pub mod wake;

use crate::concurrency::both;
use crate::domain::apply::{apply_event, ApplyError};
use crate::domain::Ctx;
use crate::effects::credentials::{config_digest, town_config};
use crate::effects::remotes::Remotes;
use crate::metrics::domain_events;
use crate::metrics::layout::{blob, double};
use crate::metrics::point::DataPoint;
use crate::metrics::writer::AnalyticsSink;
use crate::metrics::writer::{Analytics, Origin};
use crate::metrics::ReconcilerMetrics;
use crate::ports::{Clock, Http, Ids};
use crate::reconciler::invariants;
use crate::reconciler::load::{self, for_invariants};
use crate::reconciler::{reconcile, Options};
use crate::settings;
use crate::sql::{atomically, Sql, SqlError};
use crate::store::{events, town};
use crate::vocabulary::actions::Action;
use crate::vocabulary::events::RecordedEvent;
use crate::vocabulary::time::{iso, Millis, MINUTE, SECOND};
use apply::apply_all;
use phases::{Phase, PhaseWatch};
use side_effects::perform;

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
            drain_limit: settings::TICK_DRAIN_LIMIT.default as u32,
            active_interval_ms: settings::ALARM_INTERVAL_ACTIVE_SECS.default * SECOND,
            idle_interval_ms: settings::ALARM_INTERVAL_IDLE_SECS.default * SECOND,
            metrics_keep: settings::TICK_METRICS_KEEP.default as u32,
        }
    }
}

/// When the alarm should fire next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rearm {
    /// The town is gone: no alarm.
    Stop,
    /// Events are still pending and due: fire again at once.
    Now,
    /// A failed event's retry falls before the regular interval: fire then.
    Retry(Millis),
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
            Rearm::Retry(ms) | Rearm::Active(ms) | Rearm::Idle(ms) => Some(ms),
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

/// The ports and settings one tick runs with.
pub struct TickEnv<'a, H> {
    pub sql: &'a dyn Sql,
    pub ids: &'a dyn Ids,
    /// Both the tick's `now` and its wall-clock measurement.
    pub clock: &'a dyn Clock,
    pub sink: &'a dyn AnalyticsSink,
    pub http: &'a H,
    pub remotes: &'a Remotes,
    pub options: TickOptions,
    /// Hears each phase end (the native benchmark times them; elsewhere `Unwatched`).
    pub watch: &'a dyn PhaseWatch,
}

/// Draining ends by itself after this long (the container never reported ready).
pub const DRAIN_TIMEOUT_MS: Millis = 7 * MINUTE;

/// Runs one tick: every phase is isolated, so a failing one never skips the re-arm.
pub async fn run<H: Http>(env: &TickEnv<'_, H>) -> TickReport {
    let now = env.clock.now_ms();
    let ctx = Ctx {
        sql: env.sql,
        ids: env.ids,
        now,
    };
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
                rearm: Rearm::Active(env.options.active_interval_ms),
            };
        }
    };
    let analytics = Analytics::new(
        env.sink,
        Origin {
            town_id: town.town_id.clone(),
            owner_user_id: town.owner_user_id.clone(),
        },
    );

    // Container upkeep and observation (outside the measured part, as in the original), together:
    // the upkeep calls' answers are only remembered, so they need not cost a round trip of their
    // own. They take one of the calls in flight.
    let active = activity::is_active(ctx.sql, now);
    let header = town_config(&town, &env.remotes.gastown_api_url);
    let due =
        upkeep::due(ctx.sql, &town, active, &config_digest(&header), now).unwrap_or_else(|e| {
            crate::log::error("container_upkeep_skipped", &[("error", &e.to_string())]);
            upkeep::Due::default()
        });
    let limit = env
        .remotes
        .concurrency
        .saturating_sub(usize::from(upkeep::any(due)))
        .max(1);
    // One budget of calls for the tick: the upkeep, then the observation (at most half of what
    // is left, so a town of many working agents still gets its effects out), then the effects.
    let mut calls_left = env
        .remotes
        .subrequest_budget
        .saturating_sub(upkeep::calls(due));
    let (_, observed) = both(
        upkeep::run(&ctx, env.http, env.remotes, &town, &header, due),
        observe::observe_agents(
            &ctx,
            env.clock,
            env.http,
            env.remotes,
            limit,
            env.remotes.observe_budget.min(calls_left / 2),
        ),
    )
    .await;
    calls_left = calls_left.saturating_sub(observed.asked);
    env.watch.ended(Phase::Observe);

    let started = env.clock.now_ms();
    let mut metrics = ReconcilerMetrics::default();
    drain(&ctx, env.options.drain_limit, &mut metrics);
    end_stale_drain(&ctx, &town);
    env.watch.ended(Phase::Drain);

    let loaded = load::snapshot(ctx.sql, now);
    env.watch.ended(Phase::Snapshot);
    let effects = match loaded {
        Ok(snapshot) => {
            let wanted = reconcile(&snapshot, &Options::of(&snapshot), now);
            let (actions, deferred) = budget::within(wanted, calls_left);
            calls_left = calls_left.saturating_sub(budget::spent(&actions));
            metrics.side_effects_deferred = deferred as u64;
            if deferred > 0 {
                crate::log::warn(
                    "tick_calls_deferred",
                    &[
                        ("side_effects", &deferred.to_string()),
                        ("agents_not_observed", &observed.deferred.to_string()),
                        ("budget", &env.remotes.subrequest_budget.to_string()),
                    ],
                );
            }
            env.watch.ended(Phase::Reconcile);
            metrics.count_actions(actions.iter().map(Action::type_name));
            let applied = apply_all(&ctx, &actions);
            for (event, data) in &applied.analytics {
                analytics.write(emitted(&analytics, event, data));
            }
            env.watch.ended(Phase::Actions);
            applied.effects
        }
        Err(e) => {
            crate::log::error("reconcile_skipped", &[("error", &e.to_string())]);
            Vec::new()
        }
    };
    let tally = perform(
        &ctx,
        env.clock,
        &analytics,
        env.http,
        env.remotes,
        &effects,
        started,
    )
    .await;
    metrics.side_effects_attempted = tally.attempted;
    metrics.side_effects_succeeded = tally.succeeded;
    metrics.side_effects_failed = tally.failed;
    env.watch.ended(Phase::SideEffects);

    match for_invariants(ctx.sql) {
        Ok(snapshot) => {
            let violations = invariants::check(&snapshot);
            metrics.invariant_violations = violations.len() as u64;
            for v in &violations {
                crate::log::error(
                    "invariant_violated",
                    &[
                        ("invariant", &v.invariant.to_string()),
                        ("message", &v.message),
                    ],
                );
            }
            analytics.violations(
                &violations
                    .iter()
                    .map(|v| v.message.clone())
                    .collect::<Vec<_>>(),
            );
        }
        Err(e) => crate::log::error("invariants_skipped", &[("error", &e.to_string())]),
    }
    env.watch.ended(Phase::Invariants);

    let finished = env.clock.now_ms();
    metrics.wall_clock_ms = (finished - started).max(0) as f64;
    let backlog = events::backlog(ctx.sql, finished).unwrap_or_else(|e| {
        crate::log::error("tick_backlog_failed", &[("error", &e.to_string())]);
        events::Backlog::default()
    });
    metrics.pending_event_count = backlog.count;
    metrics.oldest_pending_age_ms = backlog.oldest_age_ms as f64;

    // The room left beside the tick's own points (reserved in the writer).
    if let Err(e) = domain_events::report(ctx.sql, &analytics, now, analytics.remaining()) {
        crate::log::error("domain_events_failed", &[("error", &e.to_string())]);
    }
    let point = analytics.tick(&metrics);
    env.watch.ended(Phase::Metrics);
    housekeeping::run(env, &analytics, &point, started, calls_left).await;

    let interval = |configured: Option<u32>, default: Millis| {
        configured.map_or(default, |s| Millis::from(s) * SECOND)
    };
    let finished = env.clock.now_ms();
    let regular = if activity::is_active(ctx.sql, finished) {
        Rearm::Active(interval(
            town.config.alarm_interval_active,
            env.options.active_interval_ms,
        ))
    } else {
        Rearm::Idle(interval(
            town.config.alarm_interval_idle,
            env.options.idle_interval_ms,
        ))
    };
    let rearm = match (backlog.due, backlog.next_retry_at) {
        (due, _) if due > 0 => Rearm::Now,
        (_, Some(at)) if regular.delay_ms().is_some_and(|d| at - finished < d) => {
            Rearm::Retry((at - finished).max(0))
        }
        _ => regular,
    };
    env.watch.ended(Phase::Housekeeping);
    TickReport {
        metrics,
        point: Some(point),
        rearm,
    }
}

/// Phase 5: a drain older than [`DRAIN_TIMEOUT_MS`] ends.
fn end_stale_drain(ctx: &Ctx<'_>, town: &town::Town) {
    if let Some(drain) = &town.drain {
        if ctx.now - drain.started_at > DRAIN_TIMEOUT_MS {
            crate::log::warn("drain_timed_out", &[("nonce", &drain.nonce)]);
            if let Err(e) = town::clear_drain(ctx.sql) {
                crate::log::error("drain_clear_failed", &[("error", &e.to_string())]);
            }
        }
    }
}

/// The point of an `emit_event` action: `{event, townId, ...data}` with the common slots.
fn emitted(
    analytics: &Analytics<'_>,
    event: &str,
    data: &serde_json::Map<String, serde_json::Value>,
) -> DataPoint {
    let mut p = analytics.internal(event);
    let text = |k: &str| {
        data.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    p.set_blob(blob::RIG_ID, &text("rigId"))
        .set_blob(blob::AGENT_ID, &text("agentId"))
        .set_blob(blob::BEAD_ID, &text("beadId"))
        .set_blob(blob::LABEL, &text("label"));
    if let Some(v) = data.get("value").and_then(|v| v.as_f64()) {
        p.set_double(double::VALUE, v);
    }
    p
}

/// Phase 0: applies up to `limit` pending events that are due, oldest first, each exactly once.
pub(crate) fn drain(ctx: &Ctx<'_>, limit: u32, metrics: &mut ReconcilerMetrics) {
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
