//! `cargo bench --bench tick [-- --seed N --reps N --beads A,B --events A,B --json PATH]`: the
//! alarm tick natively, over `NativeSql` (in-memory SQLite with the migrations applied), for each
//! seeded workload (`gastown_town::bench::workload`) of beads x pending events.
//!
//! Every repetition re-seeds the same workload on the same connection (so prepared statements
//! stay cached, as in the Durable Object) and times `tick::run` whole, exactly as the alarm calls
//! it, with ports that answer at once, and each of its phases (`tick::phases`) as the tick reports
//! it ended. The floor (`bench::floor`) moves the rows the tick read and wrote, on the same
//! workload; tick/floor is the ratio of the medians. Last, profiled passes split the tick and the
//! snapshot load between time inside the SQL port and the rest, and rank their statements. Prints
//! a table; `--json` keeps every figure for tests/bench/report.mjs. Figures only: nothing here
//! asserts a speed.

use gastown_town::bench::{floor, workload};
use gastown_town::metrics::point::DataPoint;
use gastown_town::metrics::writer::AnalyticsSink;
use gastown_town::reconciler::load;
use gastown_town::sql::native::NativeSql;
use gastown_town::sql::{IoCounters, Rows, Sql, SqlError, Value};
use gastown_town::store::{migrate, town};
use gastown_town::testing::http::{block_on, remotes, FakeHttp, Reply};
use gastown_town::testing::ports::{ManualClock, SequentialIds};
use gastown_town::tick::phases::{Phase, PhaseWatch, Unwatched};
use gastown_town::tick::{self, TickEnv, TickOptions, TickReport};
use gastown_town::vocabulary::config::TownConfig;
use gastown_town::vocabulary::time::Millis;
use serde_json::{json, Value as Json};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The workloads' `now` (any fixed time: every seeded time is relative to it).
const NOW: Millis = 1_795_920_000_000;
/// Profiled passes per workload (their SQL share is the median).
const PROFILED: usize = 3;

struct Args {
    seed: u64,
    reps: usize,
    beads: Vec<u32>,
    events: Vec<u32>,
    json: Option<String>,
}

fn list(s: &str) -> Vec<u32> {
    s.split(',')
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

/// One whole tick at `NOW`; every outbound call is answered at once by the fake, so the
/// figure is the town's own cost. `watch` hears its phases end.
fn tick_watched(sql: &dyn Sql, watch: &dyn PhaseWatch) -> TickReport {
    let ids = SequentialIds::new("bench");
    let clock = ManualClock::at(NOW);
    let http = FakeHttp::new();
    http.always("*", "*", Reply::ok(json!({"status": "running"})));
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
    block_on(tick::run(&env))
}

fn tick_once(sql: &dyn Sql) -> TickReport {
    tick_watched(sql, &Unwatched)
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
    let db = NativeSql::in_memory();
    migrate::migrate(&db, NOW).expect("migrations apply");
    town::put(&db, "bench", "bench-owner", &TownConfig::default(), NOW).expect("a town");
    let samples: Vec<Duration> = (0..reps)
        .map(|_| timed(|| floor::statements(&db, STATEMENTS).expect("the statements run")).0)
        .collect();
    json!({
        "count": STATEMENTS,
        "per_statement_us": median_ms(&samples) * 1000.0 / STATEMENTS as f64,
    })
}

fn measure(spec: &workload::Spec, reps: usize) -> Json {
    let db = NativeSql::in_memory();
    migrate::migrate(&db, NOW).expect("migrations apply");
    town::put(&db, "bench", "bench-owner", &TownConfig::default(), NOW).expect("a town");
    let seed = |db: &NativeSql| workload::seed(db, spec, NOW).expect("the workload seeds");

    // A first tick, untimed: warms the statement cache and counts the tick's rows.
    let seeded = seed(&db);
    let (counters, statements) = (db.counters(), db.statements());
    let first = tick_once(&db);
    let rows = delta(db.counters(), counters);
    let statements = db.statements() - statements;

    let (mut seeds, mut ticks) = (vec![], vec![]);
    let mut phases: HashMap<Phase, Vec<Duration>> = HashMap::new();
    for _ in 0..reps {
        seeds.push(timed(|| seed(&db)).0);
        let before = db.counters();
        let stopwatch = Stopwatch::start();
        let (time, report) = timed(|| tick_watched(&db, &stopwatch));
        ticks.push(time);
        assert_eq!(
            delta(db.counters(), before),
            rows,
            "every tick sees the same workload"
        );
        assert_eq!(report.metrics, first.metrics);
        for (phase, time) in stopwatch.times.take() {
            phases.entry(phase).or_default().push(time);
        }
    }

    seed(&db);
    let target = floor::Rows {
        reads: rows.rows_read,
        writes: rows.rows_written,
    };
    assert_eq!(
        floor::run(&db, target, NOW).expect("the floor runs"),
        target
    );
    let floors: Vec<Duration> = (0..reps)
        .map(|_| timed(|| floor::run(&db, target, NOW).expect("the floor runs")).0)
        .collect();

    let tick_profile = profile(
        &db,
        || {
            seed(&db);
        },
        |sql| {
            tick_once(sql);
        },
    );
    let load_profile = profile(
        &db,
        || {},
        |sql| {
            load::snapshot(sql, NOW).expect("the snapshot loads");
        },
    );

    let tick = stats(&ticks);
    let floor = stats(&floors);
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
        "phases": Phase::ALL
            .iter()
            .map(|p| {
                let times = phases.get(p);
                let times = times.unwrap_or_else(|| panic!("no tick ended {}", p.name()));
                (p.name().to_owned(), stats(times))
            })
            .collect::<serde_json::Map<_, _>>(),
        "actions": first.metrics.actions_emitted,
        "violations": first.metrics.invariant_violations,
        "floor": floor,
        "tick_over_floor": tick["median_ms"].as_f64().unwrap() / floor["median_ms"].as_f64().unwrap(),
        "tick_profile": tick_profile,
        "snapshot_load_profile": load_profile,
    })
}

