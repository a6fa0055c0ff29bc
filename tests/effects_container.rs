//! The container control plane client against the recording fake: what each call sends, and its
//! outcome after success and after each kind of failure.

use gastown_town::domain::model::AgentRole;
use gastown_town::effects::container::{
    AgentProcess, Container, ContainerTimeouts, ProcessState, StartAgent,
};
use gastown_town::effects::fake::{block_on, header, FakeHttp, Reply};
use gastown_town::effects::{CallError, Refusal};
use serde_json::{json, Value as Json};

const BASE: &str = "http://container";

fn start_body() -> StartAgent {
    StartAgent {
        agent_id: "agent-1".into(),
        rig_id: "rig-1".into(),
        town_id: "town-1".into(),
        role: AgentRole::Polecat,
        name: "Toast".into(),
        identity: "Toast-polecat-rig-1@town-1".into(),
        prompt: "Fix the widget".into(),
        system_prompt: None,
        git_url: "https://github.com/acme/widgets.git".into(),
        branch: "gt/toast/bead-1".into(),
        default_branch: "main".into(),
        agent_token: "secret-token".into(),
    }
}

fn body_json(fake: &FakeHttp) -> Json {
    serde_json::from_str(fake.last().body.as_deref().expect("a body")).unwrap()
}

/// Each kind of failure the port can produce, and the error the client must report.
fn failures() -> Vec<(Reply, CallError)> {
    vec![
        (Reply::status(500), CallError::Status(500)),
        (Reply::status(404), CallError::Status(404)),
        (Reply::status(302), CallError::Status(302)),
        (Reply::Timeout, CallError::Timeout),
        (
            Reply::network("connection refused"),
            CallError::Network("connection refused".into()),
        ),
    ]
}

fn is_bad_body(e: &CallError) -> bool {
    matches!(e, CallError::BadBody(_))
}

#[test]
fn start_posts_exactly_the_protocol_fields_with_a_ten_second_timeout() {
    let fake = FakeHttp::new();
    fake.always(
        "POST",
        "/agents/start",
        Reply::ok(json!({"agent_id": "agent-1", "status": "running"})),
    );
    let container = Container::new(&fake, BASE);
    assert_eq!(block_on(container.start(&start_body())), Ok(()));

    let sent = fake.last();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.url, "http://container/agents/start");
    assert_eq!(sent.timeout_ms, 10_000);
    assert_eq!(header(&sent, "content-type"), Some("application/json"));
    assert_eq!(
        body_json(&fake),
        json!({
            "agent_id": "agent-1", "rig_id": "rig-1", "town_id": "town-1", "role": "polecat",
            "name": "Toast", "identity": "Toast-polecat-rig-1@town-1", "prompt": "Fix the widget",
            "git_url": "https://github.com/acme/widgets.git", "branch": "gt/toast/bead-1",
            "default_branch": "main", "agent_token": "secret-token",
        })
    );

    let refinery = StartAgent {
        role: AgentRole::Refinery,
        system_prompt: Some("You review".into()),
        ..start_body()
    };
    block_on(container.start(&refinery)).unwrap();
    let body = body_json(&fake);
    assert_eq!(body["system_prompt"], "You review");
    assert_eq!(body["role"], "refinery");
    assert_eq!(body.as_object().unwrap().len(), 12);
}

#[test]
fn start_fails_truthfully() {
    for (reply, want) in failures() {
        let fake = FakeHttp::new();
        fake.always("POST", "/agents/start", reply.clone());
        let got = block_on(Container::new(&fake, BASE).start(&start_body()));
        assert_eq!(got, Err(want), "{reply:?}");
    }
    for reply in [
        Reply::garbage(),
        Reply::ok(json!([1, 2])),
        Reply::Answer {
            status: 204,
            body: String::new(),
        },
    ] {
        let fake = FakeHttp::new();
        fake.always("POST", "/agents/start", reply.clone());
        let got = block_on(Container::new(&fake, BASE).start(&start_body()));
        assert!(is_bad_body(&got.clone().unwrap_err()), "{reply:?}: {got:?}");
    }
}

