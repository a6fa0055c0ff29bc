//! The tick's container upkeep and observation against the recording fake: the health ping
//! and its drain headers, the config pushed once per change, the token pushed hourly while
//! there is work or a live mayor, and what the agents' statuses record.

use gastown_town::ports::HttpRequest;
use gastown_town::sql::Sql;
use gastown_town::store::town as town_store;
use gastown_town::testing::http::{header, path_of, FakeHttp, Reply};
use gastown_town::testing::ports::RecordingSink;
use gastown_town::testing::town::*;
use gastown_town::vocabulary::config::TownConfig;
use gastown_town::vocabulary::model::*;
use gastown_town::vocabulary::time::MINUTE;
use serde_json::{json, Value as Json};

/// A container that answers every upkeep call and reports `statuses` for its agents.
fn container(statuses: &[(&str, Reply)]) -> FakeHttp {
    let fake = FakeHttp::new();
    for (agent, reply) in statuses {
        fake.always("GET", &format!("/agents/{agent}/status"), reply.clone());
    }
    fake.always("GET", "/health", Reply::ok(json!({"status": "ok"})))
        .always("POST", "/sync-config", Reply::ok(json!({"synced": true})))
        .always(
            "POST",
            "/refresh-token",
            Reply::ok(json!({"refreshed": true})),
        )
        .always("POST", "*", Reply::ok(json!({})));
    fake
}

/// The upkeep requests of a tick (health, sync-config, refresh-token), in order.
fn upkeep(fake: &FakeHttp) -> Vec<HttpRequest> {
    fake.requests()
        .into_iter()
        .filter(|r| {
            matches!(
                path_of(&r.url),
                "/health" | "/sync-config" | "/refresh-token"
            )
        })
        .collect()
}

fn paths(requests: &[HttpRequest]) -> Vec<&str> {
    requests.iter().map(|r| path_of(&r.url)).collect()
}

/// A rig with a working polecat (active work), whose process runs.
fn busy_town() -> Town {
    TownBuilder::new()
        .rig("r1")
        .bead(
            BeadSpec::issue("b1")
                .rig("r1")
                .assignee("p1")
                .status(BeadStatus::InProgress),
        )
        .agent(
            AgentSpec::polecat("p1")
                .rig("r1")
                .hook("b1")
                .status(AgentStatus::Working)
                .active_at(T0),
        )
        .build()
}

fn running() -> (&'static str, Reply) {
    ("p1", Reply::ok(json!({"status": "running"})))
}

fn tick(town: &Town, fake: &FakeHttp) {
    town.tick_with(fake, &RecordingSink::default());
}

#[test]
fn a_busy_town_pings_syncs_its_config_once_and_pushes_its_token_hourly() {
    let town = busy_town();
    let first = container(&[running()]);
    tick(&town, &first);
    let sent = upkeep(&first);
    assert_eq!(paths(&sent), ["/health", "/sync-config", "/refresh-token"]);
    let config = header(&sent[0], "x-town-config").expect("the ping carries the config");
    assert_eq!(header(&sent[1], "x-town-config"), Some(config));
    let config: Json = serde_json::from_str(config).unwrap();
    assert_eq!(config["town_id"], TOWN_ID);
    assert_eq!(config["default_model"], "anthropic/claude-sonnet-4.6");
    let pushed: Json = serde_json::from_str(sent[2].body.as_deref().unwrap()).unwrap();
    assert_eq!(pushed["townId"], TOWN_ID);
    let token = pushed["token"].as_str().unwrap();
    let verified =
        gastown_town::jwt::verify("jwt-secret", token, T0, gastown_town::jwt::Expiry::Enforced)
            .unwrap();
    assert_eq!(verified.claims.town_id(), TOWN_ID);

    // Within the hour, with the config unchanged: only the ping.
    town.advance(59 * MINUTE);
    let later = container(&[running()]);
    tick(&town, &later);
    assert_eq!(paths(&upkeep(&later)), ["/health"]);

    // An hour after the push, and after a config change: both again.
    town.advance(MINUTE);
    let config = TownConfig::from_json(&json!({"default_model": "m/new"})).unwrap();
    town_store::set_config(&town.db, &config, town.now()).unwrap();
    let hourly = container(&[running()]);
    tick(&town, &hourly);
    let sent = upkeep(&hourly);
    assert_eq!(paths(&sent), ["/health", "/sync-config", "/refresh-token"]);
    let config: Json = serde_json::from_str(header(&sent[1], "x-town-config").unwrap()).unwrap();
    assert_eq!(config["default_model"], "m/new");
}

