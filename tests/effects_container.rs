//! The container client against the recording fake: what each call sends on the original's
//! wire (UPSTREAM-WIRE.md section 1), and how it reads each answer and each kind of failure.

use gastown_town::effects::container::{
    AgentProcess, Container, ContainerTimeouts, DrainHeaders, ProcessState, RigEntry, StartAgent,
    StartRole,
};
use gastown_town::effects::{CallError, Refusal};
use gastown_town::testing::http::{block_on, header, FakeHttp, Reply};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;

const BASE: &str = "http://container";
const CONFIG: &str = r#"{"town_id":"town-1"}"#;

fn start_body() -> StartAgent {
    StartAgent {
        agent_id: "agent-1".into(),
        rig_id: "rig-1".into(),
        town_id: "town-1".into(),
        role: StartRole::Polecat,
        name: "Toast".into(),
        identity: "Toast-polecat-rig-1@town-1".into(),
        prompt: "Fix the widget".into(),
        model: "m/large".into(),
        small_model: "m/small".into(),
        system_prompt: None,
        git_url: "https://github.com/acme/widgets.git".into(),
        branch: "gt/toast/bead-1".into(),
        default_branch: "main".into(),
        env_vars: BTreeMap::from([("GASTOWN_CONTAINER_TOKEN".into(), "jwt".into())]),
        start_point: None,
        lightweight: None,
        organization_id: None,
        rigs: None,
    }
}

fn body_json(fake: &FakeHttp) -> Json {
    serde_json::from_str(fake.last().body.as_deref().expect("a body")).unwrap()
}

/// Each kind of failure the port can produce, and the error the client must report.
fn failures() -> Vec<(Reply, CallError)> {
    vec![
        (Reply::status(500), CallError::Status(500)),
        (Reply::status(503), CallError::Status(503)),
        (Reply::status(302), CallError::Status(302)),
        (Reply::Timeout, CallError::Timeout),
        (
            Reply::network("connection refused"),
            CallError::Network("connection refused".into()),
        ),
    ]
}

#[test]
fn start_posts_the_camel_case_body_with_the_town_config_and_a_minute_to_answer() {
    let fake = FakeHttp::new();
    fake.always(
        "POST",
        "/agents/start",
        Reply::json(201, json!({"agentId": "agent-1", "status": "starting"})),
    );
    let container = Container::new(&fake, BASE);
    assert_eq!(block_on(container.start(CONFIG, &start_body())), Ok(()));

    let sent = fake.last();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.url, "http://container/agents/start");
    assert_eq!(sent.timeout_ms, 60_000);
    assert_eq!(header(&sent, "content-type"), Some("application/json"));
    assert_eq!(header(&sent, "x-town-config"), Some(CONFIG));
    assert_eq!(
        body_json(&fake),
        json!({
            "agentId": "agent-1", "rigId": "rig-1", "townId": "town-1", "role": "polecat",
            "name": "Toast", "identity": "Toast-polecat-rig-1@town-1", "prompt": "Fix the widget",
            "model": "m/large", "smallModel": "m/small",
            "gitUrl": "https://github.com/acme/widgets.git", "branch": "gt/toast/bead-1",
            "defaultBranch": "main", "envVars": {"GASTOWN_CONTAINER_TOKEN": "jwt"},
        })
    );

    let mayor = StartAgent {
        role: StartRole::Mayor,
        system_prompt: Some("You lead".into()),
        start_point: Some("origin/feature".into()),
        lightweight: Some(true),
        organization_id: Some("org-1".into()),
        rigs: Some(vec![RigEntry {
            rig_id: "rig-1".into(),
            git_url: "https://github.com/acme/widgets.git".into(),
            default_branch: "main".into(),
        }]),
        ..start_body()
    };
    block_on(container.start(CONFIG, &mayor)).unwrap();
    let body = body_json(&fake);
    assert_eq!(body["role"], "mayor");
    assert_eq!(body["systemPrompt"], "You lead");
    assert_eq!(body["startPoint"], "origin/feature");
    assert_eq!(body["lightweight"], true);
    assert_eq!(body["organizationId"], "org-1");
    assert_eq!(
        body["rigs"],
        json!([{"rigId": "rig-1", "gitUrl": "https://github.com/acme/widgets.git", "defaultBranch": "main"}])
    );
    assert_eq!(body.as_object().unwrap().len(), 18);
}

#[test]
fn start_reads_any_2xx_as_started_and_keeps_the_containers_error() {
    for reply in [
        Reply::garbage(),
        Reply::Answer {
            status: 204,
            body: String::new(),
        },
    ] {
        let fake = FakeHttp::new();
        fake.always("POST", "/agents/start", reply.clone());
        let got = block_on(Container::new(&fake, BASE).start(CONFIG, &start_body()));
        assert_eq!(got, Ok(()), "{reply:?}");
    }
    for (reply, want) in failures() {
        let fake = FakeHttp::new();
        fake.always("POST", "/agents/start", reply.clone());
        let got = block_on(Container::new(&fake, BASE).start(CONFIG, &start_body()));
        assert_eq!(got, Err(want), "{reply:?}");
    }
    let fake = FakeHttp::new();
    fake.once(
        "POST",
        "/agents/start",
        Reply::json(503, json!({"error": "Container is draining"})),
    )
    .once(
        "POST",
        "/agents/start",
        Reply::json(500, json!({"error": "Agent agent-1 is already running"})),
    );
    let container = Container::new(&fake, BASE);
    let refused = block_on(container.start(CONFIG, &start_body())).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "answered HTTP 503: Container is draining"
    );
    assert_eq!(refused.label(), "http_status");
    assert_eq!(
        block_on(container.start(CONFIG, &start_body())),
        Ok(()),
        "the original reads 'already running' as started"
    );
}

