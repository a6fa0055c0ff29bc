//! Deleting a town stops the agents its container may still run: the DELETE names them, and
//! each gets a stop (a 404 is an agent already gone; a failure is counted, not retried).

use gastown_town::effects::remotes::Tally;
use gastown_town::effects::teardown;
use gastown_town::http::handler::After;
use gastown_town::http::routes::route;
use gastown_town::http::town::handle;
use gastown_town::http::Request;
use gastown_town::testing::http::{block_on, path_of, remotes, FakeHttp, Reply};
use gastown_town::testing::town::*;
use gastown_town::vocabulary::model::AgentStatus;
use serde_json::json;

#[test]
fn a_delete_names_every_agent_that_may_still_run_then_forgets_the_town() {
    let town = TownBuilder::new()
        .rig("web")
        .bead(BeadSpec::issue("b1").rig("web"))
        .bead(BeadSpec::issue("b2").rig("web"))
        .agent(
            AgentSpec::polecat("busy")
                .rig("web")
                .hook("b1")
                .status(AgentStatus::Working),
        )
        .agent(
            AgentSpec::polecat("stuck")
                .rig("web")
                .hook("b2")
                .status(AgentStatus::Stalled),
        )
        .agent(
            AgentSpec::polecat("free")
                .rig("web")
                .status(AgentStatus::Idle),
        )
        .agent(AgentSpec::mayor("mayor").status(AgentStatus::Waiting))
        .build();
    let req = Request::new("DELETE", &format!("/api/towns/{TOWN_ID}"));
    let outcome = handle(&town.ctx(), TOWN_ID, &route(&req).unwrap(), &req, "jwt");
    assert_eq!(outcome.response.status, 204);
    let After::Deleted { mut stop } = outcome.after else {
        panic!("a delete answers Deleted, got {:?}", outcome.after);
    };
    stop.sort();
    assert_eq!(stop, ["busy", "mayor", "stuck"]);
    let get = Request::new("GET", &format!("/api/towns/{TOWN_ID}"));
    let gone = handle(&town.ctx(), TOWN_ID, &route(&get).unwrap(), &get, "jwt");
    assert_eq!(gone.response.status, 404);
}

#[test]
fn each_agent_is_stopped_once_and_a_404_counts_as_stopped() {
    let http = FakeHttp::new();
    http.once(
        "POST",
        "/agents/a1/stop",
        Reply::ok(json!({"stopped": true})),
    )
    .once(
        "POST",
        "/agents/a2/stop",
        Reply::json(404, json!({"error": "Agent not found"})),
    )
    .once(
        "POST",
        "/agents/a3/stop",
        Reply::json(500, json!({"error": "boom"})),
    );
    let ids: Vec<String> = ["a1", "a2", "a3"].map(String::from).into();
    let tally = block_on(teardown::stop_all(&http, &remotes(), &ids));
    assert_eq!(
        tally,
        Tally {
            attempted: 3,
            succeeded: 2,
            failed: 1
        }
    );
    let mut paths: Vec<String> = http
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, path_of(&r.url)))
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "POST /agents/a1/stop",
            "POST /agents/a2/stop",
            "POST /agents/a3/stop"
        ]
    );
}
