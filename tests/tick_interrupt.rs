//! A tick interrupted anywhere and run again leaves the town as one clean tick would.
//!
//! The interruption is a Durable Object reset, simulated natively by [`WatchedSql`]: after `N`
//! statements every further statement fails, the atomic unit in flight rolls back whole, and
//! what committed stays; the outbound HTTP of a reset object goes nowhere ([`ResetHttp`]). For
//! every `N` from 0 to the statement count of a clean tick, a fresh town is ticked with the cut
//! at `N`, then ticked again cleanly at the same time (alarms are retried), and compared with
//! the same town after one clean tick.
//!
//! "The same state" is every table, row for row, with ids drawn from a counter that rolls back
//! with the unit that drew them (so the same committed work gets the same ids), and with these
//! differences, which are inherent:
//! - `tick_metrics` holds one row per attempt that got that far, describing that attempt.
//!
//! An event whose application fails is not tried again by the re-run at the same time: its
//! failure and its next try's time are recorded by one statement, and the retry waits.
//!
//! A retried tick is a new reconcile pass over whatever the interrupted attempt committed: cut
//! after some actions applied, it applies the ones still due and may go on with work one clean
//! tick leaves to the next (a bead the interrupted attempt reopened is dispatched at once). So
//! the town here is one that a single tick brings to a fixed point (asserted: a second tick at
//! the same time does nothing): the dispatch circuit breaker is open, so nothing the tick
//! reopens is dispatched. From every cut, the retry must reach exactly that fixed point.
//!
//! Side effects are at most once across an interruption, not at least once: the retry never
//! repeats a call whose action's synchronous part committed (the state says it happened), so a
//! reset between that part and the call, or before the answer was settled, loses it. What each
//! loss leaves and which rule recovers it is checked by
//! [`side_effects_are_at_most_once_and_lost_ones_are_recovered_after_an_interruption_anywhere`].

mod sim;

use gastown_town::domain::beads;
use gastown_town::params;
use gastown_town::ports::{Http, HttpError, HttpRequest, HttpResponse};
use gastown_town::sql::Sql;
use gastown_town::store::events::Subject;
use gastown_town::testing::http::{block_on, FakeHttp, Reply};
use gastown_town::testing::ports::{ManualClock, RecordingSink};
use gastown_town::testing::town::*;
use gastown_town::tick::phases::Unwatched;
use gastown_town::tick::{self, TickEnv, TickOptions, TickReport};
use gastown_town::vocabulary::events::*;
use gastown_town::vocabulary::model::*;
use gastown_town::vocabulary::time::{iso, Millis, HOUR, MINUTE, SECOND};
use serde_json::{json, Map, Value as Json};
use sim::dump;
use sim::sql::{WatchedSql, RESET};

/// The outbound HTTP of a Durable Object that may have been reset: once the SQL is cut, nothing
/// leaves (the object is gone); before, requests reach the fake.
struct ResetHttp<'a> {
    sql: &'a WatchedSql,
    fake: &'a FakeHttp,
}

impl Http for ResetHttp<'_> {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        if self.sql.is_cut() {
            return Err(HttpError::Network(RESET.into()));
        }
        self.fake.send(request).await
    }
}

/// Runs one tick at `T0` over `db`, with the remote answering from `fake`.
fn tick_at_t0(db: &WatchedSql, fake: &FakeHttp) -> TickReport {
    tick_at(db, fake, T0)
}

fn tick_at(db: &WatchedSql, fake: &FakeHttp, now: Millis) -> TickReport {
    let clock = ManualClock::at(now);
    let sink = RecordingSink::default();
    let remotes = remotes();
    let http = ResetHttp { sql: db, fake };
    let env = TickEnv {
        sql: db,
        ids: db,
        clock: &clock,
        sink: &sink,
        http: &http,
        remotes: &remotes,
        options: TickOptions::default(),
        watch: &Unwatched,
    };
    block_on(tick::run(&env))
}

