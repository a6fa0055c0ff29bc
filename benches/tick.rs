//! `cargo bench --bench tick [-- --seed N --reps N --beads A,B --events A,B --steady A,B --json
//! PATH]`: the alarm tick natively, over `NativeSql` (in-memory SQLite with the migrations
//! applied), for each seeded backlog workload (`gastown_town::bench::workload`) of beads x
//! pending events, then for each steady town of `--steady` beads (none for an empty list).
//!
//! Backlog: every repetition re-seeds the same workload on the same connection (so prepared
//! statements stay cached, as in the Durable Object) and times `tick::run` whole, exactly as the
//! alarm calls it, with ports that answer at once, and each of its phases (`tick::phases`) as the
//! tick reports it ended. Steady: the town is seeded once and ticked until a tick's reconciler
//! emits nothing (at most [`MAX_SETTLING`] ticks, else the bench fails), then the same town is
//! timed tick after tick without re-seeding; a timed tick that emits an action is counted. The
//! clock stays at the seeding time throughout (every heartbeat stays fresh and no PR poll comes
//! due again: the ticks a town at rest runs every 5 s between two polls).
//!
//! The remotes are a stand-in ([`Standin`]) that answers every request at once and counts them:
//! the remote calls per tick, against the tick's budget (`TICK_SUBREQUEST_BUDGET`). The floor
//! (`bench::floor`) moves the rows the tick read and wrote, on the same town; tick/floor is the
//! ratio of the medians. Last, profiled passes split the tick and the snapshot load between time
//! inside the SQL port and the rest, and rank their statements. Prints tables; `--json` keeps
//! every figure for tests/bench/report.mjs. Figures only: nothing here asserts a speed.

use gastown_town::bench::{floor, workload};
use gastown_town::jwt;
use gastown_town::metrics::point::DataPoint;
use gastown_town::metrics::writer::AnalyticsSink;
use gastown_town::ports::{Http, HttpError, HttpRequest, HttpResponse};
use gastown_town::reconciler::load;
use gastown_town::sql::native::NativeSql;
use gastown_town::sql::{IoCounters, Rows, Sql, SqlError, Value};
use gastown_town::store::{migrate, town};
use gastown_town::testing::http::{block_on, path_of, remotes};
use gastown_town::testing::ports::{ManualClock, SequentialIds};
use gastown_town::tick::phases::{Phase, PhaseWatch, Unwatched};
use gastown_town::tick::{self, TickEnv, TickOptions, TickReport};
use gastown_town::vocabulary::config::TownConfig;
use gastown_town::vocabulary::time::Millis;
use serde_json::{json, Value as Json};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// The workloads' `now` (any fixed time: every seeded time is relative to it).
const NOW: Millis = 1_795_920_000_000;
/// Profiled passes per workload (their SQL share is the median).
const PROFILED: usize = 3;
/// Most ticks a steady town may take to settle.
const MAX_SETTLING: usize = 20;

struct Args {
    seed: u64,
    reps: usize,
    beads: Vec<u32>,
    events: Vec<u32>,
    steady: Vec<u32>,
    json: Option<String>,
}

fn list(s: &str) -> Vec<u32> {
    s.split(',')
        .filter(|n| !n.trim().is_empty())
        .map(|n| {
            n.trim()
                .replace('_', "")
                .parse()
                .expect("a list of numbers")
        })
        .collect()
}

fn args() -> Args {
    let mut a = Args {
        seed: 20_261_129,
        reps: 25,
        beads: vec![100, 1_000, 10_000],
        events: vec![0, 100, 1_000, 10_000],
        steady: vec![100, 1_000, 10_000],
        json: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        // `cargo bench` passes `--bench` to every bench binary.
        if flag == "--bench" {
            continue;
        }
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--seed" => a.seed = value.parse().expect("--seed N"),
            "--reps" => a.reps = value.parse::<usize>().expect("--reps N").max(1),
            "--beads" => a.beads = list(&value),
            "--events" => a.events = list(&value),
            "--steady" => a.steady = list(&value),
            "--json" => a.json = Some(value),
            _ => panic!("unknown flag {flag}"),
        }
    }
    a
}

/// Drops every point (the Analytics Engine answering at once).
struct Discard;

