//! What each side effect's answer does to the town (tick::side_effects: plan, calls, settle),
//! against the recording fake: dispatches that the container accepts or refuses in each way,
//! PR polls, merges, nudges and mayor notices, the tick deadline, and the tally the
//! `reconciler_tick` point reports.

use gastown_town::effects::remotes::{Remotes, Tally};
use gastown_town::jwt;
use gastown_town::metrics::layout::blob;
use gastown_town::metrics::point::DataPoint;
use gastown_town::metrics::writer::{Analytics, Origin};
use gastown_town::params;
use gastown_town::ports::{Http, HttpError, HttpRequest, HttpResponse};
use gastown_town::testing::http::{block_on, header, path_of, FakeHttp, Reply};
use gastown_town::testing::ports::{ManualClock, RecordingSink};
use gastown_town::testing::town::*;
use gastown_town::tick::apply::apply;
use gastown_town::tick::side_effects::perform;
use gastown_town::vocabulary::actions::{Action, Effect, MayorNotice, NudgeTier};
use gastown_town::vocabulary::config::{RefineryConfig, TownConfig};
use gastown_town::vocabulary::events::EventKind;
use gastown_town::vocabulary::model::*;
use gastown_town::vocabulary::time::{iso, Millis, MINUTE, SECOND};
use serde_json::{json, Value as Json};

const PR: &str = "https://github.com/o/r1/pull/7";
const PULL: &str = "/repos/o/r1/pulls/7";
const HEAD: &str = "abc123";
const GRAPHQL: &str = "/graphql";
const RUNS: &str = "/repos/o/r1/commits/abc123/check-runs";
const STATUS: &str = "/repos/o/r1/commits/abc123/status";

/// What one `perform` did.
struct Performed {
    tally: Tally,
    points: Vec<DataPoint>,
}

/// Runs `effects` through prepare, call and settle at the town's `now`.
fn perform_with<H: Http>(
    town: &Town,
    http: &H,
    clock: &ManualClock,
    remotes: &Remotes,
    effects: &[Effect],
) -> Performed {
    let sink = RecordingSink::default();
    let analytics = Analytics::new(
        &sink,
        Origin {
            town_id: TOWN_ID.into(),
            owner_user_id: "owner-1".into(),
        },
    );
    let tally = block_on(perform(
        &town.ctx(),
        clock,
        &analytics,
        http,
        remotes,
        effects,
        town.now(),
    ));
    drop(analytics);
    Performed {
        tally,
        points: sink.points.into_inner(),
    }
}

fn run(town: &Town, http: &FakeHttp, effects: &[Effect]) -> Performed {
    perform_with(
        town,
        http,
        &ManualClock::at(town.now()),
        &remotes(),
        effects,
    )
}

/// A fake container that takes the token pushed before starts (`POST /refresh-token`), as
/// the real one does; every other answer is scripted by the test.
fn container() -> FakeHttp {
    let http = FakeHttp::new();
    http.always(
        "POST",
        "/refresh-token",
        Reply::ok(json!({"refreshed": true})),
    );
    http
}

/// The requests other than the token push.
fn calls(http: &FakeHttp) -> Vec<HttpRequest> {
    http.requests()
        .into_iter()
        .filter(|r| !r.url.ends_with("/refresh-token"))
        .collect()
}

fn tally(attempted: u64, succeeded: u64, failed: u64) -> Tally {
    Tally {
        attempted,
        succeeded,
        failed,
    }
}

/// The effect of applying `action` (its synchronous part runs, as in the tick).
fn effect_of(town: &Town, action: Action) -> Effect {
    town.run(|ctx| apply(ctx, &action))
        .unwrap()
        .expect("the action has an outbound part")
}

fn dispatch(town: &Town, agent: &str, bead: &str) -> Effect {
    effect_of(
        town,
        Action::DispatchAgent {
            agent_id: Some(agent.into()),
            bead_id: bead.into(),
            rig_id: "r1".into(),
        },
    )
}

fn last_dispatch_error(town: &Town, bead: &str) -> Option<String> {
    town.db
        .one(
            "SELECT last_dispatch_error FROM beads WHERE bead_id = ?",
            &params![bead],
        )
        .unwrap()
        .opt_text("last_dispatch_error")
        .unwrap()
}

fn points_named<'p>(points: &'p [DataPoint], event: &str) -> Vec<&'p DataPoint> {
    points.iter().filter(|p| p.index == event).collect()
}

fn sent_json(request: &HttpRequest) -> Json {
    serde_json::from_str(request.body.as_deref().expect("a body")).unwrap()
}

fn paths(http: &FakeHttp) -> Vec<(String, String)> {
    http.requests()
        .iter()
        .map(|r| {
            (
                r.method.to_owned(),
                gastown_town::testing::http::path_of(&r.url).to_owned(),
            )
        })
        .collect()
}

// ---- dispatch ---------------------------------------------------------------------------------

/// Rig r1, issue b1 (open, attempted twice before, the last attempt failed), polecat p1 idle
/// and hooked to it after three failed starts.
fn polecat_town() -> Town {
    let town = TownBuilder::new()
        .rig("r1")
        .bead(
            BeadSpec::issue("b1")
                .rig("r1")
                .title("Fix the login")
                .assignee("p1")
                .dispatch_attempts(2),
        )
        .agent(
            AgentSpec::polecat("p1")
                .name("Toast")
                .rig("r1")
                .hook("b1")
                .dispatch_attempts(3),
        )
        .build();
    town.db
        .execute(
            "UPDATE beads SET last_dispatch_error = 'answered HTTP 502' WHERE bead_id = 'b1'",
            &[],
        )
        .unwrap();
    town
}

#[test]
fn an_accepted_start_counts_the_attempt_clears_the_last_error_and_resets_the_agent() {
    let town = polecat_town();
    let effect = dispatch(&town, "p1", "b1");
    let http = container();
    http.always(
        "POST",
        "/agents/start",
        Reply::ok(json!({"status": "running"})),
    );

    let done = run(&town, &http, &[effect]);

    assert_eq!(done.tally, tally(1, 1, 0));
    let b = town.bead("b1");
    assert_eq!(b.status, BeadStatus::InProgress);
    assert_eq!(b.dispatch_attempts, 3);
    assert_eq!(
        b.last_dispatch_attempt_at.as_deref(),
        Some(iso(T0).as_str())
    );
    assert_eq!(last_dispatch_error(&town, "b1"), None);
    let p = town.agent("p1");
    assert_eq!(p.status, AgentStatus::Working);
    assert_eq!(
        p.dispatch_attempts, 0,
        "a started polecat's attempts are reset"
    );
    assert_eq!(p.last_activity_at.as_deref(), Some(iso(T0).as_str()));
    assert_eq!(p.current_hook_bead_id.as_deref(), Some("b1"));

    let sent = http.last();
    let start = sent_json(&sent);
    assert_eq!(start["agentId"], "p1");
    assert_eq!(start["rigId"], "r1");
    assert_eq!(start["townId"], TOWN_ID);
    assert_eq!(start["role"], "polecat");
    assert_eq!(start["prompt"], "Fix the login");
    assert_eq!(start["branch"], "gt/toast/b1");
    assert_eq!(start["defaultBranch"], "main");
    assert_eq!(start["model"], "anthropic/claude-sonnet-4.6");
    assert_eq!(start["smallModel"], "anthropic/claude-haiku-4.5");
    assert!(start.get("startPoint").is_none() && start.get("lightweight").is_none());
    let env = &start["envVars"];
    assert_eq!(env["GASTOWN_API_URL"], "https://gastown.test");
    let token = env["GASTOWN_CONTAINER_TOKEN"].as_str().unwrap();
    let verified = jwt::verify("jwt-secret", token, T0, jwt::Expiry::Enforced).unwrap();
    assert_eq!(verified.claims.town_id(), TOWN_ID);
    assert!(matches!(verified.claims, jwt::Claims::Container { .. }));
    let session = env["GASTOWN_SESSION_TOKEN"].as_str().unwrap();
    let verified = jwt::verify("jwt-secret", session, T0, jwt::Expiry::Enforced).unwrap();
    assert!(
        matches!(&verified.claims, jwt::Claims::Agent { agent_id, rig_id, .. } if agent_id == "p1" && rig_id == "r1")
    );
    let config: Json = serde_json::from_str(header(&sent, "x-town-config").unwrap()).unwrap();
    assert_eq!(config["town_id"], TOWN_ID);
    assert_eq!(config["gastown_api_url"], "https://gastown.test");
    let pushed = &http.requests()[0];
    assert_eq!(path_of(&pushed.url), "/refresh-token");
    assert_eq!(
        sent_json(pushed),
        json!({"token": token, "townId": TOWN_ID}),
        "the token the start carries is pushed first"
    );
    let spawned = points_named(&done.points, "agent.spawned");
    assert_eq!(spawned.len(), 1);
    assert_eq!(spawned[0].blob(blob::AGENT_ID), "p1");
    assert_eq!(spawned[0].blob(blob::BEAD_ID), "b1");
    assert_eq!(spawned[0].blob(blob::RIG_ID), "r1");
    assert_eq!(spawned[0].blob(blob::ROLE), "polecat");
    assert!(points_named(&done.points, "agent.dispatch_failed").is_empty());
}