#[test]
fn a_refused_push_is_due_again_next_tick() {
    let town = busy_town();
    let refusing = FakeHttp::new();
    refusing
        .always("POST", "/sync-config", Reply::status(500))
        .always("POST", "/refresh-token", Reply::status(400));
    let (agent, reply) = running();
    refusing.always("GET", &format!("/agents/{agent}/status"), reply);
    tick(&town, &refusing);
    town.advance(MINUTE);
    let next = container(&[running()]);
    tick(&town, &next);
    assert_eq!(
        paths(&upkeep(&next))[1..],
        ["/sync-config", "/refresh-token"]
    );
}

#[test]
fn a_town_without_rigs_or_a_live_mayor_leaves_its_container_alone() {
    let town = TownBuilder::new().build();
    let fake = container(&[]);
    tick(&town, &fake);
    assert!(fake.requests().is_empty());

    let mayor = TownBuilder::new()
        .agent(AgentSpec::mayor("m1").status(AgentStatus::Working))
        .build();
    let fake = container(&[("m1", Reply::ok(json!({"status": "running"})))]);
    tick(&mayor, &fake);
    assert_eq!(
        paths(&upkeep(&fake)),
        ["/refresh-token"],
        "a live mayor keeps its token fresh"
    );
}

#[test]
fn the_drain_nonce_rides_on_the_ping_once_the_drain_is_older_than_eleven_minutes() {
    let town = busy_town();
    town_store::start_drain(&town.db, "nonce-1", T0).unwrap();
    town.advance(11 * MINUTE);
    let young = container(&[running()]);
    tick(&town, &young);
    let ping = &upkeep(&young)[0];
    assert_eq!(header(ping, "x-drain-nonce"), None);

    let town = busy_town();
    town_store::start_drain(&town.db, "nonce-1", T0 - 12 * MINUTE).unwrap();
    let old = container(&[running()]);
    tick(&town, &old);
    let ping = &upkeep(&old)[0];
    assert_eq!(header(ping, "x-drain-nonce"), Some("nonce-1"));
    assert_eq!(header(ping, "x-town-id"), Some(TOWN_ID));
}

/// The `container_status` events a tick recorded and drained, by status.
fn recorded_statuses(town: &Town) -> Vec<String> {
    town.db
        .query(
            "SELECT json_extract(payload, '$.status') AS status FROM town_events
             WHERE event_type = 'container_status' ORDER BY rowid",
            &[],
        )
        .unwrap()
        .into_iter()
        .map(|r| r.text("status").unwrap())
        .collect()
}

#[test]
fn a_lost_agent_is_reset_and_an_unanswered_status_records_nothing() {
    // The container has no such agent: 404 -> not_found, and the agent (quiet for over the
    // 3-minute grace) becomes idle for the reconciler to re-dispatch.
    let town = busy_town();
    town.advance(4 * MINUTE);
    let evicted = container(&[(
        "p1",
        Reply::json(404, json!({"error": "Agent p1 not found"})),
    )]);
    tick(&town, &evicted);
    assert_eq!(recorded_statuses(&town), ["not_found"]);
    assert_ne!(town.agent("p1").status, AgentStatus::Working);

    // A 500 or an undefined status is recorded as unknown, and changes nothing (the agent
    // quiet for a minute: asked, and still within the 90 s heartbeat rule).
    for reply in [
        Reply::status(500),
        Reply::ok(json!({"status": "hibernating"})),
    ] {
        let town = busy_town();
        town.advance(MINUTE);
        tick(&town, &container(&[("p1", reply.clone())]));
        assert_eq!(recorded_statuses(&town), ["unknown"], "{reply:?}");
        assert_eq!(town.agent("p1").status, AgentStatus::Working);
    }

    // No answer at all: nothing recorded.
    let town = busy_town();
    town.advance(MINUTE);
    tick(&town, &container(&[("p1", Reply::Timeout)]));
    assert!(recorded_statuses(&town).is_empty());
    assert_eq!(town.agent("p1").status, AgentStatus::Working);
}
