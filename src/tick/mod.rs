//! The alarm tick (GASTOWN-DOMAIN.md 5.2), an orchestrator over the ports so the very same tick
//! runs natively in tests and in the Durable Object. [`run`] reads as its phases, each isolated
//! so that one failing phase never skips the re-arm: the town row -> container upkeep and agent
//! observation ([`upkeep`], [`observe`]) -> bounded drain and apply, and the drain timeout
//! ([`drain`]) -> snapshot, reconcile within the calls' budget ([`budget`]), actions applied in
//! order ([`apply`]) -> side effects ([`side_effects`]: plan, calls, settle) -> invariants ->
//! metrics and the AE point -> housekeeping (re-escalation, the triage loop, mail, history,
//! nudge expiry, prune) -> re-arm ([`activity`]; [`wake`] pulls it forward for new work).
//!
//! The original left failing events pending forever (`47aceb61`) and drained without a bound;
//! here at most `drain_limit` due events are read per tick, oldest first, a backlog of due events
//! re-arms the alarm at once, and a retry that falls before the regular interval brings the
//! alarm forward to it.

pub mod activity;
pub mod apply;
pub mod budget;
pub mod drain;
pub mod housekeeping;
pub mod observe;
pub mod phases;
pub mod side_effects;
pub mod upkeep;
pub mod wake;

use crate::concurrency::both;
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
use crate::reconciler::snapshot::Snapshot;
use crate::reconciler::{reconcile, Options};
use crate::settings;
use crate::sql::Sql;
use crate::store::{events, town};
use crate::vocabulary::actions::{Action, Effect};
use crate::vocabulary::time::{Millis, SECOND};
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

/// Runs one tick: every phase is isolated, so a failing one never skips the re-arm.
pub async fn run<H: Http>(env: &TickEnv<'_, H>) -> TickReport {
    let now = env.clock.now_ms();
    let ctx = Ctx {
        sql: env.sql,
        ids: env.ids,
        now,
    };
    let town = match town_row(&ctx, &env.options) {
        Ok(town) => town,
        Err(rearm) => {
            return TickReport {
                metrics: ReconcilerMetrics::default(),
                point: None,
                rearm,
            }
        }
    };
    let analytics = Analytics::new(
        env.sink,
        Origin {
            town_id: town.town_id.clone(),
            owner_user_id: town.owner_user_id.clone(),
        },
    );
    let mut calls_left = env.remotes.subrequest_budget;
    let observed = observe(env, &ctx, &town, &mut calls_left).await;
    env.watch.ended(Phase::Observe);

    let started = env.clock.now_ms();
    let mut metrics = ReconcilerMetrics::default();
    drain::drain(&ctx, env.options.drain_limit, &mut metrics);
    drain::end_stale_drain(&ctx, &town);
    env.watch.ended(Phase::Drain);

    let (effects, seen) = reconcile_and_apply(
        env,
        &ctx,
        &analytics,
        &mut metrics,
        &mut calls_left,
        observed,
    );
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

    check_invariants(&ctx, &analytics, &mut metrics, seen);
    env.watch.ended(Phase::Invariants);

    let backlog = measure(env, &ctx, &analytics, &mut metrics, started);
    let point = analytics.tick(&metrics);
    env.watch.ended(Phase::Metrics);

    housekeeping::run(env, &analytics, &point, started, calls_left).await;
    let rearm = rearm(env, &ctx, &town, &backlog);
    env.watch.ended(Phase::Housekeeping);
    TickReport {
        metrics,
        point: Some(point),
        rearm,
    }
}

/// The town row, or the re-arm of a tick that cannot run: a deleted town stops its alarm; a
/// row that cannot be read is tried again soon.
fn town_row(ctx: &Ctx<'_>, options: &TickOptions) -> Result<town::Town, Rearm> {
    match town::get(ctx.sql) {
        Ok(Some(town)) => Ok(town),
        Ok(None) => Err(Rearm::Stop),
        Err(e) => {
            crate::log::error("tick_town_load_failed", &[("error", &e.to_string())]);
            Err(Rearm::Active(options.active_interval_ms))
        }
    }
}

/// Container upkeep and observation (outside the measured part, as in the original), together:
/// the upkeep calls' answers are only remembered, so they need not cost a round trip of their
/// own; they take one of the calls in flight. One budget of calls serves the tick: the upkeep
/// first, then the observation (at most half of what is left, so a town of many working agents
/// still gets its effects out), then the effects.
async fn observe<H: Http>(
    env: &TickEnv<'_, H>,
    ctx: &Ctx<'_>,
    town: &town::Town,
    calls_left: &mut usize,
) -> observe::Observed {
    let active = activity::is_active(ctx.sql, ctx.now);
    let header = town_config(town, &env.remotes.gastown_api_url);
    let due =
        upkeep::due(ctx.sql, town, active, &config_digest(&header), ctx.now).unwrap_or_else(|e| {
            crate::log::error("container_upkeep_skipped", &[("error", &e.to_string())]);
            upkeep::Due::default()
        });
    let limit = env
        .remotes
        .concurrency
        .saturating_sub(usize::from(upkeep::any(due)))
        .max(1);
    *calls_left = calls_left.saturating_sub(upkeep::calls(due));
    let (_, observed) = both(
        upkeep::run(ctx, env.http, env.remotes, town, &header, due),
        observe::observe_agents(
            ctx,
            env.clock,
            env.http,
            env.remotes,
            limit,
            env.remotes.observe_budget.min(*calls_left / 2),
        ),
    )
    .await;
    *calls_left = calls_left.saturating_sub(observed.asked);
    observed
}