/// A refinery hooked to merge request m1 (in progress) of issue b1.
fn refinery_town() -> Town {
    TownBuilder::new()
        .rig("r1")
        .bead(BeadSpec::issue("b1").rig("r1").status(BeadStatus::InReview))
        .bead(
            BeadSpec::mr("m1", "b1", "gt/toast/b1")
                .rig("r1")
                .target("develop")
                .status(BeadStatus::InProgress)
                .dispatch_attempts(1),
        )
        .agent(
            AgentSpec::refinery("ref")
                .rig("r1")
                .hook("m1")
                .dispatch_attempts(2),
        )
        .build()
}

#[test]
fn an_accepted_refinery_start_keeps_its_attempts_counting() {
    let town = refinery_town();
    let effect = dispatch(&town, "ref", "m1");
    let http = container();
    http.always("POST", "/agents/start", Reply::ok(json!({})));

    assert_eq!(run(&town, &http, &[effect]).tally, tally(1, 1, 0));

    assert_eq!(
        town.agent("ref").dispatch_attempts,
        3,
        "refinery attempts are monotonic"
    );
    assert_eq!(town.agent("ref").status, AgentStatus::Working);
    assert_eq!(town.bead("m1").dispatch_attempts, 2);
    let start = sent_json(&http.last());
    assert_eq!(start["role"], "refinery");
    assert_eq!(
        start["branch"], "gt/ref/m1",
        "a refinery works on a branch of its own"
    );
    assert_eq!(
        start["defaultBranch"], "main",
        "the clone is of the rig's default"
    );
    let prompt = start["systemPrompt"].as_str().unwrap();
    assert!(prompt.contains("Review merge request m1"));
    assert!(
        prompt.contains("branch gt/toast/b1 into develop"),
        "{prompt}"
    );
}

/// Each way a start can fail, and the reason the bead keeps.
fn start_failures() -> Vec<(Reply, &'static str)> {
    vec![
        (Reply::status(500), "answered HTTP 500"),
        (Reply::status(429), "answered HTTP 429"),
        (Reply::Timeout, "timed out"),
        (
            Reply::network("connection refused"),
            "network error: connection refused",
        ),
        (
            Reply::json(400, json!({"error": "Invalid request body", "issues": []})),
            "answered HTTP 400: Invalid request body",
        ),
        (
            Reply::json(503, json!({"error": "Container is draining"})),
            "answered HTTP 503: Container is draining",
        ),
    ]
}

#[test]
fn each_failed_start_records_why_idles_the_agent_and_reopens_the_bead_keeping_the_hook() {
    for (reply, reason) in start_failures() {
        let town = polecat_town();
        let effect = dispatch(&town, "p1", "b1");
        let http = container();
        http.always("POST", "/agents/start", reply.clone());

        let done = run(&town, &http, &[effect]);

        assert_eq!(done.tally, tally(1, 0, 1), "{reply:?}");
        assert_eq!(calls(&http).len(), 1);
        let b = town.bead("b1");
        assert_eq!(b.status, BeadStatus::Open, "{reply:?}");
        assert_eq!(b.assignee_agent_bead_id.as_deref(), Some("p1"));
        assert_eq!(
            b.dispatch_attempts, 3,
            "the attempt counts: the backoff follows it"
        );
        assert_eq!(
            b.last_dispatch_attempt_at.as_deref(),
            Some(iso(T0).as_str())
        );
        let error = last_dispatch_error(&town, "b1").expect("the failure is recorded");
        assert!(error.starts_with(reason), "{error:?} for {reply:?}");
        let p = town.agent("p1");
        assert_eq!(p.status, AgentStatus::Idle);
        assert_eq!(p.current_hook_bead_id.as_deref(), Some("b1"));
        assert_eq!(p.dispatch_attempts, 4, "no reset without a start");
        let failed = points_named(&done.points, "agent.dispatch_failed");
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].blob(blob::LABEL), error);
        assert_eq!(failed[0].blob(blob::AGENT_ID), "p1");
        assert!(points_named(&done.points, "agent.spawned").is_empty());
    }
}

#[test]
fn a_start_refused_before_sending_fails_the_same_way() {
    let town = polecat_town();
    let effect = dispatch(&town, "p1", "b1");
    let http = container();
    let remotes = Remotes {
        container_base: String::new(),
        ..remotes()
    };

    let done = perform_with(&town, &http, &ManualClock::at(T0), &remotes, &[effect]);

    assert_eq!(done.tally, tally(1, 0, 1));
    assert!(http.requests().is_empty());
    assert_eq!(town.bead("b1").status, BeadStatus::Open);
    assert!(last_dispatch_error(&town, "b1")
        .unwrap()
        .starts_with("refused: base URL"));
    assert_eq!(town.agent("p1").status, AgentStatus::Idle);
}

#[test]
fn a_failed_start_of_a_merge_request_leaves_it_in_progress_for_its_refinery() {
    let town = refinery_town();
    let effect = dispatch(&town, "ref", "m1");
    let http = container();
    http.always("POST", "/agents/start", Reply::status(503));

    assert_eq!(run(&town, &http, &[effect]).tally, tally(1, 0, 1));

    assert_eq!(town.bead("m1").status, BeadStatus::InProgress);
    assert_eq!(
        last_dispatch_error(&town, "m1").as_deref(),
        Some("answered HTTP 503")
    );
    let r = town.agent("ref");
    assert_eq!(r.status, AgentStatus::Idle);
    assert_eq!(
        r.current_hook_bead_id.as_deref(),
        Some("m1"),
        "R6 re-dispatches it"
    );
    assert_eq!(r.dispatch_attempts, 3);
}