impl AnalyticsSink for Discard {
    fn write(&self, _point: &DataPoint) -> Result<(), String> {
        Ok(())
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Median and p95 (nearest rank) in milliseconds.
fn stats(samples: &[Duration]) -> Json {
    let mut v: Vec<f64> = samples.iter().copied().map(ms).collect();
    v.sort_by(f64::total_cmp);
    let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    json!({"median_ms": rank(0.5), "p95_ms": rank(0.95), "samples": v.len()})
}

fn median_ms(samples: &[Duration]) -> f64 {
    stats(samples)["median_ms"].as_f64().unwrap()
}

fn timed<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let out = f();
    (start.elapsed(), out)
}

/// The container and GitHub: every request answered at once with 200 `{"status":"running"}`,
/// as the stand-in of tests/bench/serve.mjs does, and counted. `healthy` also answers a read of a
/// pull request with an open PR, as GitHub does for the PRs a steady town keeps under review.
struct Standin {
    healthy: bool,
    calls: Cell<usize>,
}

const RUNNING: &str = r#"{"status":"running"}"#;
const OPEN_PR: &str = r#"{"state":"open","merged":false}"#;

impl Standin {
    fn new(healthy: bool) -> Self {
        Self {
            healthy,
            calls: Cell::new(0),
        }
    }
}

/// `/repos/{owner}/{repo}/pulls/{number}`.
fn is_pull(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    matches!(parts.as_slice(), ["", "repos", _, _, "pulls", n] if n.parse::<u64>().is_ok())
}

impl Http for Standin {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        self.calls.set(self.calls.get() + 1);
        let pull = request.method == "GET" && is_pull(path_of(&request.url));
        let body = if self.healthy && pull {
            OPEN_PR
        } else {
            RUNNING
        };
        Ok(HttpResponse {
            status: 200,
            body: body.to_owned(),
        })
    }
}

/// One whole tick at `NOW`; every outbound call is answered at once by `http`, so the figure
/// is the town's own cost. `watch` hears its phases end. Answers the report and the calls made.
fn tick_watched(sql: &dyn Sql, watch: &dyn PhaseWatch, healthy: bool) -> (TickReport, usize) {
    let ids = SequentialIds::new("bench");
    let clock = ManualClock::at(NOW);
    let http = Standin::new(healthy);
    let remotes = remotes();
    let env = TickEnv {
        sql,
        ids: &ids,
        clock: &clock,
        sink: &Discard,
        http: &http,
        remotes: &remotes,
        options: TickOptions::default(),
        watch,
    };
    let report = block_on(tick::run(&env));
    (report, http.calls.get())
}

fn tick_once(sql: &dyn Sql, healthy: bool) -> (TickReport, usize) {
    tick_watched(sql, &Unwatched, healthy)
}

/// Times the phases of one tick: each from the end of the one before (or the stopwatch's start).
struct Stopwatch {
    last: Cell<Instant>,
    times: RefCell<HashMap<Phase, Duration>>,
}

impl Stopwatch {
    fn start() -> Self {
        Self {
            last: Cell::new(Instant::now()),
            times: RefCell::new(HashMap::new()),
        }
    }
}

impl PhaseWatch for Stopwatch {
    fn ended(&self, phase: Phase) {
        let now = Instant::now();
        self.times.borrow_mut().insert(phase, now - self.last.get());
        self.last.set(now);
    }
}

fn delta(after: IoCounters, before: IoCounters) -> IoCounters {
    IoCounters {
        rows_read: after.rows_read - before.rows_read,
        rows_written: after.rows_written - before.rows_written,
    }
}

/// Time and rows of one statement text in a profiled tick.
#[derive(Default)]
struct Stat {
    calls: u64,
    time: Duration,
    rows: u64,
}

/// The SQL port, timing every statement and savepoint it runs.
struct Profiled<'a> {
    inner: &'a NativeSql,
    inside: Cell<Duration>,
    stats: RefCell<HashMap<String, Stat>>,
}

impl<'a> Profiled<'a> {
    fn new(inner: &'a NativeSql) -> Self {
        Self {
            inner,
            inside: Cell::new(Duration::ZERO),
            stats: RefCell::new(HashMap::new()),
        }
    }

    fn record(&self, sql: &str, time: Duration, rows: u64) {
        self.inside.set(self.inside.get() + time);
        let key = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut stats = self.stats.borrow_mut();
        let s = stats.entry(key).or_default();
        s.calls += 1;
        s.time += time;
        s.rows += rows;
    }
}

