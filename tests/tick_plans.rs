//! Every statement of a busy tick reaches the tables that grow with the town's history through
//! an index: none of them scans beads, their history, events, dependencies, nudges, review or
//! convoy rows, or the tick history. A scan of a partial index is allowed (it holds only the
//! pending rows); agents, rigs and the town row may be scanned (they grow with the fleet, not
//! with its history, and the snapshot reads every agent by design).
//!
//! The tick runs over a seeded workload of 1,000 beads with 1,000 pending events (the bench's,
//! `gastown_town::bench::workload`), every statement it runs is recorded with its parameters,
//! and each is then planned by SQLite (`EXPLAIN QUERY PLAN`) on the town the tick left.

mod recording;

use gastown_town::bench::workload::{self, Spec};
use gastown_town::sql::native::NativeSql;
use gastown_town::sql::{Sql, Value};
use gastown_town::store::{migrate, town};
use gastown_town::testing::http::{block_on, FakeHttp, Reply};
use gastown_town::testing::ports::{ManualClock, RecordingSink, SequentialIds};
use gastown_town::testing::town::*;
use gastown_town::tick::phases::Unwatched;
use gastown_town::tick::{self, TickEnv, TickOptions};
use gastown_town::vocabulary::config::TownConfig;
use recording::Recording;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// The tables whose rows accumulate with the town's history.
const GROWING: [&str; 8] = [
    "beads",
    "bead_events",
    "town_events",
    "bead_dependencies",
    "agent_nudges",
    "review_metadata",
    "convoy_metadata",
    "tick_metrics",
];

/// The statements of one tick over the workload, and the database it left.
fn busy_tick() -> (NativeSql, BTreeMap<String, Vec<Value>>) {
    let db = NativeSql::in_memory();
    migrate::migrate(&db, T0).unwrap();
    town::put(&db, "plans", "owner", &TownConfig::default(), T0).unwrap();
    let spec = Spec {
        beads: 1_000,
        events: 1_000,
        seed: 20_261_129,
    };
    workload::seed(&db, &spec, T0).unwrap();
    let recording = Recording::new(&db);
    let http = FakeHttp::new();
    http.always("*", "*", Reply::ok(json!({"status": "running"})));
    let (ids, clock, sink, remotes) = (
        SequentialIds::new("plans"),
        ManualClock::at(T0),
        RecordingSink::default(),
        remotes(),
    );
    let report = block_on(tick::run(&TickEnv {
        sql: &recording,
        ids: &ids,
        clock: &clock,
        sink: &sink,
        http: &http,
        remotes: &remotes,
        options: TickOptions::default(),
        watch: &Unwatched,
    }));
    assert!(report.metrics.events_drained > 0, "{:?}", report.metrics);
    assert!(report.metrics.side_effects_attempted > 0);
    // Each text once, with the parameters of its first run.
    let mut statements = BTreeMap::new();
    for (sql, params) in recording.into_statements() {
        statements.entry(sql).or_insert(params);
    }
    (db, statements)
}

/// The table each name in `sql` stands for: `FROM t a` / `JOIN t AS a` make `a` mean `t`, and a
/// table's own name means itself.
fn aliases(sql: &str) -> BTreeMap<String, String> {
    let words: Vec<&str> = sql
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let mut out = BTreeMap::new();
    for (i, w) in words.iter().enumerate() {
        let introduces = ["FROM", "JOIN", "INTO", "UPDATE"].contains(&w.to_uppercase().as_str());
        let Some(table) = words.get(i + 1).filter(|_| introduces) else {
            continue;
        };
        out.insert((*table).to_owned(), (*table).to_owned());
        let mut next = words.get(i + 2).copied();
        if next.is_some_and(|n| n.eq_ignore_ascii_case("AS")) {
            next = words.get(i + 3).copied();
        }
        if let Some(alias) =
            next.filter(|a| a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            out.entry(alias.to_owned())
                .or_insert_with(|| (*table).to_owned());
        }
    }
    out
}

/// The partial indexes of the schema (`CREATE INDEX ... WHERE ...`).
fn partial_indexes(db: &NativeSql) -> BTreeSet<String> {
    db.query(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '% WHERE %'",
        &[],
    )
    .unwrap()
    .into_iter()
    .map(|r| r.text("name").unwrap())
    .collect()
}

/// The plan lines of `sql` that scan a growing table other than through a partial index.
fn full_scans(
    db: &NativeSql,
    sql: &str,
    params: &[Value],
    partial: &BTreeSet<String>,
) -> Vec<String> {
    let names = aliases(sql);
    db.query(&format!("EXPLAIN QUERY PLAN {sql}"), params)
        .unwrap()
        .into_iter()
        .map(|row| row.text("detail").unwrap())
        .filter(|detail| {
            let Some(rest) = detail.strip_prefix("SCAN ") else {
                return false;
            };
            let name = rest.split_whitespace().next().unwrap_or("");
            let table = names.get(name).map_or(name, String::as_str);
            let through_partial = partial.iter().any(|i| rest.contains(&format!("INDEX {i}")));
            GROWING.contains(&table) && !through_partial
        })
        .collect()
}

#[test]
fn no_statement_of_a_busy_tick_scans_a_table_that_grows_with_history() {
    let (db, statements) = busy_tick();
    let partial = partial_indexes(&db);
    assert!(partial.contains("idx_town_events_pending"), "{partial:?}");
    assert!(statements.len() > 40, "{} statements", statements.len());
    let scans: Vec<String> = statements
        .iter()
        .flat_map(|(sql, params)| {
            full_scans(&db, sql, params, &partial)
                .into_iter()
                .map(move |line| {
                    format!(
                        "{line}\n  in {}",
                        sql.split_whitespace().collect::<Vec<_>>().join(" ")
                    )
                })
        })
        .collect();
    assert!(scans.is_empty(), "{}", scans.join("\n"));
}

#[test]
fn a_scan_of_a_growing_table_is_found_through_its_alias() {
    let db = NativeSql::in_memory();
    migrate::migrate(&db, T0).unwrap();
    let partial = partial_indexes(&db);
    let scan = "SELECT b.bead_id FROM beads AS b WHERE b.title = ?";
    assert_eq!(full_scans(&db, scan, &["x".into()], &partial), ["SCAN b"]);
    let search = "SELECT b.bead_id FROM beads b WHERE b.bead_id = ?";
    assert!(full_scans(&db, search, &["x".into()], &partial).is_empty());
    let pending = "SELECT COUNT(*) AS n FROM town_events WHERE processed_at IS NULL";
    assert!(full_scans(&db, pending, &[], &partial).is_empty());
    let agents = "SELECT a.bead_id FROM agent_metadata a WHERE a.name = ?";
    assert!(full_scans(&db, agents, &["x".into()], &partial).is_empty());
}