#[test]
fn the_accepted_starts_of_a_batch_are_settled_together_and_a_refused_one_apart() {
    let town = TownBuilder::new()
        .rig("r1")
        .bead(BeadSpec::issue("b1").rig("r1").assignee("p1"))
        .bead(BeadSpec::issue("b2").rig("r1").assignee("p2"))
        .bead(BeadSpec::issue("b3").rig("r1").status(BeadStatus::InReview))
        .bead(
            BeadSpec::mr("m1", "b3", "gt/x/b3")
                .rig("r1")
                .status(BeadStatus::InProgress),
        )
        .agent(
            AgentSpec::polecat("p1")
                .rig("r1")
                .hook("b1")
                .dispatch_attempts(2),
        )
        .agent(
            AgentSpec::polecat("p2")
                .rig("r1")
                .hook("b2")
                .dispatch_attempts(1),
        )
        .agent(
            AgentSpec::refinery("ref")
                .rig("r1")
                .hook("m1")
                .dispatch_attempts(2),
        )
        .build();
    for bead in ["b1", "b2", "m1"] {
        town.db
            .execute(
                "UPDATE beads SET last_dispatch_error = 'answered HTTP 502' WHERE bead_id = ?",
                &params![bead],
            )
            .unwrap();
    }
    let effects = [
        dispatch(&town, "p1", "b1"),
        dispatch(&town, "ref", "m1"),
        dispatch(&town, "p2", "b2"),
    ];
    let http = container();
    http.once("POST", "/agents/start", Reply::ok(json!({})));
    http.once("POST", "/agents/start", Reply::ok(json!({})));
    http.once("POST", "/agents/start", Reply::status(500));

    let done = run(&town, &http, &effects);

    assert_eq!(done.tally, tally(3, 2, 1));
    assert_eq!(town.agent("p1").dispatch_attempts, 0, "reset");
    assert_eq!(
        town.agent("ref").dispatch_attempts,
        3,
        "refineries keep counting"
    );
    assert_eq!(last_dispatch_error(&town, "b1"), None);
    assert_eq!(last_dispatch_error(&town, "m1"), None);
    assert_eq!(
        town.agent("p2").dispatch_attempts,
        2,
        "a refused start keeps its count"
    );
    assert_eq!(town.agent("p2").status, AgentStatus::Idle);
    assert_eq!(
        last_dispatch_error(&town, "b2").as_deref(),
        Some("answered HTTP 500")
    );
    let spawned: Vec<_> = points_named(&done.points, "agent.spawned")
        .iter()
        .map(|p| p.blob(blob::AGENT_ID).to_owned())
        .collect();
    assert_eq!(spawned, ["p1", "ref"]);
    assert_eq!(points_named(&done.points, "agent.dispatch_failed").len(), 1);
}

#[test]
fn a_success_after_failures_clears_the_recorded_error() {
    let town = polecat_town();
    let http = container();
    http.once("POST", "/agents/start", Reply::status(500))
        .always("POST", "/agents/start", Reply::ok(json!({})));
    let first = dispatch(&town, "p1", "b1");
    assert_eq!(run(&town, &http, &[first]).tally, tally(1, 0, 1));
    assert!(last_dispatch_error(&town, "b1").is_some());
    town.advance(3 * MINUTE);
    let second = dispatch(&town, "p1", "b1");
    assert_eq!(run(&town, &http, &[second]).tally, tally(1, 1, 0));
    assert_eq!(last_dispatch_error(&town, "b1"), None);
    assert_eq!(town.bead("b1").dispatch_attempts, 4);
    assert_eq!(town.bead("b1").status, BeadStatus::InProgress);
}

#[test]
fn a_dispatch_that_cannot_be_prepared_fails_without_a_call_or_a_counted_attempt() {
    let town = polecat_town();
    let _ = dispatch(&town, "p1", "b1");
    let http = container();
    let effect = Effect::Dispatch {
        agent_id: "p1".into(),
        bead_id: "b1".into(),
        rig_id: "no-such-rig".into(),
    };

    let done = run(&town, &http, &[effect]);

    assert_eq!(done.tally, tally(1, 0, 1));
    assert!(http.requests().is_empty());
    // The preparation was rolled back (no attempt counted) and the start released as refused.
    assert_eq!(town.bead("b1").dispatch_attempts, 2);
    assert_eq!(town.agent("p1").dispatch_attempts, 3);
    assert_eq!(town.agent("p1").status, AgentStatus::Idle);
    assert_eq!(town.bead("b1").status, BeadStatus::Open);
    assert_eq!(
        last_dispatch_error(&town, "b1").as_deref(),
        Some("rig no-such-rig not found")
    );
}

// ---- PR polls ---------------------------------------------------------------------------------

/// Issue b1 in review with merge request m1 in progress on PR #7 of o/r1.
fn pr_town(refinery: RefineryConfig) -> Town {
    TownBuilder::new()
        .config(TownConfig {
            refinery,
            ..TownConfig::default()
        })
        .rig("r1")
        .bead(BeadSpec::issue("b1").rig("r1").status(BeadStatus::InReview))
        .bead(
            BeadSpec::mr("m1", "b1", "gt/toast/b1")
                .rig("r1")
                .status(BeadStatus::InProgress)
                .pr_url(PR),
        )
        .build()
}

fn no_feedback() -> RefineryConfig {
    RefineryConfig::default()
}

fn poll(town: &Town) -> Effect {
    effect_of(
        town,
        Action::PollPr {
            bead_id: "m1".into(),
            pr_url: PR.into(),
        },
    )
}

fn pull(state: &str, merged: bool) -> Reply {
    Reply::ok(json!({"number": 7, "state": state, "merged": merged}))
}

/// What the review threads and checks of the PR's head say.
#[derive(Clone, Copy)]
struct Checks {
    unresolved: bool,
    /// The one check run's conclusion; `None` = still running.
    conclusion: Option<&'static str>,
}

const GREEN: Checks = Checks {
    unresolved: false,
    conclusion: Some("success"),
};

/// Scripts the three feedback requests (threads, check runs, combined status).
fn answer_feedback(http: &FakeHttp, checks: Checks) {
    http.once(
        "POST",
        GRAPHQL,
        Reply::ok(json!({"data": {"repository": {"pullRequest": {
            "headRefOid": HEAD,
            "reviewThreads": {"nodes": [{"isResolved": !checks.unresolved}], "pageInfo": {"hasNextPage": false}}
        }}}})),
    );
    let run = match checks.conclusion {
        Some(c) => json!({"status": "completed", "conclusion": c}),
        None => json!({"status": "in_progress", "conclusion": null}),
    };
    http.once(
        "GET",
        RUNS,
        Reply::ok(json!({"total_count": 1, "check_runs": [run]})),
    );
    http.once(
        "GET",
        STATUS,
        Reply::ok(json!({"state": "pending", "total_count": 0})),
    );
}

/// A PR host answering one poll: the PR's state, then (when asked) its feedback.
fn host(state: &str, merged: bool, checks: Option<Checks>) -> FakeHttp {
    let http = container();
    http.once("GET", PULL, pull(state, merged));
    if let Some(c) = checks {
        answer_feedback(&http, c);
    }
    http
}

fn poll_null_count(town: &Town) -> Option<i64> {
    town.bead("m1")
        .metadata
        .get("poll_null_count")
        .and_then(Json::as_i64)
}

fn events_of_type(town: &Town, event_type: &str) -> Vec<Stored> {
    town.town_events()
        .into_iter()
        .filter(|e| e.event_type == event_type)
        .collect()
}