#[test]
fn status_reads_state_and_exit_reason_in_either_spelling() {
    let fake = FakeHttp::new();
    let path = "/agents/agent-1/status";
    fake.once("GET", path, Reply::ok(json!({"status": "running"})))
        .once(
            "GET",
            path,
            Reply::ok(json!({"status": "exited", "exit_reason": "completed"})),
        )
        .once(
            "GET",
            path,
            Reply::ok(json!({"status": "exited", "exitReason": "oom"})),
        )
        .once("GET", path, Reply::ok(json!({"status": "not_found"})))
        .once(
            "GET",
            path,
            Reply::ok(json!({"status": "starting", "exit_reason": null})),
        )
        .once("GET", path, Reply::ok(json!({"status": "stopped"})));
    let container = Container::new(&fake, BASE);
    let status = || block_on(container.status("agent-1")).unwrap();
    let process = |state, reason: Option<&str>| AgentProcess {
        state,
        exit_reason: reason.map(Into::into),
    };
    assert_eq!(status(), process(ProcessState::Running, None));
    assert_eq!(status(), process(ProcessState::Exited, Some("completed")));
    assert_eq!(status(), process(ProcessState::Exited, Some("oom")));
    assert_eq!(status(), process(ProcessState::NotFound, None));
    assert_eq!(status(), process(ProcessState::Starting, None));
    let other = status();
    assert_eq!(other.state, ProcessState::Other("stopped".into()));
    assert_eq!(other.state.as_str(), "stopped");

    let sent = fake.last();
    assert_eq!((sent.method, sent.body), ("GET", None));
    assert_eq!(sent.url, "http://container/agents/agent-1/status");
    assert_eq!(sent.timeout_ms, 5_000);
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
        assert!(is_bad_body(&got.clone().unwrap_err()), "{reply:?}: {got:?}");
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
fn stop_posts_an_empty_object_with_a_five_second_timeout() {
    let fake = FakeHttp::new();
    fake.always(
        "POST",
        "/agents/agent-1/stop",
        Reply::ok(json!({"stopped": true})),
    );
    assert_eq!(
        block_on(Container::new(&fake, BASE).stop("agent-1")),
        Ok(())
    );
    let sent = fake.last();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.url, "http://container/agents/agent-1/stop");
    assert_eq!(sent.body.as_deref(), Some("{}"));
    assert_eq!(sent.timeout_ms, 5_000);

    for (reply, want) in failures() {
        let fake = FakeHttp::new();
        fake.always("*", "*", reply);
        assert_eq!(
            block_on(Container::new(&fake, BASE).stop("agent-1")),
            Err(want)
        );
    }
    let fake = FakeHttp::new();
    fake.always("*", "*", Reply::garbage());
    assert!(is_bad_body(
        &block_on(Container::new(&fake, BASE).stop("agent-1")).unwrap_err()
    ));
}

#[test]
fn message_posts_the_prompt() {
    let fake = FakeHttp::new();
    fake.always(
        "POST",
        "/agents/mayor-1/message",
        Reply::ok(json!({"delivered": true})),
    );
    let prompt = "Wrap up, \"please\"\nthanks";
    assert_eq!(
        block_on(Container::new(&fake, BASE).message("mayor-1", prompt)),
        Ok(())
    );
    let sent = fake.last();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.url, "http://container/agents/mayor-1/message");
    assert_eq!(sent.timeout_ms, 5_000);
    assert_eq!(body_json(&fake), json!({"prompt": prompt}));

    for (reply, want) in failures() {
        let fake = FakeHttp::new();
        fake.always("*", "*", reply);
        assert_eq!(
            block_on(Container::new(&fake, BASE).message("mayor-1", "hi")),
            Err(want)
        );
    }
    let fake = FakeHttp::new();
    fake.always("*", "*", Reply::garbage());
    assert!(is_bad_body(
        &block_on(Container::new(&fake, BASE).message("mayor-1", "hi")).unwrap_err()
    ));
}

#[test]
fn health_returns_the_planes_status() {
    let fake = FakeHttp::new();
    fake.always(
        "GET",
        "/health",
        Reply::ok(json!({"status": "ok", "agents": 3})),
    );
    assert_eq!(
        block_on(Container::new(&fake, "http://127.0.0.1:8788/").health()),
        Ok("ok".into())
    );
    let sent = fake.last();
    assert_eq!(sent.url, "http://127.0.0.1:8788/health");
    assert_eq!((sent.method, sent.timeout_ms), ("GET", 5_000));

    for (reply, want) in failures() {
        let fake = FakeHttp::new();
        fake.always("*", "*", reply);
        assert_eq!(block_on(Container::new(&fake, BASE).health()), Err(want));
    }
    for reply in [Reply::garbage(), Reply::ok(json!({}))] {
        let fake = FakeHttp::new();
        fake.always("*", "*", reply);
        assert!(is_bad_body(
            &block_on(Container::new(&fake, BASE).health()).unwrap_err()
        ));
    }
}

#[test]
fn timeouts_are_configurable() {
    let fake = FakeHttp::new();
    fake.always("*", "*", Reply::ok(json!({"status": "ok"})));
    let container = Container::new(&fake, BASE).with_timeouts(ContainerTimeouts {
        start_ms: 30_000,
        call_ms: 1_500,
    });
    block_on(container.start(&start_body())).unwrap();
    assert_eq!(fake.last().timeout_ms, 30_000);
    block_on(container.health()).unwrap();
    assert_eq!(fake.last().timeout_ms, 1_500);
    block_on(container.stop("a")).unwrap();
    assert_eq!(fake.last().timeout_ms, 1_500);
}

#[test]
fn an_unconfigured_plane_is_refused_without_sending() {
    let fake = FakeHttp::new();
    for base in ["", "container", "ftp://container"] {
        let container = Container::new(&fake, base);
        let refused = CallError::Refused(Refusal::BadBaseUrl(base.into()));
        assert_eq!(block_on(container.health()), Err(refused.clone()));
        assert_eq!(block_on(container.start(&start_body())), Err(refused));
    }
    assert!(fake.requests().is_empty());
}
