//! The store and the tick over real SQLite: migrations, the event log and a tick's bookkeeping.

use gastown_town::metrics::layout;
use gastown_town::sql::native::NativeSql;
use gastown_town::sql::Sql;
use gastown_town::store::events::{self, Subject};
use gastown_town::store::{migrate, town};
use gastown_town::testing::http::{block_on, FakeHttp};
use gastown_town::testing::ports::{ManualClock, RecordingSink, SequentialIds};
use gastown_town::tick::phases::{Phase, PhaseWatch, Unwatched};
use gastown_town::tick::{self, Rearm, TickEnv, TickOptions, TickReport};
use gastown_town::vocabulary::config::TownConfig;
use gastown_town::vocabulary::events::{EventKind, NoPayload};
use gastown_town::vocabulary::time::{iso, HOUR, SECOND};
use std::cell::RefCell;

use gastown_town::testing::town::remotes;

const T0: i64 = 1_795_920_000_000;

fn schema() -> NativeSql {
    let db = NativeSql::in_memory();
    migrate::migrate(&db, T0).unwrap();
    db
}

/// One tick at `now`; these towns have no agents, so no remote is called.
fn tick_at(db: &NativeSql, sink: &RecordingSink, now: i64, options: &TickOptions) -> TickReport {
    tick_watched(db, sink, now, options, &Unwatched)
}

/// [`tick_at`], with `watch` hearing the phases end.
fn tick_watched(
    db: &NativeSql,
    sink: &RecordingSink,
    now: i64,
    options: &TickOptions,
    watch: &dyn PhaseWatch,
) -> TickReport {
    let ids = SequentialIds::new("id");
    let clock = ManualClock::at(now);
    let http = FakeHttp::new();
    let remotes = remotes();
    let env = TickEnv {
        sql: db,
        ids: &ids,
        clock: &clock,
        sink,
        http: &http,
        remotes: &remotes,
        options: options.clone(),
        watch,
    };
    let report = block_on(tick::run(&env));
    assert!(http.requests().is_empty(), "no remote was due");
    report
}

/// A fact whose application changes nothing: these tests watch the tick's bookkeeping.
fn fact() -> EventKind {
    EventKind::NudgeTimeout(NoPayload {})
}

#[test]
fn migrating_twice_is_migrating_once() {
    let db = NativeSql::in_memory();
    let first = migrate::migrate(&db, T0).unwrap();
    assert_eq!(first.len() as i64, migrate::latest());
    let tables = |db: &NativeSql| {
        db.query("SELECT name, sql FROM sqlite_master ORDER BY name", &[])
            .unwrap()
    };
    let before = tables(&db);
    assert!(migrate::migrate(&db, T0 + 1).unwrap().is_empty());
    assert_eq!(tables(&db), before);
    let ledger = db
        .query("SELECT version FROM schema_migrations", &[])
        .unwrap();
    assert_eq!(ledger.len() as i64, migrate::latest());
}

#[test]
fn the_drain_reads_oldest_first_with_a_bound_and_ties_in_insertion_order() {
    let db = schema();
    for (i, at) in [(1, T0 + 5), (2, T0), (3, T0), (4, T0 + 1)] {
        events::insert(&db, &format!("e{i}"), &fact(), &Subject::agent("a"), at).unwrap();
    }
    let ids: Vec<_> = events::pending(&db, 10, T0)
        .unwrap()
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(ids, ["e2", "e3", "e4", "e1"]);
    assert_eq!(events::pending(&db, 2, T0).unwrap().len(), 2);
    events::mark_processed(&db, "e2", T0 + 10).unwrap();
    let backlog = events::backlog(&db, T0 + 10).unwrap();
    assert_eq!(backlog.count, 3);
    assert_eq!(backlog.oldest_age_ms, 10);
}