#[test]
fn status_names_every_state_and_reads_404_as_not_found() {
    let fake = FakeHttp::new();
    let path = "/agents/agent-1/status";
    for status in ["starting", "running", "stopping", "failed"] {
        fake.once("GET", path, Reply::ok(json!({"status": status})));
    }
    fake.once(
        "GET",
        path,
        Reply::ok(json!({"agentId": "agent-1", "status": "exited", "exitReason": "completed", "serverPort": 4096})),
    )
    .once(
        "GET",
        path,
        Reply::json(404, json!({"error": "Agent agent-1 not found"})),
    )
    .once("GET", path, Reply::ok(json!({"status": "hibernating"})));
    let container = Container::new(&fake, BASE);
    let state = || block_on(container.status("agent-1")).unwrap().state;
    assert_eq!(state(), ProcessState::Starting);
    assert_eq!(state(), ProcessState::Running);
    assert_eq!(state(), ProcessState::Stopping);
    assert_eq!(state(), ProcessState::Failed);
    assert_eq!(
        block_on(container.status("agent-1")).unwrap(),
        AgentProcess {
            state: ProcessState::Exited,
            exit_reason: Some("completed".into())
        }
    );
    let gone = state();
    assert_eq!(
        (gone.clone(), gone.as_str()),
        (ProcessState::NotFound, "not_found")
    );
    let odd = state();
    assert_eq!(odd, ProcessState::Unknown("hibernating".into()));
    assert_eq!(odd.as_str(), "unknown");
    assert!(!odd.is_alive() && !gone.is_alive() && ProcessState::Starting.is_alive());

    let sent = fake.last();
    assert_eq!((sent.method, sent.body.as_deref()), ("GET", None));
    assert_eq!(sent.url, "http://container/agents/agent-1/status");
    assert_eq!(sent.timeout_ms, 10_000);
    assert_eq!(header(&sent, "x-town-config"), None);
}

#[test]
fn status_fails_truthfully() {
    for (reply, want) in failures() {
        let fake = FakeHttp::new();
        fake.always("*", "*", reply.clone());
        let got = block_on(Container::new(&fake, BASE).status("agent-1"));
        assert_eq!(got, Err(want), "{reply:?}");
    }
    for reply in [
        Reply::garbage(),
        Reply::ok(json!({"state": "running"})),
        Reply::ok(json!({"status": 3})),
    ] {
        let fake = FakeHttp::new();
        fake.always("*", "*", reply.clone());
        let got = block_on(Container::new(&fake, BASE).status("agent-1"));
        assert!(
            matches!(got, Err(CallError::BadBody(_))),
            "{reply:?}: {got:?}"
        );
    }
}

#[test]
fn agent_ids_are_percent_encoded_in_paths() {
    let fake = FakeHttp::new();
    fake.always("*", "*", Reply::ok(json!({"status": "running"})));
    block_on(Container::new(&fake, BASE).status("town:a/../b")).unwrap();
    assert_eq!(
        fake.last().url,
        "http://container/agents/town%3Aa%2F..%2Fb/status"
    );
}

#[test]
fn stop_posts_an_empty_object_and_a_404_means_already_gone() {
    for reply in [
        Reply::ok(json!({"stopped": true})),
        Reply::json(404, json!({"error": "Agent agent-1 not found"})),
    ] {
        let fake = FakeHttp::new();
        fake.always("POST", "/agents/agent-1/stop", reply);
        assert_eq!(
            block_on(Container::new(&fake, BASE).stop("agent-1")),
            Ok(())
        );
        let sent = fake.last();
        assert_eq!(sent.url, "http://container/agents/agent-1/stop");
        assert_eq!(sent.body.as_deref(), Some("{}"));
        assert_eq!(sent.timeout_ms, 10_000);
    }
    for (reply, want) in failures() {
        let fake = FakeHttp::new();
        fake.always("*", "*", reply);
        assert_eq!(
            block_on(Container::new(&fake, BASE).stop("agent-1")),
            Err(want)
        );
    }
}

