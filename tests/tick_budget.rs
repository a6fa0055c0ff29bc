//! The tick's remote calls are bounded: the observation asks only about agents unheard of for
//! its interval, at most a budget of them per tick, rotating through them oldest observed
//! first, with a deadline that a hung container cannot stretch; all calls together by one subrequest budget, what does not fit deferred to later
//! ticks and never lost.

use gastown_town::effects::remotes::Remotes;
use gastown_town::metrics::layout;
use gastown_town::ports::{Http, HttpError, HttpRequest, HttpResponse};
use gastown_town::testing::http::{block_on, path_of, FakeHttp, Reply};
use gastown_town::testing::ports::{ManualClock, RecordingSink};
use gastown_town::testing::town::*;
use gastown_town::tick::phases::Unwatched;
use gastown_town::tick::{self, TickEnv, TickOptions, TickReport};
use gastown_town::vocabulary::model::*;
use gastown_town::vocabulary::time::{Millis, SECOND};
use serde_json::json;
use std::cell::RefCell;

/// A town of `n` polecats working on their own beads, all heartbeating now.
fn busy_town(n: usize) -> Town {
    let mut builder = TownBuilder::new().rig("r1");
    for i in 0..n {
        builder = builder
            .bead(
                BeadSpec::issue(&format!("b{i}"))
                    .rig("r1")
                    .status(BeadStatus::InProgress),
            )
            .agent(
                AgentSpec::polecat(&format!("a{i}"))
                    .rig("r1")
                    .hook(&format!("b{i}"))
                    .status(AgentStatus::Working)
                    .active_at(T0),
            );
    }
    builder.build()
}

/// One tick of `town` at its `now` over `http`, with `remotes`; the clock is `clock`.
fn tick_over<H: Http>(town: &Town, http: &H, clock: &ManualClock, remotes: &Remotes) -> TickReport {
    let sink = RecordingSink::default();
    let env = TickEnv {
        sql: &town.db,
        ids: &town.ids,
        clock,
        sink: &sink,
        http,
        remotes,
        options: TickOptions::default(),
        watch: &Unwatched,
    };
    block_on(tick::run(&env))
}

/// The agents whose status was asked, in order.
fn asked(requests: &[HttpRequest]) -> Vec<String> {
    requests
        .iter()
        .filter_map(|r| {
            path_of(&r.url)
                .strip_prefix("/agents/")?
                .strip_suffix("/status")
                .map(str::to_owned)
        })
        .collect()
}

#[test]
fn a_budget_of_agents_per_tick_rotates_so_each_is_seen_within_bounded_ticks() {
    let town = busy_town(5);
    let remotes = Remotes {
        observe_budget: 2,
        observe_interval_ms: 0,
        ..remotes()
    };
    let http = FakeHttp::new();
    http.always("*", "*", Reply::ok(json!({"status": "running"})));
    let mut seen = Vec::new();
    for _ in 0..3 {
        let before = http.requests().len();
        tick_over(&town, &http, &ManualClock::at(town.now()), &remotes);
        let this_tick = asked(&http.requests()[before..]);
        assert_eq!(this_tick.len(), 2, "the budget: {this_tick:?}");
        seen.push(this_tick);
        town.advance(SECOND);
    }
    assert_eq!(
        seen,
        [["a0", "a1"], ["a2", "a3"], ["a4", "a0"]],
        "never observed first, then the least recently observed"
    );
}

#[test]
fn only_agents_unheard_of_for_the_interval_are_asked_about() {
    let interval = remotes().observe_interval_ms;
    assert_eq!(interval, 45 * SECOND, "the default");
    // a0 heartbeated 5 s ago, a1 50 s ago (both within the 90 s staleness rule).
    let town = TownBuilder::new()
        .rig("r1")
        .bead(
            BeadSpec::issue("b0")
                .rig("r1")
                .status(BeadStatus::InProgress),
        )
        .bead(
            BeadSpec::issue("b1")
                .rig("r1")
                .status(BeadStatus::InProgress),
        )
        .agent(
            AgentSpec::polecat("a0")
                .rig("r1")
                .hook("b0")
                .status(AgentStatus::Working)
                .active_at(T0 - 5 * SECOND),
        )
        .agent(
            AgentSpec::polecat("a1")
                .rig("r1")
                .hook("b1")
                .status(AgentStatus::Working)
                .active_at(T0 - 50 * SECOND),
        )
        .build();
    let http = FakeHttp::new();
    http.always("*", "*", Reply::ok(json!({"status": "running"})));
    let tick_at = |offset: Millis, remotes: &Remotes| {
        let before = http.requests().len();
        tick_over(&town, &http, &ManualClock::at(T0 + offset), remotes);
        asked(&http.requests()[before..])
    };
    let remotes = remotes();
    assert_eq!(tick_at(0, &remotes), ["a1"], "only the quiet one");
    assert!(
        tick_at(10 * SECOND, &remotes).is_empty(),
        "a1 answered 10 s ago, a0 heartbeated 15 s ago"
    );
    assert_eq!(
        tick_at(interval - 5 * SECOND, &remotes),
        ["a0"],
        "a0's heartbeat is as old as the interval; a1 answered 40 s ago"
    );
    assert_eq!(
        tick_at(interval, &remotes),
        ["a1"],
        "a1's answer is as old as the interval; a0 answered 5 s ago"
    );
    let every_tick = Remotes {
        observe_interval_ms: 0,
        ..remotes
    };
    assert_eq!(
        tick_at(interval + SECOND, &every_tick),
        ["a0"],
        "0: every working agent every tick, as the original, though a0 answered 6 s ago \
         (a1, silent for 95 s at the last tick, is idle now)"
    );
}