#[test]
fn failures_are_counted_spaced_out_and_poison_the_third_time() {
    let db = schema();
    events::insert(&db, "e1", &fact(), &Subject::agent("a"), T0).unwrap();
    use events::Failure::*;
    let [first, second] = events::RETRY_SPACING_MS;
    assert_eq!(
        events::record_failure(&db, "e1", "boom 1", T0).unwrap(),
        WillRetry { at: T0 + first }
    );
    assert!(events::pending(&db, 10, T0 + first - 1).unwrap().is_empty());
    assert_eq!(events::pending(&db, 10, T0 + first).unwrap().len(), 1);
    let t1 = T0 + first;
    assert_eq!(
        events::record_failure(&db, "e1", "boom 2", t1).unwrap(),
        WillRetry { at: t1 + second }
    );
    assert!(events::pending(&db, 10, t1 + second - 1)
        .unwrap()
        .is_empty());
    let waiting = events::waiting_retries(&db, t1, 10).unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(
        (waiting[0].retry_count, waiting[0].next_attempt_at),
        (2, t1 + second)
    );
    assert_eq!(waiting[0].last_error.as_deref(), Some("boom 2"));
    let backlog = events::backlog(&db, t1).unwrap();
    assert_eq!(
        (backlog.count, backlog.due, backlog.next_retry_at),
        (1, 0, Some(t1 + second))
    );
    let t2 = t1 + second;
    assert_eq!(events::pending(&db, 10, t2).unwrap().len(), 1);
    assert_eq!(
        events::record_failure(&db, "e1", "boom 3", t2).unwrap(),
        Poisoned
    );
    assert!(events::pending(&db, 10, t2 + HOUR).unwrap().is_empty());
    assert!(events::waiting_retries(&db, T0, 10).unwrap().is_empty());
    let row = db
        .one(
            "SELECT poisoned, last_error, retry_count FROM town_events WHERE event_id = 'e1'",
            &[],
        )
        .unwrap();
    assert!(row.bool("poisoned").unwrap());
    assert_eq!(row.text("last_error").unwrap(), "boom 3");
    assert_eq!(row.int("retry_count").unwrap(), 3);
}

#[test]
fn container_status_upserts_bump_a_pending_twin_and_never_store_running() {
    use gastown_town::vocabulary::events::ContainerStatus;
    let db = schema();
    let st = |s: &str| ContainerStatus {
        status: s.into(),
        exit_reason: None,
    };
    use events::Upsert::*;
    assert_eq!(
        events::upsert_container_status(&db, "e1", "a", &st("running"), T0).unwrap(),
        Skipped
    );
    assert_eq!(
        events::upsert_container_status(&db, "e2", "a", &st("exited"), T0).unwrap(),
        Inserted
    );
    assert_eq!(
        events::upsert_container_status(&db, "e3", "a", &st("exited"), T0 + 5).unwrap(),
        Bumped
    );
    assert_eq!(
        events::upsert_container_status(&db, "e4", "a", &st("not_found"), T0 + 6).unwrap(),
        Inserted
    );
    let rows = events::pending(&db, 10, T0).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].created_at, iso(T0 + 5));
}

#[test]
fn a_tick_processes_events_writes_one_point_and_rearms() {
    let db = schema();
    town::put(&db, "town-1", "owner-1", &TownConfig::default(), T0).unwrap();
    for i in 0..3 {
        events::insert(&db, &format!("e{i}"), &fact(), &Subject::agent("a"), T0 + i).unwrap();
    }
    let sink = RecordingSink::default();
    let options = TickOptions {
        drain_limit: 2,
        ..TickOptions::default()
    };
    let report = tick_at(&db, &sink, T0 + 100, &options);
    assert_eq!(report.metrics.events_drained, 2);
    assert_eq!(report.metrics.pending_event_count, 1);
    assert_eq!(report.metrics.oldest_pending_age_ms, 98.0);
    assert_eq!(report.rearm, Rearm::Now, "a backlog re-arms at once");
    let points = sink.points.borrow();
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].index, layout::RECONCILER_TICK);
    assert_eq!(points[0].blob(6), "town-1");
    assert_eq!(points[0].double(2), 2.0);
    assert_eq!(points[0].double(8), 1.0);
    assert_eq!(points[0].double(10), 98.0);
    drop(points);

    let report = tick_at(&db, &sink, T0 + 200, &options);
    assert_eq!(report.metrics.events_drained, 1);
    assert_eq!(report.rearm, Rearm::Idle(300 * SECOND));
    let history = db
        .one("SELECT COUNT(*) AS n FROM tick_metrics", &[])
        .unwrap();
    assert_eq!(history.int("n").unwrap(), 2);
}

