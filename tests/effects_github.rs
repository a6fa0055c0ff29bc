//! The GitHub client against the recording fake: method, path, body and headers of every call,
//! the PR-feedback rules of GASTOWN-DOMAIN.md 4.3, and each outcome after success and after
//! each kind of failure.

use gastown_town::effects::github::{GitHub, GitHubOptions, PrFeedback, PrState};
use gastown_town::effects::{CallError, Refusal};
use gastown_town::ports::HttpRequest;
use gastown_town::testing::http::{block_on, header, FakeHttp, Reply};
use serde_json::{json, Value as Json};

const API: &str = "https://api.github.test";
const PR: &str = "https://github.com/acme/widgets/pull/42";
const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const PULL: &str = "/repos/acme/widgets/pulls/42";
const RUNS: &str =
    "/repos/acme/widgets/commits/0123456789abcdef0123456789abcdef01234567/check-runs";
const STATUS: &str = "/repos/acme/widgets/commits/0123456789abcdef0123456789abcdef01234567/status";

fn github(fake: &FakeHttp) -> GitHub<'_, FakeHttp> {
    GitHub::new(fake, API, "tok-123")
}

fn assert_authenticated(request: &HttpRequest) {
    assert_eq!(header(request, "authorization"), Some("Bearer tok-123"));
    assert_eq!(
        header(request, "accept"),
        Some("application/vnd.github+json")
    );
    assert_eq!(header(request, "user-agent"), Some("gastown-town"));
    assert_eq!(request.timeout_ms, 10_000);
}

fn failures() -> Vec<(Reply, CallError)> {
    vec![
        (Reply::status(500), CallError::Status(500)),
        (Reply::status(401), CallError::Status(401)),
        (Reply::status(404), CallError::Status(404)),
        (Reply::Timeout, CallError::Timeout),
        (
            Reply::network("connection reset"),
            CallError::Network("connection reset".into()),
        ),
    ]
}

fn bad_body<T: std::fmt::Debug>(outcome: Result<T, CallError>) -> String {
    match outcome {
        Err(CallError::BadBody(m)) => m,
        other => panic!("expected a bad body, got {other:?}"),
    }
}

#[test]
fn pr_status_reads_open_closed_and_merged() {
    let cases = [
        (json!({"state": "open", "merged": false}), PrState::Open),
        (
            json!({"state": "closed", "merged": false, "merged_at": null}),
            PrState::Closed,
        ),
        (json!({"state": "closed", "merged": true}), PrState::Merged),
        (
            json!({"state": "closed", "merged_at": "2026-01-01T00:00:00Z"}),
            PrState::Merged,
        ),
    ];
    for (body, want) in cases {
        let fake = FakeHttp::new();
        fake.always("GET", PULL, Reply::ok(body.clone()));
        assert_eq!(block_on(github(&fake).pr_status(PR)), Ok(want), "{body}");
        let sent = fake.last();
        assert_eq!(sent.method, "GET");
        assert_eq!(sent.url, format!("{API}{PULL}"));
        assert_eq!(sent.body, None);
        assert_authenticated(&sent);
    }
    assert_eq!(PrState::Merged.as_str(), "merged");
}

#[test]
fn pr_status_fails_truthfully() {
    for (reply, want) in failures() {
        let fake = FakeHttp::new();
        fake.always("*", "*", reply.clone());
        assert_eq!(
            block_on(github(&fake).pr_status(PR)),
            Err(want),
            "{reply:?}"
        );
    }
    let fake = FakeHttp::new();
    fake.always("*", "*", Reply::garbage());
    bad_body(block_on(github(&fake).pr_status(PR)));
    let fake = FakeHttp::new();
    fake.always("*", "*", Reply::ok(json!({"state": "draft"})));
    let m = bad_body(block_on(github(&fake).pr_status(PR)));
    assert!(m.contains("draft"), "{m}");
}

/// Scripts healthy answers to the three feedback requests.
fn answer_feedback(fake: &FakeHttp, threads: Json, runs: Json, legacy: Json) {
    let graphql = json!({"data": {"repository": {"pullRequest": {
        "headRefOid": SHA, "reviewThreads": threads}}}});
    fake.always("POST", "/graphql", Reply::ok(graphql))
        .always("GET", RUNS, Reply::ok(runs))
        .always("GET", STATUS, Reply::ok(legacy));
}

fn feedback_fake(threads: Json, runs: Json, legacy: Json) -> FakeHttp {
    let fake = FakeHttp::new();
    answer_feedback(&fake, threads, runs, legacy);
    fake
}

fn threads(resolved: &[bool], more: bool) -> Json {
    let nodes: Vec<Json> = resolved.iter().map(|r| json!({"isResolved": r})).collect();
    json!({"nodes": nodes, "pageInfo": {"hasNextPage": more}})
}