/// The remote of these towns: every agent process runs, every call is acknowledged, the PR
/// merged.
fn remote(agents: &[&str]) -> FakeHttp {
    let fake = FakeHttp::new();
    fake.always("GET", "/health", Reply::ok(json!({"status": "ok"})));
    for a in agents {
        fake.always(
            "GET",
            &format!("/agents/{a}/status"),
            Reply::ok(json!({"status": "running"})),
        );
    }
    fake.always(
        "GET",
        "/repos/o/r1/pulls/5",
        Reply::ok(json!({"state": "closed", "merged": true})),
    );
    fake.always("POST", "*", Reply::ok(json!({})));
    fake
}

fn done(branch: &str) -> EventKind {
    EventKind::AgentDone(AgentDone {
        branch: branch.into(),
        pr_url: None,
        summary: Some("done".into()),
    })
}

fn completed(status: ExitStatus) -> EventKind {
    EventKind::AgentCompleted(AgentCompleted {
        status,
        reason: None,
    })
}

/// A town whose tick applies events of many kinds (one of which fails) and only mutations:
/// agents going idle, unhooked and deleted, beads recovered and reopened, a convoy's progress.
fn mutations_town() -> WatchedSql {
    let fresh = T0 - 10 * SECOND;
    let stale = T0 - 10 * MINUTE;
    let town = TownBuilder::new()
        .rig("r1")
        // The rig's refinery is busy with a direct review, so new reviews wait in the queue.
        .bead(
            BeadSpec::issue("src0")
                .rig("r1")
                .status(BeadStatus::InReview),
        )
        .bead(
            BeadSpec::mr("mbusy", "src0", "gt/a/src0")
                .rig("r1")
                .status(BeadStatus::InProgress)
                .assignee("ref")
                .updated_at(T0 - MINUTE),
        )
        .agent(
            AgentSpec::refinery("ref")
                .rig("r1")
                .hook("mbusy")
                .status(AgentStatus::Working)
                .active_at(fresh),
        )
        // p1 is done (agent_done, then agent_completed).
        .bead(beads_in_progress("b1", "p1"))
        .agent(working("p1", "b1", fresh))
        // p2's process failed (agent_completed failed).
        .bead(beads_in_progress("b2", "p2"))
        .agent(working("p2", "b2", fresh))
        // p3's process exited (container_status), past the 180 s grace.
        .bead(beads_in_progress("b4", "p3"))
        .agent(working("p3", "b4", T0 - 4 * MINUTE))
        // p4 holds b3, which a person cancels.
        .bead(BeadSpec::issue("b3").rig("r1").assignee("p4"))
        .agent(AgentSpec::polecat("p4").rig("r1").hook("b3"))
        // A PR review GitHub merged (pr_status_changed).
        .bead(BeadSpec::issue("s2").rig("r1").status(BeadStatus::InReview))
        .bead(
            BeadSpec::mr("m2", "s2", "gt/b/s2")
                .rig("r1")
                .pr_url("https://github.com/o/r1/pull/5")
                .status(BeadStatus::InProgress),
        )
        // A staged convoy whose only member is done (convoy_started).
        .bead(
            BeadSpec::convoy("c1", 1)
                .merge_mode(Some(MergeMode::ReviewAndMerge))
                .staged(),
        )
        .bead(BeadSpec::issue("mem1").rig("r1").status(BeadStatus::Closed))
        .dep("mem1", "c1", DependencyType::Tracks)
        // Rule A: working, never heartbeated, no hook.
        .agent(
            AgentSpec::polecat("w")
                .rig("r1")
                .status(AgentStatus::Working),
        )
        // Rule B: idle, hooked to a closed bead.
        .bead(
            BeadSpec::issue("bdone")
                .rig("r1")
                .status(BeadStatus::Closed),
        )
        .agent(
            AgentSpec::polecat("sh")
                .rig("r1")
                .hook("bdone")
                .checkpoint("{}")
                .active_at(fresh),
        )
        // B1b: an assignee that holds nothing.
        .bead(BeadSpec::issue("b5").rig("r1").assignee("nobody"))
        // B3: in progress for 10 minutes with no agent.
        .bead(
            BeadSpec::issue("b6")
                .rig("r1")
                .status(BeadStatus::InProgress)
                .updated_at(stale),
        )
        // B4: in review for 10 minutes, its only review failed.
        .bead(
            BeadSpec::issue("b7")
                .rig("r1")
                .status(BeadStatus::InReview)
                .assignee("gone")
                .updated_at(stale),
        )
        .bead(
            BeadSpec::mr("m7", "b7", "gt/c/b7")
                .rig("r1")
                .status(BeadStatus::Failed),
        )
        // GC: a polecat idle and unhooked for two days.
        .agent(
            AgentSpec::polecat("old")
                .rig("r1")
                .active_at(T0 - 48 * HOUR),
        )
        .build();
    town.db
        .execute(
            "UPDATE beads SET created_at = ? WHERE bead_id = 'old'",
            &params![iso(T0 - 48 * HOUR)],
        )
        .unwrap();
    open_breaker(&town);
    town.record(&done("gt/p1/b1"), &Subject::agent("p1"));
    town.record(&completed(ExitStatus::Completed), &Subject::agent("p1"));
    town.record(&completed(ExitStatus::Failed), &Subject::agent("p2"));
    town.run(|ctx| beads::cancel(ctx, "b3", CancelStatus::Closed, "api"))
        .unwrap();
    town.record(
        &EventKind::ContainerStatus(ContainerStatus {
            status: "exited".into(),
            exit_reason: None,
        }),
        &Subject::agent("p3"),
    );
    town.record(&done("gt/ghost/x"), &Subject::agent("ghost"));
    town.record(
        &EventKind::PrStatusChanged(PrStatusChanged {
            pr_url: "https://github.com/o/r1/pull/5".into(),
            pr_state: "merged".into(),
        }),
        &Subject::bead("m2"),
    );
    town.record(
        &EventKind::ConvoyStarted(ConvoyStarted {
            convoy_id: "c1".into(),
        }),
        &Subject::town(),
    );
    let Town { db, .. } = town;
    WatchedSql::new(db)
}