#[test]
fn ten_consecutive_failed_polls_fail_the_merge_request_with_pr_poll_failed() {
    let town = pr_town(no_feedback());
    let failing = container();
    failing.always("GET", PULL, Reply::status(502));
    for n in 1..=9 {
        let done = run(&town, &failing, &[poll(&town)]);
        assert_eq!(done.tally, tally(1, 0, 1));
        assert_eq!(poll_null_count(&town), Some(n));
        assert_eq!(town.bead("m1").status, BeadStatus::InProgress, "after {n}");
        town.advance(MINUTE);
    }
    // One success in between starts the count again.
    assert_eq!(
        run(&town, &host("open", false, None), &[poll(&town)]).tally,
        tally(1, 1, 0)
    );
    assert_eq!(poll_null_count(&town), Some(0));
    for n in 1..=9 {
        town.advance(MINUTE);
        run(&town, &failing, &[poll(&town)]);
        assert_eq!(poll_null_count(&town), Some(n));
    }
    assert_eq!(town.bead("m1").status, BeadStatus::InProgress);

    town.advance(MINUTE);
    let timeout = container();
    timeout.always("GET", PULL, Reply::Timeout);
    assert_eq!(run(&town, &timeout, &[poll(&town)]).tally, tally(1, 0, 1));

    let mr = town.bead("m1");
    assert_eq!(mr.status, BeadStatus::Failed);
    assert_eq!(poll_null_count(&town), Some(10));
    assert_eq!(mr.metadata["failureReason"], "pr_poll_failed");
    let message = mr.metadata["failureMessage"].as_str().unwrap();
    assert!(
        message.starts_with("10 consecutive PR status checks failed (last: timed out)"),
        "{message}"
    );
    let failed = town
        .history("m1")
        .into_iter()
        .filter(|e| e.event_type == "status_changed" && e.new_value.as_deref() == Some("failed"))
        .count();
    assert_eq!(failed, 1);
    // A poll answered after the MR failed changes nothing.
    let before = town.snapshot();
    run(
        &town,
        &host("closed", true, None),
        &[Effect::PollPr {
            bead_id: "m1".into(),
            pr_url: PR.into(),
        }],
    );
    assert_eq!(town.snapshot(), before);
}

#[test]
fn a_merged_or_closed_pr_records_pr_status_changed_and_an_open_one_nothing() {
    for (state, merged, recorded) in [
        ("closed", true, Some("merged")),
        ("closed", false, Some("closed")),
        ("open", false, None),
    ] {
        let town = pr_town(no_feedback());
        let http = host(state, merged, None);
        let done = run(&town, &http, &[poll(&town)]);
        assert_eq!(done.tally, tally(1, 1, 0));
        assert_eq!(
            paths(&http),
            [("GET".to_owned(), PULL.to_owned())],
            "no feedback asked"
        );
        let changes = events_of_type(&town, "pr_status_changed");
        match recorded {
            Some(pr_state) => {
                assert_eq!(changes.len(), 1, "{state} {merged}");
                assert_eq!(changes[0].bead_id.as_deref(), Some("m1"));
                assert_eq!(
                    changes[0].payload,
                    json!({"pr_url": PR, "pr_state": pr_state})
                );
            }
            None => assert!(changes.is_empty()),
        }
        // The MR itself waits for the event to be applied by the next drain.
        assert_eq!(town.bead("m1").status, BeadStatus::InProgress);
        assert_eq!(poll_null_count(&town), Some(0));
    }
}

/// Applies the pending `pr_feedback_detected` events as the drain would, marking them processed.
fn drain_feedback(town: &Town) {
    for e in events_of_type(town, "pr_feedback_detected") {
        let kind = EventKind::from_parts(&e.event_type, e.payload.clone()).unwrap();
        town.apply(kind, None, e.bead_id.as_deref()).unwrap();
    }
    town.db
        .execute(
            "UPDATE town_events SET processed_at = ? WHERE processed_at IS NULL",
            &params![iso(town.now())],
        )
        .unwrap();
}

fn feedback_events(town: &Town) -> i64 {
    town.db
        .one(
            "SELECT COUNT(*) AS n FROM town_events WHERE event_type = 'pr_feedback_detected'",
            &[],
        )
        .unwrap()
        .int("n")
        .unwrap()
}

#[test]
fn auto_resolve_records_pr_feedback_detected_once_while_a_live_feedback_bead_blocks() {
    let town = pr_town(RefineryConfig {
        auto_resolve_pr_feedback: true,
        ..RefineryConfig::default()
    });
    let needs_work = Checks {
        unresolved: true,
        conclusion: Some("failure"),
    };
    let http = host("open", false, Some(needs_work));
    assert_eq!(run(&town, &http, &[poll(&town)]).tally, tally(1, 1, 0));
    assert_eq!(
        paths(&http),
        [
            ("GET".to_owned(), PULL.to_owned()),
            ("POST".to_owned(), GRAPHQL.to_owned()),
            ("GET".to_owned(), RUNS.to_owned()),
            ("GET".to_owned(), STATUS.to_owned()),
        ]
    );
    let [detected] = &events_of_type(&town, "pr_feedback_detected")[..] else {
        panic!("one pr_feedback_detected");
    };
    assert_eq!(
        detected.payload,
        json!({
            "mr_bead_id": "m1", "pr_url": PR, "pr_number": 7, "repo": "o/r1",
            "branch": "gt/toast/b1", "has_unresolved_comments": true,
            "has_failing_checks": true, "has_unchecked_runs": false,
        })
    );
    assert_eq!(
        town.review("m1").last_feedback_check_at.as_deref(),
        Some(iso(T0).as_str())
    );
    drain_feedback(&town);
    let [fixup] = &town.beads_where("b.labels LIKE '%gt:pr-feedback%'")[..] else {
        panic!("one feedback bead");
    };
    assert!(town.has_dep("m1", &fixup.bead_id, DependencyType::Blocks));

    // Still failing, but a live fix-up already blocks the MR: nothing new.
    town.advance(MINUTE);
    run(
        &town,
        &host("open", false, Some(needs_work)),
        &[poll(&town)],
    );
    assert_eq!(feedback_events(&town), 1);
    assert_eq!(
        town.review("m1").last_feedback_check_at.as_deref(),
        Some(iso(T0 + MINUTE).as_str())
    );

    // The fix-up is done; the PR still needs work: detected again.
    town.run(|ctx| {
        gastown_town::domain::beads::set_status(ctx, &fixup.bead_id, BeadStatus::Closed, "p1", None)
    })
    .unwrap();
    town.advance(MINUTE);
    run(
        &town,
        &host("open", false, Some(needs_work)),
        &[poll(&town)],
    );
    assert_eq!(feedback_events(&town), 2);

    // A PR that needs nothing records nothing.
    drain_feedback(&town);
    for b in town.beads_where("b.labels LIKE '%gt:pr-feedback%' AND b.status = 'open'") {
        town.run(|ctx| {
            gastown_town::domain::beads::set_status(ctx, &b.bead_id, BeadStatus::Closed, "p1", None)
        })
        .unwrap();
    }
    town.advance(MINUTE);
    run(&town, &host("open", false, Some(GREEN)), &[poll(&town)]);
    assert_eq!(feedback_events(&town), 2);
}

fn auto_merge(delay_minutes: u32) -> RefineryConfig {
    RefineryConfig {
        auto_merge: true,
        auto_merge_delay_minutes: Some(delay_minutes),
        ..RefineryConfig::default()
    }
}