fn runs(total: u64, runs: &[(&str, Option<&str>)]) -> Json {
    let runs: Vec<Json> = runs
        .iter()
        .map(|(s, c)| json!({"name": "ci", "status": s, "conclusion": c}))
        .collect();
    json!({"total_count": total, "check_runs": runs})
}

fn legacy(state: &str, total: u64) -> Json {
    json!({"state": state, "total_count": total, "statuses": []})
}

#[test]
fn feedback_asks_graphql_then_check_runs_then_the_combined_status() {
    let fake = feedback_fake(
        threads(&[true], false),
        runs(1, &[("completed", Some("success"))]),
        legacy("pending", 0),
    );
    let got = block_on(github(&fake).feedback(PR)).unwrap();
    assert_eq!(
        got,
        PrFeedback {
            head_sha: SHA.into(),
            has_unresolved_comments: false,
            has_failing_checks: false,
            all_checks_pass: true,
            has_unchecked_runs: false,
        }
    );

    let sent = fake.requests();
    assert_eq!(sent.len(), 3);
    for r in &sent {
        assert_authenticated(r);
    }
    assert_eq!(
        (sent[0].method, sent[0].url.as_str()),
        ("POST", "https://api.github.test/graphql")
    );
    let query: Json = serde_json::from_str(sent[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(
        query["variables"],
        json!({"owner": "acme", "repo": "widgets", "number": 42})
    );
    let text = query["query"].as_str().unwrap();
    for part in [
        "reviewThreads(first: 100)",
        "isResolved",
        "hasNextPage",
        "headRefOid",
    ] {
        assert!(text.contains(part), "query lacks {part}: {text}");
    }
    assert_eq!(header(&sent[0], "content-type"), Some("application/json"));
    assert_eq!(sent[1].method, "GET");
    assert_eq!(sent[1].url, format!("{API}{RUNS}?per_page=100"));
    assert_eq!(sent[2].method, "GET");
    assert_eq!(sent[2].url, format!("{API}{STATUS}"));
}

#[test]
fn feedback_reports_unresolved_threads_and_unread_pages() {
    let ok_runs = || runs(0, &[]);
    let unresolved = |t| {
        let fake = feedback_fake(t, ok_runs(), legacy("pending", 0));
        block_on(github(&fake).feedback(PR))
            .unwrap()
            .has_unresolved_comments
    };
    assert!(!unresolved(threads(&[], false)));
    assert!(!unresolved(threads(&[true, true], false)));
    assert!(unresolved(threads(&[true, false], false)));
    assert!(unresolved(threads(&[true], true)));
}

#[test]
fn feedback_reports_failing_unchecked_and_passing_checks() {
    let check = |r: Json, l: Json| {
        let fake = feedback_fake(threads(&[], false), r, l);
        block_on(github(&fake).feedback(PR)).unwrap()
    };
    let failing = check(
        runs(
            2,
            &[
                ("completed", Some("success")),
                ("completed", Some("failure")),
            ],
        ),
        legacy("success", 1),
    );
    assert!(failing.has_failing_checks && !failing.all_checks_pass);

    let skipped = check(
        runs(
            2,
            &[
                ("completed", Some("skipped")),
                ("completed", Some("success")),
            ],
        ),
        legacy("success", 2),
    );
    assert!(skipped.all_checks_pass && !skipped.has_failing_checks);

    let running = check(runs(1, &[("in_progress", None)]), legacy("pending", 0));
    assert!(!running.all_checks_pass && !running.has_failing_checks);

    let unchecked = check(
        runs(101, &[("completed", Some("success"))]),
        legacy("pending", 0),
    );
    assert!(unchecked.has_unchecked_runs && !unchecked.all_checks_pass);

    let legacy_failing = check(runs(0, &[]), legacy("failure", 1));
    assert!(!legacy_failing.all_checks_pass && !legacy_failing.has_failing_checks);
}

#[test]
fn feedback_fails_at_the_step_that_failed_and_asks_no_further() {
    let steps = [("POST", "/graphql"), ("GET", RUNS), ("GET", STATUS)];
    for (i, (method, path)) in steps.iter().enumerate() {
        for (reply, want) in failures() {
            let fake = FakeHttp::new();
            // Scripted first, the failure answers before the healthy rules.
            fake.once(method, path, reply.clone());
            answer_feedback(
                &fake,
                threads(&[], false),
                runs(0, &[]),
                legacy("success", 0),
            );
            assert_eq!(
                block_on(github(&fake).feedback(PR)),
                Err(want),
                "step {path}, {reply:?}"
            );
            assert_eq!(fake.requests().len(), i + 1, "step {path}");
        }
    }
}

#[test]
fn feedback_refuses_bodies_that_do_not_say_what_it_needs() {
    let graphql_error = json!({"data": {"repository": {"pullRequest": null}},
        "errors": [{"type": "NOT_FOUND", "message": "Could not resolve to a PullRequest"}]});
    let fake = FakeHttp::new();
    fake.always("POST", "/graphql", Reply::ok(graphql_error));
    let m = bad_body(block_on(github(&fake).feedback(PR)));
    assert!(m.contains("Could not resolve"), "{m}");
    assert_eq!(fake.requests().len(), 1);

    let fake = feedback_fake(
        threads(&[], false),
        json!({"check_runs": []}),
        legacy("success", 0),
    );
    let m = bad_body(block_on(github(&fake).feedback(PR)));
    assert!(m.contains("total_count"), "{m}");

    let fake = FakeHttp::new();
    fake.always("*", "*", Reply::garbage());
    bad_body(block_on(github(&fake).feedback(PR)));
}

#[test]
fn merge_puts_the_merge_method_and_the_checked_head_and_succeeds_only_when_merged() {
    let path = "/repos/acme/widgets/pulls/42/merge";
    let fake = FakeHttp::new();
    fake.always(
        "PUT",
        path,
        Reply::ok(
            json!({"sha": SHA, "merged": true, "message": "Pull Request successfully merged"}),
        ),
    );
    assert_eq!(block_on(github(&fake).merge(PR, SHA)), Ok(()));
    let sent = fake.last();
    assert_eq!(sent.method, "PUT");
    assert_eq!(sent.url, format!("{API}{path}"));
    assert_authenticated(&sent);
    let body: Json = serde_json::from_str(sent.body.as_deref().unwrap()).unwrap();
    assert_eq!(body, json!({"merge_method": "merge", "sha": SHA}));

    for (status, message) in [
        (405, "Pull Request is not mergeable"),
        (409, "Head branch was modified"),
    ] {
        let fake = FakeHttp::new();
        fake.always(
            "PUT",
            path,
            Reply::json(status, json!({"message": message})),
        );
        assert_eq!(
            block_on(github(&fake).merge(PR, SHA)),
            Err(CallError::Status(status))
        );
    }
    for (reply, want) in failures() {
        let fake = FakeHttp::new();
        fake.always("*", "*", reply);
        assert_eq!(block_on(github(&fake).merge(PR, SHA)), Err(want));
    }
    let fake = FakeHttp::new();
    fake.always("PUT", path, Reply::ok(json!({"merged": false})));
    bad_body(block_on(github(&fake).merge(PR, SHA)));
    let fake = FakeHttp::new();
    fake.always("PUT", path, Reply::garbage());
    bad_body(block_on(github(&fake).merge(PR, SHA)));
}

#[test]
fn other_hosts_and_missing_configuration_are_refused_without_sending() {
    let fake = FakeHttp::new();
    let gitlab = "https://gitlab.com/acme/widgets/-/merge_requests/4";
    let gh = github(&fake);
    assert_eq!(
        block_on(gh.pr_status(gitlab)),
        Err(CallError::Refused(Refusal::GitLab(gitlab.into())))
    );
    assert_eq!(
        block_on(gh.merge("https://example.com/a/b/pull/1", SHA)),
        Err(CallError::Refused(Refusal::UnsupportedHost(
            "example.com".into()
        )))
    );
    assert_eq!(
        block_on(gh.feedback("http://github.com/a/b/pull/1")),
        Err(CallError::Refused(Refusal::NotHttps))
    );
    let no_token = GitHub::new(&fake, API, " ");
    assert_eq!(
        block_on(no_token.pr_status(PR)),
        Err(CallError::Refused(Refusal::NoToken))
    );
    let no_base = GitHub::new(&fake, "", "tok");
    assert_eq!(
        block_on(no_base.merge(PR, SHA)),
        Err(CallError::Refused(Refusal::BadBaseUrl(String::new())))
    );
    assert!(fake.requests().is_empty());
}

#[test]
fn options_set_the_timeout_and_user_agent() {
    let fake = FakeHttp::new();
    fake.always("*", "*", Reply::ok(json!({"state": "open"})));
    let gh = GitHub::new(&fake, "http://127.0.0.1:9/", "t").with_options(GitHubOptions {
        timeout_ms: 2_500,
        user_agent: "gastown-test".into(),
    });
    block_on(gh.pr_status(PR)).unwrap();
    let sent = fake.last();
    assert_eq!(sent.url, format!("http://127.0.0.1:9{PULL}"));
    assert_eq!(sent.timeout_ms, 2_500);
    assert_eq!(header(&sent, "user-agent"), Some("gastown-test"));
}