/// A container that never answers: each call waits out its whole timeout on `clock`.
struct Hung<'c> {
    clock: &'c ManualClock,
    requests: RefCell<Vec<HttpRequest>>,
}

impl Http for Hung<'_> {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        self.clock.advance(request.timeout_ms);
        self.requests.borrow_mut().push(request);
        Err(HttpError::Timeout)
    }
}

#[test]
fn a_hung_container_delays_the_tick_by_the_observation_deadline_not_per_agent() {
    let town = busy_town(30);
    let deadline: Millis = 5 * SECOND;
    let remotes = Remotes {
        observe_deadline_ms: deadline,
        observe_interval_ms: 0,
        ..remotes()
    };
    assert!(remotes.container_timeouts.status_ms > deadline);
    let clock = ManualClock::at(town.now());
    let hung = Hung {
        clock: &clock,
        requests: RefCell::new(Vec::new()),
    };
    // Only the observation calls out: the upkeep is done (no rigs created lately, a token
    // fresh, the config pushed) and nothing is dispatched.
    tick_over(&town, &hung, &clock, &remotes);
    let requests = hung.requests.borrow();
    let statuses: Vec<&HttpRequest> = requests
        .iter()
        .filter(|r| path_of(&r.url).ends_with("/status"))
        .collect();
    assert!(!statuses.is_empty());
    let waited: Millis = statuses.iter().map(|r| r.timeout_ms).sum();
    assert!(
        waited <= deadline,
        "the status calls waited {waited} ms in all, past the {deadline} ms deadline \
         ({} calls)",
        statuses.len()
    );
    // The agents not asked come first next tick.
    let first = asked(&requests.iter().cloned().collect::<Vec<_>>());
    drop(requests);
    town.advance(SECOND);
    let clock = ManualClock::at(town.now());
    let http = FakeHttp::new();
    http.always("*", "*", Reply::ok(json!({"status": "running"})));
    tick_over(&town, &http, &clock, &remotes);
    let next = asked(&http.requests());
    assert_eq!(first, ["a0"], "one call fitted before the deadline");
    assert_eq!(next.len(), 30, "within the budget, every agent is asked");
    assert_eq!(next.last().map(String::as_str), Some("a0"), "{next:?}");
}

#[test]
fn a_tick_never_passes_the_subrequest_budget_and_what_did_not_fit_comes_later() {
    let mut builder = TownBuilder::new().rig("r1");
    for i in 0..10 {
        builder = builder.bead(BeadSpec::issue(&format!("b{i}")).rig("r1"));
    }
    let town = builder.build();
    let budget = 10;
    let remotes = Remotes {
        subrequest_budget: budget,
        ..remotes()
    };
    let http = FakeHttp::new();
    http.always("GET", "*", Reply::ok(json!({"status": "running"})))
        .always("POST", "*", Reply::json(201, json!({"success": true})));
    let starts = |requests: &[HttpRequest]| {
        requests
            .iter()
            .filter(|r| path_of(&r.url) == "/agents/start")
            .count()
    };
    let mut per_tick = Vec::new();
    let mut deferred = Vec::new();
    for _ in 0..4 {
        let before = http.requests().len();
        let report = tick_over(&town, &http, &ManualClock::at(town.now()), &remotes);
        let sent = &http.requests()[before..];
        assert!(sent.len() <= budget, "{} calls: {sent:#?}", sent.len());
        per_tick.push(starts(sent));
        // What did not fit is counted in the tick's figures and its AE point (double12).
        deferred.push(report.metrics.side_effects_deferred);
        let slot = layout::field(layout::RECONCILER_TICK, "side_effects_deferred").unwrap();
        assert_eq!(slot.slot.column(), "double12");
        assert_eq!(
            report.point.as_ref().unwrap().double(12),
            report.metrics.side_effects_deferred as f64
        );
        town.advance(5 * SECOND);
    }
    assert!(
        per_tick[0] < 10,
        "the budget deferred some starts: {per_tick:?}"
    );
    assert_eq!(per_tick.iter().sum::<usize>(), 10, "{per_tick:?}");
    assert_eq!(deferred[0] as usize, 10 - per_tick[0], "{deferred:?}");
    assert_eq!(deferred[3], 0, "{deferred:?}");
    for i in 0..10 {
        let bead = town.bead(&format!("b{i}"));
        assert_eq!(bead.status, BeadStatus::InProgress, "b{i}");
        assert_eq!(bead.dispatch_attempts, 1, "b{i} started once");
    }
}
