//! A GUPP force stop that the container did not confirm is issued again by later ticks until
//! one holds (a 404 counts: the agent is gone).

use gastown_town::testing::http::{path_of, FakeHttp, Reply};
use gastown_town::testing::ports::RecordingSink;
use gastown_town::testing::town::*;
use gastown_town::vocabulary::model::*;
use gastown_town::vocabulary::time::{HOUR, SECOND};
use serde_json::json;

/// Polecat `g` on bead `b1`, silent for three hours.
fn silent_town() -> Town {
    TownBuilder::new()
        .rig("r1")
        .bead(
            BeadSpec::issue("b1")
                .rig("r1")
                .status(BeadStatus::InProgress),
        )
        .agent(
            AgentSpec::polecat("g")
                .rig("r1")
                .hook("b1")
                .status(AgentStatus::Working)
                .active_at(T0 - 3 * HOUR),
        )
        .build()
}

fn stops(http: &FakeHttp) -> usize {
    http.requests()
        .iter()
        .filter(|r| r.method == "POST" && path_of(&r.url) == "/agents/g/stop")
        .count()
}

#[test]
fn a_lost_force_stop_is_issued_again_until_the_container_confirms_it() {
    let town = silent_town();
    let sink = RecordingSink::default();
    let http = FakeHttp::new();
    http.always(
        "GET",
        "/agents/g/status",
        Reply::ok(json!({"status": "running"})),
    )
    .once("POST", "/agents/g/stop", Reply::status(500))
    .once("POST", "/agents/g/stop", Reply::Timeout)
    .once("POST", "/agents/g/stop", Reply::status(404))
    .always("*", "*", Reply::ok(json!({})));
    let mut seen = Vec::new();
    for _ in 0..4 {
        town.tick_with(&http, &sink);
        seen.push((stops(&http), town.agent("g").status));
        town.advance(5 * SECOND);
    }
    assert_eq!(
        seen,
        [
            (1, AgentStatus::Working),
            (2, AgentStatus::Working),
            (3, AgentStatus::Stalled),
            (3, AgentStatus::Stalled),
        ],
        "refused, timed out, then gone (404): stopped, and not stopped again"
    );
}

#[test]
fn a_confirmed_force_stop_is_not_repeated() {
    let town = silent_town();
    let sink = RecordingSink::default();
    let http = FakeHttp::new();
    http.always(
        "GET",
        "/agents/g/status",
        Reply::ok(json!({"status": "running"})),
    )
    .always("*", "*", Reply::ok(json!({})));
    for _ in 0..3 {
        town.tick_with(&http, &sink);
        town.advance(5 * SECOND);
    }
    assert_eq!(stops(&http), 1);
    assert_eq!(town.agent("g").status, AgentStatus::Stalled);
}

/// Refinery `ref` still working on merge request `m`, which auto-merge already closed (R7).
fn finished_review_town() -> Town {
    TownBuilder::new()
        .rig("r1")
        .bead(BeadSpec::issue("src").rig("r1").status(BeadStatus::Closed))
        .bead(
            BeadSpec::mr("m", "src", "gt/x")
                .rig("r1")
                .status(BeadStatus::Closed),
        )
        .agent(
            AgentSpec::refinery("ref")
                .rig("r1")
                .hook("m")
                .status(AgentStatus::Working)
                .active_at(T0),
        )
        .build()
}

#[test]
fn a_refinery_whose_review_finished_stays_hooked_until_its_stop_is_confirmed() {
    let town = finished_review_town();
    let sink = RecordingSink::default();
    let http = FakeHttp::new();
    http.always(
        "GET",
        "/agents/ref/status",
        Reply::ok(json!({"status": "running"})),
    )
    .once("POST", "/agents/ref/stop", Reply::status(500))
    .once("POST", "/agents/ref/stop", Reply::Timeout)
    .once("POST", "/agents/ref/stop", Reply::ok(json!({})))
    .always("*", "*", Reply::ok(json!({})));
    let stops = |http: &FakeHttp| {
        http.requests()
            .iter()
            .filter(|r| r.method == "POST" && path_of(&r.url) == "/agents/ref/stop")
            .count()
    };
    let mut seen = Vec::new();
    for _ in 0..4 {
        town.tick_with(&http, &sink);
        let agent = town.agent("ref");
        seen.push((stops(&http), agent.current_hook_bead_id, agent.status));
        town.advance(5 * SECOND);
    }
    let hooked = Some("m".to_owned());
    assert_eq!(
        seen,
        [
            (1, hooked.clone(), AgentStatus::Working),
            (2, hooked, AgentStatus::Working),
            (3, None, AgentStatus::Idle),
            (3, None, AgentStatus::Idle),
        ],
        "refused, timed out, then stopped: unhooked only then, and not stopped again"
    );
}