/// Opens the dispatch circuit breaker, its opening already told to the mayor: 20 beads whose
/// dispatch failed a minute ago. The rules then dispatch nothing, so the work a tick reopens
/// stays put and the town after one tick is a fixed point (a second tick at the same time
/// changes nothing), which makes "the same state as one clean tick" exact.
fn open_breaker(town: &Town) {
    for i in 0..20 {
        town.db
            .execute(
                "INSERT INTO beads (bead_id, type, status, title, rig_id, dispatch_attempts,
                   last_dispatch_attempt_at, last_dispatch_error, created_at, updated_at)
                 VALUES (?, 'issue', 'failed', 'lost', 'r1', 5, ?, 'answered HTTP 503', ?, ?)",
                &params![format!("lost{i}"), iso(T0 - MINUTE), iso(T0), iso(T0)],
            )
            .unwrap();
    }
    town.db
        .execute(
            "UPDATE town SET breaker_notified_at = ?",
            &params![iso(T0 - MINUTE)],
        )
        .unwrap();
}

fn beads_in_progress(id: &str, agent: &str) -> BeadSpec {
    BeadSpec::issue(id)
        .rig("r1")
        .status(BeadStatus::InProgress)
        .assignee(agent)
}

fn working(id: &str, hook: &str, active: i64) -> AgentSpec {
    AgentSpec::polecat(id)
        .rig("r1")
        .hook(hook)
        .status(AgentStatus::Working)
        .active_at(active)
}

const MUTATION_AGENTS: [&str; 5] = ["ref", "p1", "p2", "p3", "w"];

/// Every table but the tick history, row for row.
fn state(db: &WatchedSql) -> Map<String, Json> {
    dump::tables(db, &["tick_metrics"])
}

/// The failing event's retry count.
fn ghost_retries(db: &WatchedSql) -> Json {
    db.one(
        "SELECT retry_count FROM town_events WHERE agent_id = 'ghost'",
        &[],
    )
    .unwrap()
    .to_json()["retry_count"]
        .clone()
}