#[test]
fn a_broken_payload_is_retried_then_poisoned_without_blocking_the_rest() {
    let db = schema();
    town::put(&db, "town-1", "owner-1", &TownConfig::default(), T0).unwrap();
    db.execute(
        "INSERT INTO town_events (event_id, event_type, payload, created_at) VALUES ('bad', 'agent_done', '{oops', ?)",
        &[iso(T0).into()],
    )
    .unwrap();
    events::insert(&db, "good", &fact(), &Subject::agent("a"), T0 + 1).unwrap();
    let sink = RecordingSink::default();
    let [first, second] = events::RETRY_SPACING_MS;
    let tries = [
        (T0 + 1000, 1),
        (T0 + 1000 + first, 1),
        (T0 + 1000 + first + second, 0),
    ];
    for (n, (at, expect_pending)) in tries.into_iter().enumerate() {
        let report = tick_at(&db, &sink, at, &TickOptions::default());
        assert_eq!(report.metrics.events_failed, 1, "try {n}");
        assert_eq!(
            report.metrics.pending_event_count, expect_pending,
            "try {n}"
        );
    }
    let good = db
        .one(
            "SELECT processed_at FROM town_events WHERE event_id = 'good'",
            &[],
        )
        .unwrap();
    assert!(good.opt_text("processed_at").unwrap().is_some());
}

#[test]
fn a_failed_event_is_not_retried_by_the_next_tick_but_when_due_and_the_alarm_fires_then() {
    let db = schema();
    town::put(&db, "town-1", "owner-1", &TownConfig::default(), T0).unwrap();
    db.execute(
        "INSERT INTO town_events (event_id, event_type, payload, created_at) VALUES ('bad', 'agent_done', '{oops', ?)",
        &[iso(T0).into()],
    )
    .unwrap();
    let sink = RecordingSink::default();
    // A long active interval, so the retry brings the alarm forward.
    let options = TickOptions {
        active_interval_ms: 60 * SECOND,
        ..TickOptions::default()
    };
    let [first, second] = events::RETRY_SPACING_MS;
    let report = tick_at(&db, &sink, T0, &options);
    assert_eq!(report.metrics.events_failed, 1);
    assert_eq!(
        report.rearm,
        Rearm::Retry(first),
        "not Now: the event waits"
    );

    let report = tick_at(&db, &sink, T0 + first - 1, &options);
    assert_eq!(report.metrics.events_drained, 0, "not due yet");
    assert_eq!(report.metrics.pending_event_count, 1);
    assert_eq!(report.rearm, Rearm::Retry(1));

    let report = tick_at(&db, &sink, T0 + first, &options);
    assert_eq!(report.metrics.events_failed, 1, "the second try");
    assert_eq!(
        report.rearm,
        Rearm::Active(60 * SECOND),
        "2 min is beyond the interval"
    );
    let report = tick_at(&db, &sink, T0 + first + second - 1, &options);
    assert_eq!(report.metrics.events_drained, 0);
    let report = tick_at(&db, &sink, T0 + first + second, &options);
    assert_eq!(report.metrics.events_failed, 1, "the third try poisons it");
    assert_eq!(report.metrics.pending_event_count, 0);
}

#[test]
fn a_deleted_town_stops_ticking() {
    let db = schema();
    town::put(&db, "town-1", "owner-1", &TownConfig::default(), T0).unwrap();
    town::delete(&db).unwrap();
    let sink = RecordingSink::default();
    let report = tick_at(&db, &sink, T0, &TickOptions::default());
    assert_eq!(report.rearm, Rearm::Stop);
    assert!(sink.points.borrow().is_empty());
}

/// The phases it heard end, in order.
#[derive(Default)]
struct Heard(RefCell<Vec<Phase>>);

impl PhaseWatch for Heard {
    fn ended(&self, phase: Phase) {
        self.0.borrow_mut().push(phase);
    }
}

#[test]
fn a_tick_ends_each_phase_once_in_order_skipping_what_did_not_run() {
    let db = schema();
    town::put(&db, "town-1", "owner-1", &TownConfig::default(), T0).unwrap();
    events::insert(&db, "e1", &fact(), &Subject::agent("a"), T0).unwrap();
    let (sink, heard) = (RecordingSink::default(), Heard::default());
    tick_watched(&db, &sink, T0 + 1, &TickOptions::default(), &heard);
    assert_eq!(heard.0.take(), Phase::ALL);

    // Without the nudges' table the snapshot cannot load: no reconcile, no actions.
    db.batch("DROP TABLE agent_nudges").unwrap();
    tick_watched(&db, &sink, T0 + 2, &TickOptions::default(), &heard);
    let skipped = [Phase::Reconcile, Phase::Actions];
    let expected: Vec<Phase> = Phase::ALL
        .into_iter()
        .filter(|p| !skipped.contains(p))
        .collect();
    assert_eq!(heard.0.take(), expected);

    town::delete(&db).unwrap();
    tick_watched(&db, &sink, T0 + 3, &TickOptions::default(), &heard);
    assert!(heard.0.take().is_empty(), "a deleted town ends no phase");
}
