//! Every failed outbound call is logged once as structured JSON naming the call and the reason;
//! successes are not logged, and tokens never are.

use gastown_town::effects::container::{Container, StartAgent, StartRole};
use gastown_town::effects::github::GitHub;
use gastown_town::testing::http::{block_on, FakeHttp, Reply};
use serde_json::{json, Value as Json};
use std::sync::{Mutex, Once};

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Sends log lines to `LINES` (once per test binary).
fn capture_logs() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| gastown_town::log::install(|l| LINES.lock().unwrap().push(l.into())));
}

/// Every line logged so far, parsed.
fn lines() -> Vec<Json> {
    LINES
        .lock()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str::<Json>(l).expect("log lines are JSON"))
        .collect()
}

/// The lines whose `url` starts with `base` (tests run in parallel and share the sink).
fn logged(base: &str) -> Vec<Json> {
    lines()
        .into_iter()
        .filter(|l| l["url"].as_str().is_some_and(|u| u.starts_with(base)))
        .collect()
}

fn start(token: &str) -> StartAgent {
    StartAgent {
        agent_id: "a-1".into(),
        rig_id: "r".into(),
        town_id: "t".into(),
        role: StartRole::Polecat,
        name: "Toast".into(),
        identity: "Toast".into(),
        prompt: "p".into(),
        model: "m".into(),
        small_model: "s".into(),
        system_prompt: None,
        git_url: "g".into(),
        branch: "b".into(),
        default_branch: "main".into(),
        env_vars: [("GASTOWN_CONTAINER_TOKEN".to_owned(), token.to_owned())].into(),
        start_point: None,
        lightweight: None,
        organization_id: None,
        rigs: None,
    }
}

#[test]
fn each_kind_of_container_failure_is_logged_with_its_reason() {
    capture_logs();
    let base = "http://log-container";
    let fake = FakeHttp::new();
    fake.once("*", "*", Reply::json(503, json!({"error": "draining"})))
        .once("*", "*", Reply::Timeout)
        .once("*", "*", Reply::network("connection refused"))
        .once(
            "*",
            "*",
            Reply::json(400, json!({"error": "Invalid request body", "issues": []})),
        )
        .always("*", "*", Reply::ok(json!({"status": "running"})));
    let container = Container::new(&fake, base);
    for _ in 0..4 {
        assert!(block_on(container.start("{}", &start("agent-secret"))).is_err());
    }
    block_on(container.status("a-1")).unwrap();

    let lines = logged(base);
    let reasons: Vec<&str> = lines
        .iter()
        .map(|l| l["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        ["http_status", "timeout", "network", "http_status"]
    );
    for l in &lines {
        assert_eq!(l["level"], "warn");
        assert_eq!(l["msg"], "outbound call failed");
        assert_eq!(l["call"], "container.start");
        assert_eq!(l["method"], "POST");
        assert_eq!(l["url"], "http://log-container/agents/start");
    }
    assert_eq!(lines[0]["status"], "503");
    assert!(lines[0]["body"].as_str().unwrap().contains("draining"));
    assert_eq!(lines[2]["detail"], "network error: connection refused");
    assert_eq!(
        lines[3]["detail"],
        "answered HTTP 400: Invalid request body"
    );
    let all = LINES.lock().unwrap().join("\n");
    assert!(!all.contains("agent-secret"));
}

#[test]
fn github_failures_and_refusals_are_logged_without_the_token() {
    capture_logs();
    let base = "http://log-github";
    let fake = FakeHttp::new();
    fake.always(
        "PUT",
        "*",
        Reply::json(405, json!({"message": "Pull Request is not mergeable"})),
    );
    let gh = GitHub::new(&fake, base, "gh-secret");
    assert!(block_on(gh.merge("https://github.com/a/b/pull/1", "abc")).is_err());
    let failed = logged(base);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["call"], "github.merge");
    assert_eq!(failed[0]["reason"], "http_status");
    assert_eq!(failed[0]["status"], "405");
    assert!(failed[0]["body"]
        .as_str()
        .unwrap()
        .contains("not mergeable"));

    // A refusal sends nothing, so it has no URL: find it by its detail.
    let gitlab = "https://gitlab.com/a/b/-/merge_requests/9";
    assert!(block_on(gh.pr_status(gitlab)).is_err());
    let refusal: Json = lines()
        .into_iter()
        .find(|l| l["detail"].as_str().is_some_and(|d| d.contains(gitlab)))
        .expect("the refusal is logged");
    assert_eq!(refusal["call"], "github.pr_status");
    assert_eq!(refusal["reason"], "refused");
    assert_eq!(refusal["refusal"], "gitlab_unsupported");
    assert_eq!(
        (&refusal["method"], &refusal["url"]),
        (&json!(""), &json!(""))
    );
    assert!(!LINES.lock().unwrap().join("\n").contains("gh-secret"));
}

#[test]
fn lines_below_the_threshold_are_dropped() {
    use gastown_town::log::{self, Level};
    capture_logs();
    let with = |marker: &str| {
        lines()
            .iter()
            .any(|l| l["msg"] == "threshold-probe" && l["marker"] == marker)
    };
    log::set_threshold(Level::Debug);
    log::debug("threshold-probe", &[("marker", "debug-shown")]);
    // Other tests here log warnings only, which every threshold below Error keeps.
    log::set_threshold(Level::Warn);
    log::debug("threshold-probe", &[("marker", "debug-dropped")]);
    log::info("threshold-probe", &[("marker", "info-dropped")]);
    log::warn("threshold-probe", &[("marker", "warn-shown")]);
    log::set_threshold(Level::Info);
    log::debug("threshold-probe", &[("marker", "debug-dropped-by-default")]);
    log::info("threshold-probe", &[("marker", "info-shown")]);
    assert!(with("debug-shown") && with("warn-shown") && with("info-shown"));
    assert!(!with("debug-dropped") && !with("info-dropped") && !with("debug-dropped-by-default"));
}