#[test]
fn a_tick_interrupted_at_every_statement_and_run_again_equals_one_clean_tick() {
    sim::driver::quiet_logs();
    // The clean tick.
    let clean = mutations_town();
    clean.record_statements();
    let report = tick_at_t0(&clean, &remote(&MUTATION_AGENTS));
    let statements = clean.recorded();
    let count = statements.len() as u64;
    let expected = state(&clean);
    let m = &report.metrics;
    assert_eq!(m.side_effects_attempted, 0, "{:?}", m.actions_by_type);
    assert_eq!(m.events_drained, 8);
    assert_eq!(m.events_failed, 1);
    for action in [
        "transition_agent",
        "unhook_agent",
        "clear_agent_checkpoint",
        "clear_bead_assignee",
        "transition_bead",
        "delete_agent",
        "update_convoy_progress",
        "close_convoy",
    ] {
        assert!(
            m.actions_by_type.contains_key(action),
            "the clean tick applies {action}: {:?}",
            m.actions_by_type
        );
    }
    assert_eq!(m.invariant_violations, 0);
    assert_eq!(ghost_retries(&clean), json!(1));
    // One tick reaches a fixed point: a second one at the same time changes nothing (the
    // failing event waits for its retry).
    let twice = mutations_town();
    tick_at_t0(&twice, &remote(&MUTATION_AGENTS));
    let again = tick_at_t0(&twice, &remote(&MUTATION_AGENTS));
    assert_eq!(
        again.metrics.actions_emitted, 0,
        "{:?}",
        again.metrics.actions_by_type
    );
    assert_eq!(dump::first_difference(&expected, &state(&twice)), None);

    for n in 0..=count {
        let db = mutations_town();
        db.cut_after(n);
        let fake = remote(&MUTATION_AGENTS);
        tick_at_t0(&db, &fake);
        assert_eq!(
            db.statements(),
            n,
            "the attempt ran {n} of {count} statements"
        );
        db.restore();
        tick_at_t0(&db, &fake);
        let got = state(&db);
        if let Some(diff) = dump::first_difference(&expected, &got) {
            panic!(
                "cut after statement {n} of {count} ({:?}), then a clean tick: {diff}",
                statements
                    .get(n as usize)
                    .map(|s| s.split_whitespace().take(6).collect::<Vec<_>>())
            );
        }
    }
}

const PR: &str = "https://github.com/o/r1/pull/5";

/// A town whose tick sends one of each kind of call: a start (B1 dispatches `bx` to a new
/// polecat), a PR poll (`mp`, which GitHub reports merged), a GUPP warning to `g1` (no SDK
/// activity for 20 minutes) and a GUPP force stop of `g2` (3 hours).
fn effects_town() -> WatchedSql {
    let fresh = T0 - 10 * SECOND;
    let town = TownBuilder::new()
        .rig("r1")
        .bead(BeadSpec::issue("bx").rig("r1"))
        .bead(BeadSpec::issue("sp").rig("r1").status(BeadStatus::InReview))
        .bead(
            BeadSpec::mr("mp", "sp", "gt/x/sp")
                .rig("r1")
                .pr_url(PR)
                .status(BeadStatus::InProgress),
        )
        .bead(beads_in_progress("bg", "g1"))
        .agent(working("g1", "bg", fresh))
        .bead(beads_in_progress("bh", "g2"))
        .agent(working("g2", "bh", fresh))
        .build();
    for (agent, quiet) in [("g1", 20 * MINUTE), ("g2", 3 * HOUR)] {
        town.db
            .execute(
                "UPDATE agent_metadata SET last_event_at = ? WHERE bead_id = ?",
                &params![iso(T0 - quiet), agent],
            )
            .unwrap();
    }
    let Town { db, .. } = town;
    WatchedSql::new(db)
}

/// Requests the remote received with this method and path.
fn sent(fake: &FakeHttp, method: &str, path: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == method && gastown_town::testing::http::path_of(&r.url) == path)
        .count()
}

/// Starts of work beads: the triage batch the housekeeping files about `g2`'s force stop goes
/// out as a lightweight start on a later tick, and is not a call of the clean tick.
fn work_starts(fake: &FakeHttp) -> usize {
    fake.requests()
        .iter()
        .filter(|r| gastown_town::testing::http::path_of(&r.url) == "/agents/start")
        .filter(|r| {
            let body: serde_json::Value =
                serde_json::from_str(r.body.as_deref().unwrap_or("{}")).unwrap_or_default();
            body["lightweight"] != true
        })
        .count()
}