fn ready_since(town: &Town) -> Option<String> {
    town.review("m1").auto_merge_ready_since
}

#[test]
fn the_auto_merge_grace_timer_is_set_kept_elapses_and_resets_when_not_green() {
    let town = pr_town(auto_merge(2));
    let poll_with = |checks: Checks| {
        let http = host("open", false, Some(checks));
        let done = run(&town, &http, &[poll(&town)]);
        assert_eq!(done.tally, tally(1, 1, 0));
        assert_eq!(http.requests().len(), 4);
    };

    // Not green (CI running): no timer.
    poll_with(Checks {
        unresolved: false,
        conclusion: None,
    });
    assert_eq!(ready_since(&town), None);

    // Green: the timer starts now, and is kept while green.
    town.advance(MINUTE);
    let started = iso(town.now());
    poll_with(GREEN);
    assert_eq!(ready_since(&town), Some(started.clone()));
    town.advance(MINUTE);
    poll_with(GREEN);
    assert_eq!(ready_since(&town), Some(started.clone()));
    assert!(events_of_type(&town, "pr_auto_merge").is_empty());

    // An unresolved thread: the timer resets.
    town.advance(MINUTE);
    poll_with(Checks {
        unresolved: true,
        conclusion: Some("success"),
    });
    assert_eq!(ready_since(&town), None);

    // Green again from here; exactly the delay later the merge is asked for.
    town.advance(MINUTE);
    let restarted = town.now();
    poll_with(GREEN);
    town.advance(2 * MINUTE - 1);
    poll_with(GREEN);
    assert!(events_of_type(&town, "pr_auto_merge").is_empty());
    town.advance(1);
    poll_with(GREEN);
    assert_eq!(ready_since(&town), Some(iso(restarted)));
    let merge = events_of_type(&town, "pr_auto_merge");
    assert_eq!(merge.len(), 1);
    assert_eq!(merge[0].payload, json!({"mr_bead_id": "m1", "pr_url": PR}));
    assert_eq!(merge[0].bead_id.as_deref(), Some("m1"));
}

#[test]
fn a_failed_feedback_check_is_a_failed_poll_that_keeps_the_timer() {
    let town = pr_town(auto_merge(1));
    run(&town, &host("open", false, Some(GREEN)), &[poll(&town)]);
    let since = ready_since(&town).expect("timer started");
    town.advance(5 * MINUTE);
    let http = container();
    http.once("GET", PULL, pull("open", false))
        .once("POST", GRAPHQL, Reply::status(502));

    let done = run(&town, &http, &[poll(&town)]);

    assert_eq!(done.tally, tally(1, 0, 1));
    assert_eq!(
        http.requests().len(),
        2,
        "the check stops at the first failure"
    );
    assert_eq!(ready_since(&town), Some(since));
    assert!(events_of_type(&town, "pr_auto_merge").is_empty());
    assert_eq!(poll_null_count(&town), Some(0), "the PR itself answered");
}

#[test]
fn without_auto_merge_the_delay_asks_for_no_feedback() {
    let town = pr_town(RefineryConfig {
        auto_merge: false,
        auto_merge_delay_minutes: Some(1),
        ..RefineryConfig::default()
    });
    let http = host("open", false, None);
    assert_eq!(run(&town, &http, &[poll(&town)]).tally, tally(1, 1, 0));
    assert_eq!(http.requests().len(), 1);
    assert_eq!(ready_since(&town), None);
}

// ---- merges -----------------------------------------------------------------------------------

/// m1 flagged for auto-merge, its grace timer running.
fn merge_town() -> (Town, Effect) {
    let town = pr_town(auto_merge(1));
    town.db
        .execute(
            "UPDATE review_metadata SET auto_merge_ready_since = ? WHERE bead_id = 'm1'",
            &params![iso(T0 - 2 * MINUTE)],
        )
        .unwrap();
    town.run(|ctx| {
        gastown_town::domain::beads::merge_metadata(
            ctx,
            "m1",
            &json!({"auto_merge_pending": 1})
                .as_object()
                .unwrap()
                .clone(),
        )
    })
    .unwrap();
    let effect = effect_of(
        &town,
        Action::MergePr {
            bead_id: "m1".into(),
            pr_url: PR.into(),
        },
    );
    (town, effect)
}

fn merge_answer(merged: bool) -> Reply {
    Reply::ok(json!({"merged": merged, "message": "Pull Request successfully merged"}))
}

#[test]
fn a_merge_of_a_green_pr_puts_it_and_records_merged() {
    let (town, effect) = merge_town();
    let http = container();
    answer_feedback(&http, GREEN);
    http.once("PUT", "/repos/o/r1/pulls/7/merge", merge_answer(true));

    assert_eq!(run(&town, &http, &[effect]).tally, tally(1, 1, 0));

    let sent = http.last();
    assert_eq!(sent.method, "PUT");
    assert_eq!(
        sent_json(&sent),
        json!({"merge_method": "merge", "sha": HEAD}),
        "pinned to the head that was checked"
    );
    let changes = events_of_type(&town, "pr_status_changed");
    assert_eq!(changes.len(), 1);
    assert_eq!(
        changes[0].payload,
        json!({"pr_url": PR, "pr_state": "merged"})
    );
}

#[test]
fn a_merge_of_a_pr_no_longer_green_sends_no_put_fails_and_restarts_the_grace_period() {
    for checks in [
        Checks {
            unresolved: true,
            conclusion: Some("success"),
        },
        Checks {
            unresolved: false,
            conclusion: Some("failure"),
        },
        Checks {
            unresolved: false,
            conclusion: None,
        },
    ] {
        let (town, effect) = merge_town();
        let http = container();
        answer_feedback(&http, checks);

        assert_eq!(
            run(&town, &http, &[effect]).tally,
            tally(1, 0, 1),
            "not merged is not done"
        );

        assert!(http.requests().iter().all(|r| r.method != "PUT"));
        assert!(town.bead("m1").metadata.get("auto_merge_pending").is_none());
        assert_eq!(ready_since(&town), None);
        assert!(events_of_type(&town, "pr_status_changed").is_empty());
    }
}

#[test]
fn a_refused_merge_fails_clears_the_flag_and_restarts_the_grace_period() {
    for put in [
        Reply::status(405),
        Reply::status(409),
        merge_answer(false),
        Reply::garbage(),
        Reply::Timeout,
    ] {
        let (town, effect) = merge_town();
        let http = container();
        answer_feedback(&http, GREEN);
        http.once("PUT", "/repos/o/r1/pulls/7/merge", put.clone());

        assert_eq!(
            run(&town, &http, &[effect]).tally,
            tally(1, 0, 1),
            "{put:?}"
        );

        assert!(town.bead("m1").metadata.get("auto_merge_pending").is_none());
        assert_eq!(ready_since(&town), None);
        assert!(events_of_type(&town, "pr_status_changed").is_empty());
        assert_eq!(town.bead("m1").status, BeadStatus::InProgress);
    }
}

#[test]
fn a_failed_recheck_blocks_the_merge_as_there_is_no_checked_head_to_pin() {
    let (town, effect) = merge_town();
    let http = container();
    http.once("POST", GRAPHQL, Reply::status(500)).once(
        "PUT",
        "/repos/o/r1/pulls/7/merge",
        merge_answer(true),
    );

    assert_eq!(run(&town, &http, &[effect]).tally, tally(1, 0, 1));
    assert!(http.requests().iter().all(|r| r.method != "PUT"));
    assert!(town.bead("m1").metadata.get("auto_merge_pending").is_none());
    assert!(events_of_type(&town, "pr_status_changed").is_empty());
}