impl Sql for Profiled<'_> {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, SqlError> {
        let before = self.inner.counters();
        let (time, rows) = timed(|| self.inner.query(sql, params));
        let moved = delta(self.inner.counters(), before);
        self.record(sql, time, moved.rows_read + moved.rows_written);
        rows
    }

    fn batch(&self, sql: &str) -> Result<(), SqlError> {
        let (time, out) = timed(|| self.inner.batch(sql));
        self.record(sql, time, 0);
        out
    }

    fn atomic(&self, body: &mut dyn FnMut() -> bool) -> Result<(), SqlError> {
        let mut in_body = Duration::ZERO;
        let (time, out) = timed(|| {
            self.inner.atomic(&mut || {
                let (t, keep) = timed(&mut *body);
                in_body += t;
                keep
            })
        });
        self.record("SAVEPOINT ... RELEASE (atomic unit)", time - in_body, 0);
        out
    }

    fn counters(&self) -> IoCounters {
        self.inner.counters()
    }
}

/// Runs `f` over a profiling port [`PROFILED`] times, each after `prepare`: the median share of
/// its time spent inside the port, and the slowest statements of the last run.
fn profile(db: &NativeSql, prepare: impl Fn(), f: impl Fn(&dyn Sql)) -> Json {
    let mut shares = Vec::new();
    let mut last = HashMap::new();
    for _ in 0..PROFILED {
        prepare();
        let profiled = Profiled::new(db);
        let (time, ()) = timed(|| f(&profiled));
        shares.push(profiled.inside.get().as_secs_f64() / time.as_secs_f64());
        last = profiled.stats.take();
    }
    shares.sort_by(f64::total_cmp);
    let mut slowest: Vec<(String, Stat)> = last.into_iter().collect();
    slowest.sort_by_key(|s| std::cmp::Reverse(s.1.time));
    let statements: Vec<Json> = slowest
        .into_iter()
        .take(6)
        .map(|(sql, s)| json!({"sql": sql, "calls": s.calls, "ms": ms(s.time), "rows": s.rows}))
        .collect();
    json!({"sql_share": shares[PROFILED / 2], "statements": statements})
}

/// The cost of one statement natively: `STATEMENTS` point reads of the town row
/// (`floor::statements`), median over the repetitions, per statement.
fn statement_floor(reps: usize) -> Json {
    const STATEMENTS: u64 = 5_000;
    let db = town_db();
    let samples: Vec<Duration> = (0..reps)
        .map(|_| timed(|| floor::statements(&db, STATEMENTS).expect("the statements run")).0)
        .collect();
    json!({
        "count": STATEMENTS,
        "per_statement_us": median_ms(&samples) * 1000.0 / STATEMENTS as f64,
    })
}

/// A fresh in-memory town with the migrations applied.
fn town_db() -> NativeSql {
    let db = NativeSql::in_memory();
    migrate::migrate(&db, NOW).expect("migrations apply");
    town::put(&db, "bench", "bench-owner", &TownConfig::default(), NOW).expect("a town");
    db
}

/// The timed ticks of a workload: each one's time, rows, statements, remote calls, actions and
/// phases.
#[derive(Default)]
struct Ticks {
    times: Vec<Duration>,
    rows: Vec<IoCounters>,
    statements: Vec<u64>,
    calls: Vec<usize>,
    actions: Vec<u64>,
    /// Actions of all the ticks, by type.
    by_type: BTreeMap<String, u64>,
    phases: HashMap<Phase, Vec<Duration>>,
}

impl Ticks {
    /// Times one tick of `db`.
    fn run(&mut self, db: &NativeSql, healthy: bool) -> TickReport {
        let (before, statements) = (db.counters(), db.statements());
        let stopwatch = Stopwatch::start();
        let (time, (report, calls)) = timed(|| tick_watched(db, &stopwatch, healthy));
        self.times.push(time);
        self.rows.push(delta(db.counters(), before));
        self.statements.push(db.statements() - statements);
        self.calls.push(calls);
        self.actions.push(report.metrics.actions_emitted);
        for (kind, count) in &report.metrics.actions_by_type {
            *self.by_type.entry(kind.clone()).or_default() += count;
        }
        for (phase, time) in stopwatch.times.take() {
            self.phases.entry(phase).or_default().push(time);
        }
        report
    }