/// For every cut, across the interrupted attempt and the retry, each call of the clean tick is
/// received at most once: the retry never repeats a call whose action's synchronous part had
/// committed, since the state says it happened (a start's agent is `working`, a poll is
/// stamped, a nudge is recorded, a stalled agent was stopped). So a call is lost when the reset
/// came after that synchronous part and before the call, or before its answer was settled
/// (that part is not repeated either). A lost call leaves:
/// - a start: the polecat `working` on `bx`, which is `in_progress`; rule A idles the agent
///   after 90 s without a heartbeat, B3 reopens the bead once it is 5 minutes stale, and B1
///   dispatches it again (checked: a start is sent within 8 minutes);
/// - a poll: `last_poll_at` stamped; the next poll comes 60 s later (checked);
/// - a nudge: the nudge row, undelivered: the agent gets it from its pending-nudge poll
///   (checked), and GUPP sends no other nudge of that tier within the hour;
/// - a force stop: `g2` stalled (checked). GUPP stops once per stall and no other rule sends a
///   stop, so the process keeps running until someone acts on the `stuck_agent` triage request,
///   which is itself missing when the reset also came before it was applied: then nothing
///   flags the agent again (counted below; a known gap, not repaired by any rule).
///
/// After the retry, no invariant is violated.
#[test]
fn side_effects_are_at_most_once_and_lost_ones_are_recovered_after_an_interruption_anywhere() {
    sim::driver::quiet_logs();
    let clean = effects_town();
    let fake = remote(&["g1", "g2"]);
    let report = tick_at_t0(&clean, &fake);
    let m = &report.metrics;
    assert_eq!(
        (m.side_effects_attempted, m.side_effects_succeeded),
        (4, 4),
        "{:?}",
        m.actions_by_type
    );
    let count = clean.statements();
    let calls = |fake: &FakeHttp| {
        [
            work_starts(fake),
            sent(fake, "GET", "/repos/o/r1/pulls/5"),
            sent(fake, "POST", "/agents/g1/message"),
            sent(fake, "POST", "/agents/g2/stop"),
        ]
    };
    assert_eq!(calls(&fake), [1, 1, 1, 1]);

    let mut lost = [0u32; 4];
    let mut untriaged = 0;
    for n in 0..=count {
        let db = effects_town();
        let fake = remote(&["g1", "g2"]);
        db.cut_after(n);
        tick_at_t0(&db, &fake);
        db.restore();
        tick_at_t0(&db, &fake);
        let got = calls(&fake);
        for (i, c) in got.iter().enumerate() {
            assert!(*c <= 1, "cut at {n}: call {i} sent {c} times");
            lost[i] += u32::from(*c == 0);
        }
        let snapshot = gastown_town::reconciler::load::snapshot(&db, T0).unwrap();
        let violations = gastown_town::reconciler::invariants::check(&snapshot);
        assert!(violations.is_empty(), "cut at {n}: {violations:?}");

        if got[0] == 0 {
            let mut recovered = false;
            for minute in 1..=8 {
                tick_at(&db, &fake, T0 + minute * MINUTE);
                recovered |= work_starts(&fake) > 0;
            }
            assert!(recovered, "cut at {n}: the lost start was never sent again");
        }
        if got[1] == 0 {
            tick_at(&db, &fake, T0 + 61 * SECOND);
            assert!(
                sent(&fake, "GET", "/repos/o/r1/pulls/5") > 0,
                "cut at {n}: the lost poll was not made again"
            );
        }
        if got[2] == 0 {
            let pending = db
                .one(
                    "SELECT COUNT(*) AS n FROM agent_nudges
                     WHERE agent_bead_id = 'g1' AND delivered_at IS NULL",
                    &[],
                )
                .unwrap()
                .int("n")
                .unwrap();
            assert_eq!(
                pending, 1,
                "cut at {n}: the lost nudge is waiting for the agent"
            );
        }
        if got[3] == 0 {
            let g2 = db
                .one(
                    "SELECT status FROM agent_metadata WHERE bead_id = 'g2'",
                    &[],
                )
                .unwrap()
                .text("status")
                .unwrap();
            assert_eq!(
                g2, "stalled",
                "cut at {n}: the stop was lost after the stall"
            );
            let triaged = db
                .first(
                    "SELECT 1 AS x FROM beads WHERE labels LIKE '%gt:triage-request%'
                     AND json_extract(metadata, '$.agent_bead_id') = 'g2'",
                    &[],
                )
                .unwrap()
                .is_some();
            untriaged += u32::from(!triaged);
        }
    }
    println!(
        "{count} cuts: calls lost {lost:?} (start, poll, nudge, stop); force-stopped agent left \
         without a triage request {untriaged} times"
    );
    assert!(
        lost.iter().all(|n| *n > 0),
        "the cuts reach between every kind of action and its call"
    );
}