// ---- nudges, stops and the mayor --------------------------------------------------------------

fn nudge_town() -> (Town, Effect, String) {
    let town = TownBuilder::new()
        .rig("r1")
        .bead(
            BeadSpec::issue("b1")
                .rig("r1")
                .status(BeadStatus::InProgress),
        )
        .agent(
            AgentSpec::polecat("p1")
                .rig("r1")
                .hook("b1")
                .status(AgentStatus::Working),
        )
        .build();
    let effect = effect_of(
        &town,
        Action::SendNudge {
            agent_id: "p1".into(),
            message: "Still there?".into(),
            tier: NudgeTier::Warn,
        },
    );
    let Effect::Nudge { nudge_id, .. } = &effect else {
        panic!("a nudge effect");
    };
    let id = nudge_id.clone();
    (town, effect, id)
}

fn delivered_at(town: &Town, nudge_id: &str) -> Option<String> {
    gastown_town::store::nudges::get(&town.db, nudge_id)
        .unwrap()
        .unwrap()
        .delivered_at
}

#[test]
fn a_delivered_nudge_marks_its_row_and_an_undelivered_one_stays_pending() {
    let (town, effect, nudge) = nudge_town();
    let http = container();
    http.once(
        "POST",
        "/agents/p1/message",
        Reply::ok(json!({"delivered": true})),
    );
    assert_eq!(run(&town, &http, &[effect]).tally, tally(1, 1, 0));
    assert_eq!(sent_json(&http.last()), json!({"prompt": "Still there?"}));
    assert_eq!(delivered_at(&town, &nudge), Some(iso(T0)));

    for reply in [Reply::status(404), Reply::status(400), Reply::Timeout] {
        let (town, effect, nudge) = nudge_town();
        let http = container();
        http.once("POST", "/agents/p1/message", reply.clone());
        assert_eq!(
            run(&town, &http, &[effect]).tally,
            tally(1, 0, 1),
            "{reply:?}"
        );
        assert_eq!(delivered_at(&town, &nudge), None);
    }
}

#[test]
fn a_stop_succeeds_when_the_agent_is_stopped_or_already_gone_and_changes_nothing() {
    for (reply, ok) in [
        (Reply::ok(json!({"stopped": true})), true),
        (
            Reply::json(404, json!({"error": "Agent p1 not found"})),
            true,
        ),
        (Reply::status(500), false),
        (Reply::network("reset"), false),
    ] {
        let (town, _, _) = nudge_town();
        let before = town.snapshot();
        let http = container();
        http.once("POST", "/agents/p1/stop", reply.clone());
        let stop = Effect::Stop {
            agent_id: "p1".into(),
            reason: "GUPP".into(),
        };
        let expected = if ok { tally(1, 1, 0) } else { tally(1, 0, 1) };
        assert_eq!(run(&town, &http, &[stop]).tally, expected, "{reply:?}");
        assert_eq!(sent_json(&http.last()), json!({}));
        assert_eq!(town.snapshot(), before);
    }
}

fn mayor_town() -> (Town, Effect) {
    let town = TownBuilder::new()
        .agent(AgentSpec::mayor("mayor-1"))
        .build();
    let effect = effect_of(
        &town,
        Action::NotifyMayor {
            message: "Breaker open".into(),
            notice: MayorNotice::BreakerOpened,
        },
    );
    (town, effect)
}

#[test]
fn a_running_mayor_is_messaged_and_one_not_running_is_started() {
    for state in ["running", "starting"] {
        let (town, effect) = mayor_town();
        let http = container();
        http.once(
            "GET",
            "/agents/mayor-1/status",
            Reply::ok(json!({"status": state})),
        )
        .once("POST", "/agents/mayor-1/message", Reply::ok(json!({})));
        assert_eq!(run(&town, &http, &[effect]).tally, tally(1, 1, 0));
        assert_eq!(
            paths(&http),
            [
                ("POST".to_owned(), "/refresh-token".to_owned()),
                ("GET".to_owned(), "/agents/mayor-1/status".to_owned()),
                ("POST".to_owned(), "/agents/mayor-1/message".to_owned()),
            ]
        );
        assert_eq!(sent_json(&http.last()), json!({"prompt": "Breaker open"}));
        assert_eq!(town.agent("mayor-1").status, AgentStatus::Idle);
    }

    for status in [
        Reply::json(404, json!({"error": "Agent mayor-1 not found"})),
        Reply::ok(json!({"status": "exited", "exitReason": "completed"})),
        Reply::ok(json!({"status": "failed"})),
    ] {
        let (town, effect) = mayor_town();
        let http = container();
        http.once("GET", "/agents/mayor-1/status", status).once(
            "POST",
            "/agents/start",
            Reply::json(201, json!({})),
        );
        assert_eq!(run(&town, &http, &[effect]).tally, tally(1, 1, 0));
        let start = sent_json(&http.last());
        assert_eq!(start["agentId"], "mayor-1");
        assert_eq!(start["rigId"], format!("mayor-{TOWN_ID}"));
        assert_eq!(start["role"], "mayor");
        assert_eq!(start["prompt"], "Breaker open");
        assert_eq!(start["branch"], "gt/mayor");
        assert_eq!(
            (&start["gitUrl"], &start["defaultBranch"]),
            (&json!(""), &json!("main"))
        );
        assert_eq!(start["rigs"], json!([]));
        assert!(start["envVars"]["GASTOWN_CONTAINER_TOKEN"].is_string());
        assert_eq!(town.agent("mayor-1").status, AgentStatus::Working);
    }
}

#[test]
fn a_mayor_notice_fails_when_the_container_cannot_be_asked_or_refuses() {
    let (town, effect) = mayor_town();
    let http = container();
    http.once("GET", "/agents/mayor-1/status", Reply::status(500));
    assert_eq!(run(&town, &http, &[effect]).tally, tally(1, 0, 1));
    assert_eq!(
        calls(&http).len(),
        1,
        "nothing sent without knowing its state"
    );

    let (town, effect) = mayor_town();
    let http = container();
    http.once(
        "GET",
        "/agents/mayor-1/status",
        Reply::ok(json!({"status": "not_found"})),
    )
    .once("POST", "/agents/start", Reply::status(400));
    assert_eq!(run(&town, &http, &[effect]).tally, tally(1, 0, 1));
    assert_eq!(town.agent("mayor-1").status, AgentStatus::Idle);
}

#[test]
fn a_town_without_a_mayor_gets_one_when_told() {
    let town = TownBuilder::new().build();
    let effect = effect_of(
        &town,
        Action::NotifyMayor {
            message: "Breaker open".into(),
            notice: MayorNotice::BreakerOpened,
        },
    );
    let http = container();
    http.always("GET", "*", Reply::status(404))
        .once("POST", "/agents/start", Reply::ok(json!({})));
    assert_eq!(run(&town, &http, &[effect]).tally, tally(1, 1, 0));
    let mayors = town.beads_where("b.type = 'agent'");
    assert_eq!(mayors.len(), 1);
    let mayor = town.agent(&mayors[0].bead_id);
    assert_eq!(mayor.role, AgentRole::Mayor);
    assert_eq!(mayor.status, AgentStatus::Working);
    assert_eq!(sent_json(&http.last())["agentId"], mayor.agent_id.as_str());
}