/// The snapshot the reconciler saw, and the rows written before it was loaded: while no row has
/// been written since, it is still the town's state.
struct Seen {
    snapshot: Snapshot,
    rows_written: u64,
}

/// The snapshot, the reconciler's pass within the calls left, and its actions applied in
/// order; returns the effects they left and what the pass saw. A snapshot that cannot be loaded
/// skips the pass.
fn reconcile_and_apply<H>(
    env: &TickEnv<'_, H>,
    ctx: &Ctx<'_>,
    analytics: &Analytics<'_>,
    metrics: &mut ReconcilerMetrics,
    calls_left: &mut usize,
    observed: observe::Observed,
) -> (Vec<Effect>, Option<Seen>) {
    let rows_written = ctx.sql.counters().rows_written;
    let loaded = load::snapshot(ctx.sql, ctx.now);
    env.watch.ended(Phase::Snapshot);
    let snapshot = match loaded {
        Ok(snapshot) => snapshot,
        Err(e) => {
            crate::log::error("reconcile_skipped", &[("error", &e.to_string())]);
            return (Vec::new(), None);
        }
    };
    let wanted = reconcile(&snapshot, &Options::of(&snapshot), ctx.now);
    let (actions, deferred) = budget::within(wanted, *calls_left);
    *calls_left = calls_left.saturating_sub(budget::spent(&actions));
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
    let applied = apply_all(ctx, &actions);
    for (event, data) in &applied.analytics {
        analytics.write(emitted(analytics, event, data));
    }
    env.watch.ended(Phase::Actions);
    let seen = Seen {
        snapshot,
        rows_written,
    };
    (applied.effects, Some(seen))
}

/// The invariants, checked on the town after the side effects; each violation logged. A tick
/// that wrote no row since its snapshot (a steady town's) checks that snapshot, which finds the
/// same violations as `for_invariants` (tests/invariants_load.rs); any other reads what they
/// look at anew.
fn check_invariants(
    ctx: &Ctx<'_>,
    analytics: &Analytics<'_>,
    metrics: &mut ReconcilerMetrics,
    seen: Option<Seen>,
) {
    let unchanged = seen.filter(|s| s.rows_written == ctx.sql.counters().rows_written);
    let snapshot = match unchanged.map_or_else(|| for_invariants(ctx.sql), |s| Ok(s.snapshot)) {
        Ok(snapshot) => snapshot,
        Err(e) => return crate::log::error("invariants_skipped", &[("error", &e.to_string())]),
    };
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
    let messages: Vec<String> = violations.iter().map(|v| v.message.clone()).collect();
    analytics.violations(&messages);
}

/// The tick's wall clock and backlog into its metrics, and the domain events' points in the
/// room left beside the tick's own (reserved in the writer); returns the backlog.
fn measure<H>(
    env: &TickEnv<'_, H>,
    ctx: &Ctx<'_>,
    analytics: &Analytics<'_>,
    metrics: &mut ReconcilerMetrics,
    started: Millis,
) -> events::Backlog {
    let finished = env.clock.now_ms();
    metrics.wall_clock_ms = (finished - started).max(0) as f64;
    let backlog = events::backlog(ctx.sql, finished).unwrap_or_else(|e| {
        crate::log::error("tick_backlog_failed", &[("error", &e.to_string())]);
        events::Backlog::default()
    });
    metrics.pending_event_count = backlog.count;
    metrics.oldest_pending_age_ms = backlog.oldest_age_ms as f64;
    if let Err(e) = domain_events::report(ctx.sql, analytics, ctx.now, analytics.remaining()) {
        crate::log::error("domain_events_failed", &[("error", &e.to_string())]);
    }
    backlog
}

/// When the alarm fires next: at once for a backlog of due events, at a failed event's retry
/// when that comes first, else the town's active or idle interval.
fn rearm<H>(
    env: &TickEnv<'_, H>,
    ctx: &Ctx<'_>,
    town: &town::Town,
    backlog: &events::Backlog,
) -> Rearm {
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
    match (backlog.due, backlog.next_retry_at) {
        (due, _) if due > 0 => Rearm::Now,
        (_, Some(at)) if regular.delay_ms().is_some_and(|d| at - finished < d) => {
            Rearm::Retry((at - finished).max(0))
        }
        _ => regular,
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