fn main() {
    let args = args();
    let options = TickOptions::default();
    println!(
        "native tick over rusqlite (in-memory, migrations applied): seed {}, {} repetitions per \
         workload, drain limit {}",
        args.seed, args.reps, options.drain_limit
    );
    println!(
        "{:>6} {:>6} | {:>7} {:>5} {:>13} | {:>9} {:>9} | {:>9} {:>6} | {:>8} {:>9} {:>9} | {:>7} {:>4}",
        "beads", "events", "drained", "stmts", "rows r/w", "tick med", "tick p95", "floor med",
        "t/f", "load", "reconcile", "invariant", "actions", "sql%"
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
            let f = |path: &[&str]| {
                path.iter()
                    .fold(&w, |v, k| &v[*k])
                    .as_f64()
                    .expect("a figure")
            };
            println!(
                "{:>6} {:>6} | {:>7} {:>5} {:>13} | {:>9.3} {:>9.3} | {:>9.3} {:>6.2} | {:>8.3} {:>9.3} {:>9.3} | {:>7} {:>4.0}",
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
                100.0 * f(&["tick_profile", "sql_share"]),
            );
            workloads.push(w);
        }
    }
    println!("times in ms (median and p95); t/f = tick/floor medians; load, reconcile and invariant: those phases of the tick (medians); actions: the tick's reconcile emitted; sql% = share of the tick spent inside the SQL port");
    if let Some(last) = workloads.last() {
        for (what, key) in [
            ("tick", "tick_profile"),
            ("snapshot load", "snapshot_load_profile"),
        ] {
            println!(
                "\nstatements of the {what} by time, beads {} events {} (one profiled run):",
                last["beads"], last["events"]
            );
            for s in last[key]["statements"].as_array().into_iter().flatten() {
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
    let statements = statement_floor(args.reps);
    println!(
        "\nstatement floor: {:.2} us per statement (a point read of the town row)",
        statements["per_statement_us"].as_f64().unwrap_or_default()
    );
    if let Some(path) = args.json {
        let doc = json!({
            "seed": args.seed,
            "reps": args.reps,
            "drain_limit": options.drain_limit,
            "workloads": workloads,
            "statement_floor": statements,
        });
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&doc).expect("serializes"),
        )
        .unwrap_or_else(|e| panic!("writing {path}: {e}"));
        println!("\nwrote {path}");
    }
}