// ---- the deadline and the tally ---------------------------------------------------------------

/// A port whose every call takes `per_call` on the shared clock.
struct Slow<'a> {
    inner: &'a FakeHttp,
    clock: &'a ManualClock,
    per_call: Millis,
}

impl Http for Slow<'_> {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        self.clock.advance(self.per_call);
        self.inner.send(request).await
    }
}

/// Four open issues of r1, each hooked by its own idle polecat, plus m1 on PR #7.
fn busy_town() -> Town {
    let mut b = TownBuilder::new().rig("r1").bead(
        BeadSpec::issue("src")
            .rig("r1")
            .status(BeadStatus::InReview),
    );
    b = b.bead(
        BeadSpec::mr("m1", "src", "gt/x/src")
            .rig("r1")
            .status(BeadStatus::InProgress)
            .pr_url(PR),
    );
    for i in 1..=4 {
        b = b
            .bead(
                BeadSpec::issue(&format!("b{i}"))
                    .rig("r1")
                    .assignee(&format!("p{i}")),
            )
            .agent(
                AgentSpec::polecat(&format!("p{i}"))
                    .rig("r1")
                    .hook(&format!("b{i}")),
            );
    }
    b.build()
}

#[test]
fn effects_not_started_by_the_deadline_fail_and_settle_as_failures() {
    let town = busy_town();
    let effects: Vec<Effect> = (1..=4)
        .map(|i| dispatch(&town, &format!("p{i}"), &format!("b{i}")))
        .chain([poll(&town)])
        .collect();
    let fake = container();
    fake.always("POST", "/agents/start", Reply::ok(json!({})))
        .always("GET", PULL, pull("open", false));
    let clock = ManualClock::at(T0);
    let slow = Slow {
        inner: &fake,
        clock: &clock,
        per_call: 8 * SECOND,
    };
    // One at a time, 8 s each, under a 28 s deadline: the token push takes 0-8 s, the starts
    // begin at 8, 16 and 24 s; the fourth would start at 32 s, so it and the poll after it are
    // never sent.
    let remotes = Remotes {
        concurrency: 1,
        deadline_ms: 28 * SECOND,
        ..remotes()
    };

    let done = perform_with(&town, &slow, &clock, &remotes, &effects);

    assert_eq!(done.tally, tally(5, 3, 2));
    assert_eq!(calls(&fake).len(), 3);
    for i in 1..=3 {
        assert_eq!(town.bead(&format!("b{i}")).status, BeadStatus::InProgress);
        assert_eq!(last_dispatch_error(&town, &format!("b{i}")), None);
    }
    let late = town.bead("b4");
    assert_eq!(late.status, BeadStatus::Open);
    assert_eq!(
        last_dispatch_error(&town, "b4").as_deref(),
        Some("not started before the tick deadline")
    );
    assert_eq!(town.agent("p4").status, AgentStatus::Idle);
    assert_eq!(town.agent("p4").current_hook_bead_id.as_deref(), Some("b4"));
    // The late poll counts as a failed poll.
    assert_eq!(poll_null_count(&town), Some(1));
    let failed = points_named(&done.points, "agent.dispatch_failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].blob(blob::BEAD_ID), "b4");
}

#[test]
fn the_tally_counts_every_effect_once_by_its_outcome() {
    let town = busy_town();
    let effects = vec![
        dispatch(&town, "p1", "b1"),
        dispatch(&town, "p2", "b2"),
        dispatch(&town, "p3", "b3"),
        poll(&town),
        Effect::Stop {
            agent_id: "p4".into(),
            reason: "done".into(),
        },
        // Cannot be prepared: counted attempted and failed, never sent.
        Effect::Dispatch {
            agent_id: "p4".into(),
            bead_id: "b4".into(),
            rig_id: "gone".into(),
        },
    ];
    let http = container();
    http.once("POST", "/agents/start", Reply::ok(json!({})))
        .once("POST", "/agents/start", Reply::status(500))
        .once("POST", "/agents/start", Reply::status(400))
        .once("GET", PULL, pull("open", false))
        .once("POST", "/agents/p4/stop", Reply::Timeout);

    let done = run(&town, &http, &effects);

    assert_eq!(done.tally, tally(6, 2, 4));
    assert_eq!(calls(&http).len(), 5);
    assert_eq!(run(&town, &http, &[]).tally, tally(0, 0, 0));
    // What a tick writes into its point (doubles 4/5/6): here four dispatches (B2) and one poll
    // (R1), the starts refused and the PR host answering 404 for anything.
    let town = busy_town();
    let http = container();
    http.always("POST", "/agents/start", Reply::status(500));
    let sink = RecordingSink::default();
    let report = town.tick_with(&http, &sink);
    let m = &report.metrics;
    assert_eq!(
        (
            m.side_effects_attempted,
            m.side_effects_succeeded,
            m.side_effects_failed
        ),
        (5, 0, 5)
    );
    assert_eq!(report.point.unwrap().doubles[3..6], [5.0, 0.0, 5.0]);
}

// ---- follow-ups: notices heard, starts never sent, convoy branches ------------------------------

fn notified_at(town: &Town) -> Option<String> {
    town.db
        .one(
            "SELECT breaker_notified_at FROM town WHERE singleton = 1",
            &[],
        )
        .unwrap()
        .opt_text("breaker_notified_at")
        .unwrap()
}

#[test]
fn the_breaker_notice_is_recorded_only_once_the_mayor_heard_it() {
    let (town, effect) = mayor_town();
    let http = container();
    http.once("GET", "/agents/mayor-1/status", Reply::status(500));
    run(&town, &http, std::slice::from_ref(&effect));
    assert_eq!(
        notified_at(&town),
        None,
        "unheard: the next tick tells again"
    );

    let http = container();
    http.once(
        "GET",
        "/agents/mayor-1/status",
        Reply::ok(json!({"status": "running"})),
    )
    .once("POST", "/agents/mayor-1/message", Reply::ok(json!({})));
    run(&town, &http, &[effect]);
    assert!(notified_at(&town).is_some());

    let closed = effect_of(
        &town,
        Action::NotifyMayor {
            message: "Breaker closed".into(),
            notice: MayorNotice::BreakerClosed,
        },
    );
    let http = container();
    http.once(
        "GET",
        "/agents/mayor-1/status",
        Reply::ok(json!({"status": "running"})),
    )
    .once("POST", "/agents/mayor-1/message", Reply::ok(json!({})));
    run(&town, &http, &[closed]);
    assert_eq!(notified_at(&town), None);
}

#[test]
fn a_start_that_cannot_be_prepared_releases_the_agent_and_the_bead() {
    let town = polecat_town();
    let effect = dispatch(&town, "p1", "b1");
    town.db
        .execute("DELETE FROM rigs WHERE rig_id = 'r1'", &[])
        .unwrap();
    let http = container();
    assert_eq!(run(&town, &http, &[effect]).tally, tally(1, 0, 1));
    assert!(http.requests().is_empty(), "nothing was sent");
    assert_eq!(town.agent("p1").status, AgentStatus::Idle);
    assert_eq!(town.agent("p1").current_hook_bead_id.as_deref(), Some("b1"));
    assert_eq!(town.bead("b1").status, BeadStatus::Open);
    let error = town
        .db
        .one(
            "SELECT last_dispatch_error FROM beads WHERE bead_id = 'b1'",
            &[],
        )
        .unwrap()
        .text("last_dispatch_error")
        .unwrap();
    assert!(error.contains("rig"), "{error}");
}

#[test]
fn a_convoy_bead_branches_beside_the_feature_branch_and_starts_from_it() {
    let town = TownBuilder::new()
        .rig("r1")
        .bead(
            BeadSpec::issue("b1")
                .rig("r1")
                .assignee("p1")
                .meta("feature_branch", json!("convoy/search/abcd1234/head")),
        )
        .agent(AgentSpec::polecat("p1").name("Toast").rig("r1").hook("b1"))
        .build();
    let effect = dispatch(&town, "p1", "b1");
    let http = container();
    http.always("POST", "/agents/start", Reply::ok(json!({})));
    run(&town, &http, &[effect]);
    let start = sent_json(&http.last());
    assert_eq!(
        start["defaultBranch"], "main",
        "the clone is of the rig's default"
    );
    assert_eq!(start["startPoint"], "origin/convoy/search/abcd1234/head");
    assert_eq!(start["branch"], "convoy/search/abcd1234/gt/toast/b1");
}

#[test]
fn a_triage_batch_goes_out_as_a_lightweight_polecat_with_the_towns_models_and_credentials() {
    let config = TownConfig::from_json(&json!({
        "default_model": "m/default", "small_model": "m/small",
        "role_models": {"refinery": "m/refinery", "mayor": "m/mayor"},
        "env_vars": {"NODE_ENV": "test", "GIT_TOKEN": "overridden"},
        "git_auth": {"github_token": "ghp-1", "gitlab_token": "glpat-1",
                     "gitlab_instance_url": "https://gitlab.example"},
        "github_cli_pat": "pat-1", "kilocode_token": "kilo-1",
        "git_author_name": "Gas Town", "git_author_email": "gt@example.com",
        "disable_ai_coauthor": true, "organization_id": "org-1"
    }))
    .unwrap();
    let town = TownBuilder::new()
        .config(config)
        .rig("r1")
        .bead(
            BeadSpec::issue("t1")
                .rig("r1")
                .assignee("p1")
                .label("gt:triage")
                .created_by("patrol"),
        )
        .agent(AgentSpec::polecat("p1").name("Toast").rig("r1").hook("t1"))
        .build();
    let effect = dispatch(&town, "p1", "t1");
    let http = container();
    http.always("POST", "/agents/start", Reply::ok(json!({})));
    assert_eq!(run(&town, &http, &[effect]).tally, tally(1, 1, 0));
    let sent = http.last();
    let start = sent_json(&sent);
    assert_eq!(start["role"], "polecat");
    assert_eq!(start["lightweight"], true);
    assert!(start["systemPrompt"]
        .as_str()
        .unwrap()
        .contains("gt_triage_resolve"));
    assert_eq!(start["model"], "m/default", "no polecat model: the default");
    assert_eq!(start["smallModel"], "m/small");
    assert_eq!(start["organizationId"], "org-1");
    let env = start["envVars"].as_object().unwrap();
    let names: Vec<&str> = env.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "GASTOWN_API_URL",
            "GASTOWN_CONTAINER_TOKEN",
            "GASTOWN_DISABLE_AI_COAUTHOR",
            "GASTOWN_GIT_AUTHOR_EMAIL",
            "GASTOWN_GIT_AUTHOR_NAME",
            "GASTOWN_SESSION_TOKEN",
            "GITHUB_CLI_PAT",
            "GITLAB_INSTANCE_URL",
            "GITLAB_TOKEN",
            "GIT_TOKEN",
            "KILOCODE_TOKEN",
            "NODE_ENV",
        ]
    );
    assert_eq!(
        env["GIT_TOKEN"], "ghp-1",
        "the credentials win over env_vars"
    );
    assert_eq!(env["GASTOWN_DISABLE_AI_COAUTHOR"], "1");
    assert_eq!(env["KILOCODE_TOKEN"], "kilo-1");
    assert_eq!(env["NODE_ENV"], "test");
    let config: Json = serde_json::from_str(header(&sent, "x-town-config").unwrap()).unwrap();
    assert_eq!(
        config,
        json!({
            "town_id": TOWN_ID, "env_vars": {"GIT_TOKEN": "overridden", "NODE_ENV": "test"},
            "default_model": "m/default", "small_model": "m/small",
            "git_auth": {"github_token": "ghp-1", "gitlab_token": "glpat-1",
                         "gitlab_instance_url": "https://gitlab.example"},
            "kilocode_token": "kilo-1", "github_cli_pat": "pat-1",
            "git_author_name": "Gas Town", "git_author_email": "gt@example.com",
            "disable_ai_coauthor": true, "gastown_api_url": "https://gastown.test",
            "organization_id": "org-1"
        })
    );
}