/// Three issues of one rig and no polecat: one tick registers three polecats together (before
/// the actions apply), prepares the three starts together and settles them together.
fn dispatches_town() -> WatchedSql {
    let Town { db, .. } = TownBuilder::new()
        .rig("r1")
        .bead(BeadSpec::issue("i1").rig("r1").title("Fix one"))
        .bead(BeadSpec::issue("i2").rig("r1").title("Fix two"))
        .bead(BeadSpec::issue("i3").rig("r1").title("Fix three"))
        .build();
    WatchedSql::new(db)
}

/// How many starts the remote received for each of the three issues (by prompt).
fn starts_by_issue(fake: &FakeHttp) -> [usize; 3] {
    let prompts: Vec<String> = fake
        .requests()
        .iter()
        .filter(|r| gastown_town::testing::http::path_of(&r.url) == "/agents/start")
        .filter_map(|r| serde_json::from_str::<Json>(r.body.as_deref()?).ok())
        .map(|j| j["prompt"].as_str().unwrap_or_default().to_owned())
        .collect();
    ["Fix one", "Fix two", "Fix three"].map(|t| prompts.iter().filter(|p| *p == t).count())
}

/// The batched bookkeeping of a tick that starts several agents, cut anywhere and retried: no
/// issue is started twice or given two polecats, the town keeps its invariants, no polecat is
/// registered beyond the three needed, and a start the cut lost is sent by a later tick.
#[test]
fn batched_dispatches_are_at_most_once_and_recovered_after_an_interruption_anywhere() {
    sim::driver::quiet_logs();
    let clean = dispatches_town();
    let fake = remote(&[]);
    tick_at_t0(&clean, &fake);
    assert_eq!(starts_by_issue(&fake), [1, 1, 1]);
    let count = clean.statements();
    let polecats = |db: &WatchedSql| {
        db.one(
            "SELECT COUNT(*) AS n FROM agent_metadata WHERE role = 'polecat'",
            &[],
        )
        .unwrap()
        .int("n")
        .unwrap()
    };
    assert_eq!(polecats(&clean), 3);

    let mut lost = 0;
    for n in 0..=count {
        let db = dispatches_town();
        let fake = remote(&[]);
        db.cut_after(n);
        tick_at_t0(&db, &fake);
        db.restore();
        tick_at_t0(&db, &fake);
        let starts = starts_by_issue(&fake);
        assert!(starts.iter().all(|&s| s <= 1), "cut at {n}: {starts:?}");
        assert_eq!(polecats(&db), 3, "cut at {n}");
        let snapshot = gastown_town::reconciler::load::snapshot(&db, T0).unwrap();
        let violations = gastown_town::reconciler::invariants::check(&snapshot);
        assert!(violations.is_empty(), "cut at {n}: {violations:?}");
        if starts.contains(&0) {
            lost += 1;
            for minute in 1..=8 {
                tick_at(&db, &fake, T0 + minute * MINUTE);
            }
            let again = starts_by_issue(&fake);
            assert!(
                again.iter().all(|&s| s >= 1),
                "cut at {n}: never started {again:?}"
            );
        }
    }
    assert!(
        lost > 0,
        "some cut falls between a start's bookkeeping and its call"
    );
}