    fn phases_json(&self) -> Json {
        Phase::ALL
            .iter()
            .map(|p| {
                let times = self.phases.get(p);
                let times = times.unwrap_or_else(|| panic!("no tick ended {}", p.name()));
                (p.name().to_owned(), stats(times))
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    }

    /// The remote calls per tick (median and most) against the budget the ticks ran with.
    fn calls_json(&self) -> Json {
        let mut calls = self.calls.clone();
        calls.sort_unstable();
        let budget = remotes().subrequest_budget;
        let most = calls.last().copied().unwrap_or_default();
        json!({
            "median": calls.get(calls.len() / 2).copied().unwrap_or_default(),
            "max": most,
            "budget": budget,
            "within": most <= budget,
        })
    }
}

/// The median of `xs` (the upper one of an even count).
fn median<T: Copy + Ord>(xs: &[T]) -> T {
    let mut v = xs.to_vec();
    v.sort_unstable();
    v[v.len() / 2]
}

/// The floor of `rows` on `db` (after `prepare`), timed `reps` times.
fn floor_of(db: &NativeSql, rows: IoCounters, reps: usize, prepare: impl Fn()) -> Json {
    prepare();
    let target = floor::Rows {
        reads: rows.rows_read,
        writes: rows.rows_written,
    };
    assert_eq!(floor::run(db, target, NOW).expect("the floor runs"), target);
    let floors: Vec<Duration> = (0..reps)
        .map(|_| timed(|| floor::run(db, target, NOW).expect("the floor runs")).0)
        .collect();
    stats(&floors)
}

fn measure(spec: &workload::Spec, reps: usize) -> Json {
    let db = town_db();
    let seed = |db: &NativeSql| workload::seed(db, spec, NOW).expect("the workload seeds");

    // A first tick, untimed: warms the statement cache and counts the tick's rows.
    let seeded = seed(&db);
    let (counters, statements) = (db.counters(), db.statements());
    let (first, _) = tick_once(&db, false);
    let rows = delta(db.counters(), counters);
    let statements = db.statements() - statements;

    let mut seeds = vec![];
    let mut ticks = Ticks::default();
    for _ in 0..reps {
        seeds.push(timed(|| seed(&db)).0);
        let report = ticks.run(&db, false);
        assert_eq!(
            ticks.rows.last(),
            Some(&rows),
            "every tick sees the same workload"
        );
        assert_eq!(report.metrics, first.metrics);
    }

    let floor = floor_of(&db, rows, reps, || {
        seed(&db);
    });
    let tick_profile = profile(
        &db,
        || {
            seed(&db);
        },
        |sql| {
            tick_once(sql, false);
        },
    );
    let load_profile = snapshot_load_profile(&db);

    let tick = stats(&ticks.times);
    json!({
        "beads": spec.beads,
        "events": spec.events,
        "rows_seeded": seeded.rows,
        "seed_ms": median_ms(&seeds),
        "drained": first.metrics.events_drained,
        "pending_after": first.metrics.pending_event_count,
        "statements": statements,
        "rows": {"read": rows.rows_read, "written": rows.rows_written},
        "tick": tick,
        "phases": ticks.phases_json(),
        "actions": first.metrics.actions_emitted,
        "actions_by_type": first.metrics.actions_by_type,
        "remote_calls": ticks.calls_json(),
        "violations": first.metrics.invariant_violations,
        "floor": floor,
        "tick_over_floor": tick["median_ms"].as_f64().unwrap() / floor["median_ms"].as_f64().unwrap(),
        "tick_profile": tick_profile,
        "snapshot_load_profile": load_profile,
    })
}

/// The profiled snapshot load of the town as it stands.
fn snapshot_load_profile(db: &NativeSql) -> Json {
    profile(
        db,
        || {},
        |sql| {
            load::snapshot(sql, NOW).expect("the snapshot loads");
        },
    )
}

/// A steady town of `beads`: seeded once, ticked until its reconciler emits nothing, then timed
/// tick after tick as it stands.
fn measure_steady(beads: u32, seed: u64, reps: usize) -> Json {
    let spec = workload::Spec {
        beads,
        events: 0,
        seed,
    };
    let db = town_db();
    let steady = workload::Kind::Steady;
    let (seed_time, seeded) =
        timed(|| workload::seed_kind(&db, steady, &spec, NOW).expect("the town seeds"));
    let mut settling: Vec<Json> = Vec::new();
    loop {
        let (report, calls) = tick_once(&db, true);
        let m = &report.metrics;
        settling.push(json!({"actions": m.actions_by_type, "calls": calls}));
        if m.actions_emitted == 0 {
            break;
        }
        assert!(
            settling.len() < MAX_SETTLING,
            "the steady town of {beads} beads did not settle in {MAX_SETTLING} ticks: {settling:?}"
        );
    }

    let mut ticks = Ticks::default();
    let mut violations = 0;
    for _ in 0..reps {
        violations += ticks.run(&db, true).metrics.invariant_violations;
    }
    let rows = IoCounters {
        rows_read: median(&ticks.rows.iter().map(|r| r.rows_read).collect::<Vec<_>>()),
        rows_written: median(
            &ticks
                .rows
                .iter()
                .map(|r| r.rows_written)
                .collect::<Vec<_>>(),
        ),
    };
    // The town as it stands: nothing to prepare between passes.
    let tick_profile = profile(
        &db,
        || {},
        |sql| {
            tick_once(sql, true);
        },
    );
    let load_profile = snapshot_load_profile(&db);
    // Last: the floor's writes touch the town's beads.
    let floor = floor_of(&db, rows, reps, || {});

    let tick = stats(&ticks.times);
    json!({
        "kind": "steady",
        "beads": beads,
        "rows_seeded": seeded.rows,
        "seed_ms": ms(seed_time),
        "settling_ticks": settling.len(),
        "settling": settling,
        "statements": median(&ticks.statements),
        "rows": {"read": rows.rows_read, "written": rows.rows_written},
        "tick": tick,
        "phases": ticks.phases_json(),
        "actions": ticks.actions.iter().sum::<u64>(),
        "actions_by_type": ticks.by_type,
        "ticks_with_actions": ticks.actions.iter().filter(|a| **a > 0).count(),
        "remote_calls": ticks.calls_json(),
        "violations": violations,
        "floor": floor,
        "tick_over_floor": tick["median_ms"].as_f64().unwrap() / floor["median_ms"].as_f64().unwrap(),
        "tick_profile": tick_profile,
        "snapshot_load_profile": load_profile,
    })
}

/// What signing one agent token costs (`jwt::sign_agent`, once per agent start), median over
/// the repetitions: the part of a dispatch-heavy tick that is JWT signing.
fn jwt_cost(reps: usize) -> Json {
    const SIGNATURES: u32 = 2_000;
    let samples: Vec<Duration> = (0..reps)
        .map(|_| {
            timed(|| {
                for i in 0..SIGNATURES {
                    let agent = format!("agent-{i:05}");
                    std::hint::black_box(jwt::sign_agent(
                        "bench-jwt-secret",
                        &agent,
                        "rig-00",
                        "bench",
                        "bench-owner",
                        NOW,
                    ));
                }
            })
            .0
        })
        .collect();
    json!({
        "count": SIGNATURES,
        "per_signature_us": median_ms(&samples) * 1000.0 / f64::from(SIGNATURES),
    })
}

fn print_statements(w: &Json) {
    for (what, key) in [
        ("tick", "tick_profile"),
        ("snapshot load", "snapshot_load_profile"),
    ] {
        println!(
            "\nstatements of the {what} by time, beads {} events {} (one profiled run):",
            w["beads"],
            w.get("events").unwrap_or(&json!("steady"))
        );
        for s in w[key]["statements"].as_array().into_iter().flatten() {
            let sql = s["sql"].as_str().unwrap_or_default();
            println!(
                "  {:>8.3} ms {:>6} calls {:>7} rows  {}",
                s["ms"].as_f64().unwrap_or_default(),
                s["calls"].to_string(),
                s["rows"].to_string(),
                sql.chars().take(110).collect::<String>()
            );
        }
    }
}

/// A figure of `w` at `path`.
fn figure(w: &Json, path: &[&str]) -> f64 {
    path.iter()
        .fold(w, |v, k| &v[*k])
        .as_f64()
        .expect("a figure")
}

fn main() {
    let args = args();
    let options = TickOptions::default();
    println!(
        "native tick over rusqlite (in-memory, migrations applied): seed {}, {} repetitions per \
         workload, drain limit {}, remote calls budget {}",
        args.seed,
        args.reps,
        options.drain_limit,
        remotes().subrequest_budget
    );
    println!(
        "{:>6} {:>6} | {:>7} {:>5} {:>13} | {:>9} {:>9} | {:>9} {:>6} | {:>8} {:>9} {:>9} | {:>7} {:>5} {:>4}",
        "beads", "events", "drained", "stmts", "rows r/w", "tick med", "tick p95", "floor med",
        "t/f", "load", "reconcile", "invariant", "actions", "calls", "sql%"
    );
    let mut workloads = Vec::new();
    for &beads in &args.beads {
        for &events in &args.events {
            let spec = workload::Spec {
                beads,
                events,
                seed: args.seed,
            };
            let w = measure(&spec, args.reps);
            let f = |path: &[&str]| figure(&w, path);
            println!(
                "{:>6} {:>6} | {:>7} {:>5} {:>13} | {:>9.3} {:>9.3} | {:>9.3} {:>6.2} | {:>8.3} {:>9.3} {:>9.3} | {:>7} {:>5} {:>4.0}",
                beads,
                events,
                w["drained"].to_string(),
                w["statements"].to_string(),
                format!("{}/{}", w["rows"]["read"], w["rows"]["written"]),
                f(&["tick", "median_ms"]),
                f(&["tick", "p95_ms"]),
                f(&["floor", "median_ms"]),
                f(&["tick_over_floor"]),
                f(&["phases", "snapshot", "median_ms"]),
                f(&["phases", "reconcile", "median_ms"]),
                f(&["phases", "invariants", "median_ms"]),
                w["actions"].to_string(),
                w["remote_calls"]["max"].to_string(),
                100.0 * f(&["tick_profile", "sql_share"]),
            );
            workloads.push(w);
        }
    }
    println!("times in ms (median and p95); t/f = tick/floor medians; load, reconcile and invariant: those phases of the tick (medians); actions: the tick's reconcile emitted; calls: remote calls of the tick (most); sql% = share of the tick spent inside the SQL port");
    if let Some(last) = workloads.last() {
        print_statements(last);
    }

    let mut steady = Vec::new();
    if !args.steady.is_empty() {
        println!(
            "\nsteady towns (settled, then ticked as they stand):\n{:>6} | {:>7} {:>5} {:>11} | {:>9} {:>9} | {:>9} {:>6} | {:>7} {:>7} {:>5} {:>4}",
            "beads", "settled", "stmts", "rows r/w", "tick med", "tick p95", "floor med", "t/f",
            "actions", "loud", "calls", "sql%"
        );
    }
    for &beads in &args.steady {
        let w = measure_steady(beads, args.seed, args.reps);
        let f = |path: &[&str]| figure(&w, path);
        println!(
            "{:>6} | {:>7} {:>5} {:>11} | {:>9.3} {:>9.3} | {:>9.3} {:>6.2} | {:>7} {:>7} {:>5} {:>4.0}",
            beads,
            w["settling_ticks"].to_string(),
            w["statements"].to_string(),
            format!("{}/{}", w["rows"]["read"], w["rows"]["written"]),
            f(&["tick", "median_ms"]),
            f(&["tick", "p95_ms"]),
            f(&["floor", "median_ms"]),
            f(&["tick_over_floor"]),
            w["actions"].to_string(),
            w["ticks_with_actions"].to_string(),
            w["remote_calls"]["max"].to_string(),
            100.0 * f(&["tick_profile", "sql_share"]),
        );
        steady.push(w);
    }
    if !steady.is_empty() {
        println!("settled: ticks until the first that emitted nothing (that one included); actions: emitted by the timed ticks, loud: timed ticks that emitted any");
    }
    if let Some(last) = steady.last() {
        print_statements(last);
    }

    let statements = statement_floor(args.reps);
    println!(
        "\nstatement floor: {:.2} us per statement (a point read of the town row)",
        statements["per_statement_us"].as_f64().unwrap_or_default()
    );
    let jwt = jwt_cost(args.reps);
    println!(
        "JWT: {:.2} us per agent token signed (one per agent start)",
        jwt["per_signature_us"].as_f64().unwrap_or_default()
    );
    if let Some(path) = args.json {
        let doc = json!({
            "seed": args.seed,
            "reps": args.reps,
            "drain_limit": options.drain_limit,
            "subrequest_budget": remotes().subrequest_budget,
            "workloads": workloads,
            "steady": steady,
            "statement_floor": statements,
            "jwt": jwt,
        });
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&doc).expect("serializes"),
        )
        .unwrap_or_else(|e| panic!("writing {path}: {e}"));
        println!("\nwrote {path}");
    }
}