#[test]
fn without_the_jwt_secret_no_start_is_sent_and_each_fails_with_the_reason() {
    let town = polecat_town();
    let effect = dispatch(&town, "p1", "b1");
    let http = container();
    let remotes = Remotes {
        jwt_secret: String::new(),
        ..remotes()
    };
    let done = perform_with(&town, &http, &ManualClock::at(T0), &remotes, &[effect]);
    assert_eq!(done.tally, tally(1, 0, 1));
    assert!(http.requests().is_empty());
    let error = last_dispatch_error(&town, "b1").unwrap();
    assert!(
        error.starts_with("GASTOWN_JWT_SECRET is not set"),
        "{error}"
    );
    assert_eq!(town.bead("b1").status, BeadStatus::Open);
    assert_eq!(town.agent("p1").status, AgentStatus::Idle);
}

#[test]
fn a_container_that_refuses_the_token_push_gets_no_start() {
    let town = polecat_town();
    let effect = dispatch(&town, "p1", "b1");
    let http = FakeHttp::new();
    http.always(
        "POST",
        "/refresh-token",
        Reply::json(400, json!({"error": "token is required"})),
    )
    .always("POST", "/agents/start", Reply::ok(json!({})));
    assert_eq!(run(&town, &http, &[effect]).tally, tally(1, 0, 1));
    assert_eq!(
        paths(&http),
        [("POST".to_owned(), "/refresh-token".to_owned())]
    );
    assert_eq!(
        last_dispatch_error(&town, "b1").as_deref(),
        Some("the container refused the token push: answered HTTP 400")
    );

    // One that cannot be reached takes the token with the start.
    let town = polecat_town();
    let effect = dispatch(&town, "p1", "b1");
    let http = FakeHttp::new();
    http.always(
        "POST",
        "/refresh-token",
        Reply::network("connection refused"),
    )
    .always("POST", "/agents/start", Reply::ok(json!({})));
    assert_eq!(run(&town, &http, &[effect]).tally, tally(1, 1, 0));
}

#[test]
fn a_witness_is_never_started() {
    let town = TownBuilder::new()
        .rig("r1")
        .bead(BeadSpec::issue("b1").rig("r1").assignee("w1"))
        .agent(AgentSpec::polecat("w1").rig("r1").hook("b1"))
        .build();
    town.db
        .execute(
            "UPDATE agent_metadata SET role = 'witness' WHERE bead_id = 'w1'",
            &[],
        )
        .unwrap();
    let effect = Effect::Dispatch {
        agent_id: "w1".into(),
        bead_id: "b1".into(),
        rig_id: "r1".into(),
    };
    let http = container();
    assert_eq!(run(&town, &http, &[effect]).tally, tally(1, 0, 1));
    assert!(calls(&http).is_empty());
    let error = last_dispatch_error(&town, "b1").unwrap();
    assert!(error.contains("witness"), "{error}");
}