#[test]
fn message_posts_the_prompt() {
    let fake = FakeHttp::new();
    fake.always(
        "POST",
        "/agents/mayor-1/message",
        Reply::ok(json!({"sent": true})),
    );
    let prompt = "Wrap up, \"please\"\nthanks";
    assert_eq!(
        block_on(Container::new(&fake, BASE).message("mayor-1", prompt)),
        Ok(())
    );
    let sent = fake.last();
    assert_eq!(sent.url, "http://container/agents/mayor-1/message");
    assert_eq!(sent.timeout_ms, 10_000);
    assert_eq!(body_json(&fake), json!({"prompt": prompt}));

    let mut failures = failures();
    failures.push((Reply::status(404), CallError::Status(404)));
    for (reply, want) in failures {
        let fake = FakeHttp::new();
        fake.always("*", "*", reply);
        assert_eq!(
            block_on(Container::new(&fake, BASE).message("mayor-1", "hi")),
            Err(want)
        );
    }
}

#[test]
fn refresh_token_and_sync_config_push_what_the_container_keeps() {
    let fake = FakeHttp::new();
    fake.always("POST", "*", Reply::ok(json!({"refreshed": true})));
    let container = Container::new(&fake, BASE);
    block_on(container.refresh_token("jwt-1", "town-1")).unwrap();
    let sent = fake.last();
    assert_eq!(sent.url, "http://container/refresh-token");
    assert_eq!(
        body_json(&fake),
        json!({"token": "jwt-1", "townId": "town-1"})
    );
    assert_eq!(header(&sent, "x-town-config"), None);

    block_on(container.sync_config(CONFIG)).unwrap();
    let sent = fake.last();
    assert_eq!(sent.url, "http://container/sync-config");
    assert_eq!((sent.method, sent.body.as_deref()), ("POST", None));
    assert_eq!(header(&sent, "x-town-config"), Some(CONFIG));
    assert_eq!(sent.timeout_ms, 10_000);

    for (reply, want) in failures() {
        let fake = FakeHttp::new();
        fake.always("*", "*", reply);
        let container = Container::new(&fake, BASE);
        assert_eq!(
            block_on(container.refresh_token("t", "town-1")),
            Err(want.clone())
        );
        assert_eq!(block_on(container.sync_config(CONFIG)), Err(want));
    }
}

#[test]
fn health_carries_the_town_config_and_the_drain_headers_when_asked() {
    let fake = FakeHttp::new();
    fake.always(
        "GET",
        "/health",
        Reply::ok(json!({"status": "ok", "agents": 3, "servers": 1, "uptime": 10})),
    );
    let container = Container::new(&fake, "http://127.0.0.1:8788/");
    assert_eq!(block_on(container.health(CONFIG, None)), Ok("ok".into()));
    let sent = fake.last();
    assert_eq!(sent.url, "http://127.0.0.1:8788/health");
    assert_eq!((sent.method, sent.timeout_ms), ("GET", 5_000));
    assert_eq!(header(&sent, "x-town-config"), Some(CONFIG));
    assert_eq!(header(&sent, "x-drain-nonce"), None);
    let drain = DrainHeaders {
        nonce: "n-1",
        town_id: "town-1",
    };
    block_on(container.health(CONFIG, Some(drain))).unwrap();
    let sent = fake.last();
    assert_eq!(header(&sent, "x-drain-nonce"), Some("n-1"));
    assert_eq!(header(&sent, "x-town-id"), Some("town-1"));

    for (reply, want) in failures() {
        let fake = FakeHttp::new();
        fake.always("*", "*", reply);
        let got = block_on(Container::new(&fake, BASE).health(CONFIG, None));
        assert_eq!(got, Err(want));
    }
    for reply in [Reply::garbage(), Reply::ok(json!({}))] {
        let fake = FakeHttp::new();
        fake.always("*", "*", reply);
        let got = block_on(Container::new(&fake, BASE).health(CONFIG, None));
        assert!(matches!(got, Err(CallError::BadBody(_))));
    }
}

#[test]
fn timeouts_are_configurable_per_kind_of_call() {
    let fake = FakeHttp::new();
    fake.always("*", "*", Reply::ok(json!({"status": "ok"})));
    let container = Container::new(&fake, BASE).with_timeouts(ContainerTimeouts {
        start_ms: 30_000,
        status_ms: 2_000,
        health_ms: 1_000,
        call_ms: 1_500,
    });
    block_on(container.start(CONFIG, &start_body())).unwrap();
    assert_eq!(fake.last().timeout_ms, 30_000);
    block_on(container.status("a")).unwrap();
    assert_eq!(fake.last().timeout_ms, 2_000);
    block_on(container.health(CONFIG, None)).unwrap();
    assert_eq!(fake.last().timeout_ms, 1_000);
    block_on(container.stop("a")).unwrap();
    assert_eq!(fake.last().timeout_ms, 1_500);
}

#[test]
fn an_unconfigured_container_is_refused_without_sending() {
    let fake = FakeHttp::new();
    for base in ["", "container", "ftp://container"] {
        let container = Container::new(&fake, base);
        let refused = CallError::Refused(Refusal::BadBaseUrl(base.into()));
        assert_eq!(
            block_on(container.health(CONFIG, None)),
            Err(refused.clone())
        );
        assert_eq!(
            block_on(container.start(CONFIG, &start_body())),
            Err(refused)
        );
    }
    assert!(fake.requests().is_empty());
}
