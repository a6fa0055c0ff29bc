//! The fault suite's injected tick failure (`POST /debug/towns/{t}/fault`): development only;
//! armed, the town's next tick panics right after the named phase, once; the retried tick
//! finishes the work, every event applied exactly once.

use gastown_town::http::debug::fault::Injected;
use gastown_town::http::debug::status::AlarmView;
use gastown_town::http::debug::{self, DebugEnv};
use gastown_town::http::routes::route;
use gastown_town::http::{Request, Response};
use gastown_town::testing::http::{block_on, FakeHttp};
use gastown_town::testing::ports::{ManualClock, RecordingSink};
use gastown_town::testing::town::*;
use gastown_town::tick::phases::Phase;
use gastown_town::tick::{self, TickEnv, TickOptions, TickReport};
use gastown_town::vocabulary::time::iso;
use serde_json::json;
use std::panic::{catch_unwind, AssertUnwindSafe};

fn debug_env(development: bool) -> DebugEnv {
    DebugEnv {
        alarm: AlarmView {
            next_fire_at: None,
            interval_ms: 5_000,
            active: true,
            tick: Default::default(),
        },
        development,
        drain_limit: 500,
    }
}

fn arm(town: &Town, development: bool, fail_after: &str) -> Response {
    let req = Request::new("POST", &format!("/debug/towns/{TOWN_ID}/fault"))
        .json(&json!({ "fail_after": fail_after }));
    let routed = route(&req).unwrap();
    debug::handle(&town.ctx(), &debug_env(development), &routed.route, &req).unwrap()
}

/// A tick of `town` heard by the injected-failure hook, as the Durable Object runs it.
fn tick(town: &Town, http: &FakeHttp) -> TickReport {
    let clock = ManualClock::at(town.now());
    let remotes = remotes();
    let sink = RecordingSink::default();
    let env = TickEnv {
        sql: &town.db,
        ids: &town.ids,
        clock: &clock,
        sink: &sink,
        http,
        remotes: &remotes,
        options: TickOptions::default(),
        watch: &Injected { town_id: TOWN_ID },
    };
    block_on(tick::run(&env))
}

fn pending(town: &Town) -> i64 {
    town.db
        .first(
            "SELECT COUNT(*) AS n FROM town_events WHERE processed_at IS NULL",
            &[],
        )
        .unwrap()
        .unwrap()
        .int("n")
        .unwrap()
}

#[test]
fn an_armed_tick_fails_after_its_phase_once_and_the_retry_applies_each_event_once() {
    for phase in Phase::ALL {
        let town = TownBuilder::new()
            .rig("web")
            .agent(AgentSpec::polecat("p1").rig("web"))
            .build();
        for i in 0..3 {
            let req = Request::new("POST", &format!("/api/towns/{TOWN_ID}/beads"))
                .json(&json!({"rig_id": "web", "title": format!("issue {i}")}));
            let routed = route(&req).unwrap();
            let res =
                gastown_town::http::town::handle(&town.ctx(), TOWN_ID, &routed, &req, "s").response;
            assert_eq!(res.status, 201);
        }
        let events = town.town_events().len();
        let armed = arm(&town, true, phase.name());
        assert_eq!(armed.status, 200, "{}", armed.body);
        let http = FakeHttp::default();
        let failed = catch_unwind(AssertUnwindSafe(|| tick(&town, &http)));
        let message = failed.expect_err("the armed tick fails");
        let message = message.downcast_ref::<String>().unwrap();
        assert_eq!(
            message,
            &format!("injected failure after the {} phase", phase.name())
        );
        // The retry, a second later, runs through; what the failed attempt drained is not
        // drained again.
        let failed_at = town.now();
        town.advance(1_000);
        tick(&town, &http);
        assert_eq!(pending(&town), 0, "{phase:?}");
        let drained_at = if phase == Phase::Observe {
            town.now()
        } else {
            failed_at
        };
        let created = town
            .db
            .query(
                "SELECT processed_at FROM town_events WHERE event_type = 'bead_created'",
                &[],
            )
            .unwrap();
        assert_eq!(created.len(), events, "{phase:?}");
        for row in created {
            assert_eq!(
                row.text("processed_at").unwrap(),
                iso(drained_at),
                "{phase:?}"
            );
        }
        let failed_or_retried: i64 = town
            .db
            .first(
                "SELECT COUNT(*) AS n FROM town_events WHERE retry_count > 0 OR poisoned = 1",
                &[],
            )
            .unwrap()
            .unwrap()
            .int("n")
            .unwrap();
        assert_eq!(failed_or_retried, 0, "{phase:?}");
    }
}

#[test]
fn only_development_arms_it_and_only_with_a_phase_name() {
    let town = TownBuilder::new().build();
    let refused = arm(&town, false, "drain");
    assert_eq!(refused.status, 403, "{}", refused.body);
    let unknown = arm(&town, true, "somewhere");
    assert_eq!(unknown.status, 400);
    assert!(unknown.body_json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("observe, drain, snapshot"));
    // Neither armed anything: a tick runs through.
    tick(&town, &FakeHttp::default());
}
