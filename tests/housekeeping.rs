//! The tick's housekeeping (GASTOWN-DOMAIN.md 5.2 step 11): mail pushed to working agents and
//! the mayor (delivered only on a 2xx, once), unacknowledged escalations re-escalated (bump
//! times, the cap, the mayor told), and the triage loop (a batch made, dispatched, closed, the
//! cooldown after a failed one), with open triage requests counting as active work only while
//! the loop can act on them.

mod recording;

use gastown_town::domain::escalations::{self, Raise};
use gastown_town::domain::mail::{self, Letter};
use gastown_town::domain::triage::{self, Batching};
use gastown_town::store::escalations as escalation_store;
use gastown_town::testing::http::{path_of, FakeHttp, Reply};
use gastown_town::testing::ports::RecordingSink;
use gastown_town::testing::town::*;
use gastown_town::tick::{activity, Rearm};
use gastown_town::vocabulary::model::*;
use gastown_town::vocabulary::time::{HOUR, MINUTE};
use recording::Recording;
use serde_json::{json, Map};

/// The container as a healthy one answers: starts accepted, agents running, messages taken.
fn container() -> FakeHttp {
    let http = FakeHttp::new();
    http.always("*", "*", Reply::ok(json!({"status": "running"})));
    http
}

fn paths(http: &FakeHttp, method: &str) -> Vec<String> {
    http.requests()
        .iter()
        .filter(|r| r.method == method)
        .map(|r| path_of(&r.url).to_owned())
        .collect()
}

fn send(town: &Town, to: &str, subject: &str) -> String {
    town.run(|ctx| {
        mail::send(
            ctx,
            &Letter {
                from_agent_id: "p2",
                to_agent_id: to,
                subject,
                body: "see the diff",
            },
        )
    })
    .unwrap()
    .mail_id
}

fn delivered(town: &Town, mail_id: &str) -> bool {
    town.count(&format!(
        "mail WHERE mail_id = '{mail_id}' AND delivered_at IS NOT NULL"
    )) == 1
}

fn working_polecat() -> TownBuilder {
    TownBuilder::new()
        .rig("r")
        .bead(
            BeadSpec::issue("b1")
                .rig("r")
                .status(BeadStatus::InProgress)
                .assignee("p1"),
        )
        .agent(
            AgentSpec::polecat("p1")
                .rig("r")
                .status(AgentStatus::Working)
                .hook("b1")
                .active_at(T0),
        )
        .agent(AgentSpec::polecat("p2").rig("r"))
}

#[test]
fn mail_to_a_working_agent_is_pushed_once_and_delivered_on_a_2xx() {
    let town = working_polecat().build();
    let first = send(&town, "p1", "rebase first");
    let second = send(&town, "p1", "then run the tests");
    let http = container();
    town.tick_with(&http, &RecordingSink::default());
    let messages: Vec<_> = http
        .requests()
        .into_iter()
        .filter(|r| path_of(&r.url) == "/agents/p1/message")
        .collect();
    assert_eq!(messages.len(), 1, "one push for both letters");
    let prompt = serde_json::from_str::<serde_json::Value>(messages[0].body.as_deref().unwrap())
        .unwrap()["prompt"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(prompt.contains("2 new mail message(s)"), "{prompt}");
    assert!(prompt.find("rebase first") < prompt.find("then run the tests"));
    assert!(delivered(&town, &first) && delivered(&town, &second));
    assert_eq!(
        town.history_types("p1").last().map(String::as_str),
        Some("mail_delivered")
    );

    let again = container();
    town.advance(5_000);
    town.tick_with(&again, &RecordingSink::default());
    assert!(
        !paths(&again, "POST").contains(&"/agents/p1/message".to_owned()),
        "delivered mail is not pushed again"
    );
}

#[test]
fn mail_stays_undelivered_when_the_push_fails_and_goes_out_on_a_later_tick() {
    let town = working_polecat().build();
    let id = send(&town, "p1", "rebase first");
    let failing = FakeHttp::new();
    failing.always("POST", "/agents/p1/message", Reply::status(500));
    failing.always("*", "*", Reply::ok(json!({"status": "running"})));
    town.tick_with(&failing, &RecordingSink::default());
    assert!(paths(&failing, "POST").contains(&"/agents/p1/message".to_owned()));
    assert!(!delivered(&town, &id));

    town.advance(5_000);
    let http = container();
    town.tick_with(&http, &RecordingSink::default());
    assert!(paths(&http, "POST").contains(&"/agents/p1/message".to_owned()));
    assert!(delivered(&town, &id));
}

#[test]
fn mail_to_an_idle_agent_waits_for_it_to_check() {
    let town = working_polecat().build();
    let id = send(&town, "p2", "when you are free");
    let http = container();
    town.tick_with(&http, &RecordingSink::default());
    assert!(!paths(&http, "POST").contains(&"/agents/p2/message".to_owned()));
    assert!(!delivered(&town, &id));
}

#[test]
fn the_mayors_mail_starts_a_mayor_that_is_not_alive() {
    let town = TownBuilder::new()
        .rig("r")
        .agent(AgentSpec::mayor("m1"))
        .build();
    let id = send(&town, "m1", "the breaker opened");
    let http = FakeHttp::new();
    http.always("GET", "/agents/m1/status", Reply::status(404));
    http.always("*", "*", Reply::json(201, json!({"started": true})));
    town.tick_with(&http, &RecordingSink::default());
    let start = http
        .requests()
        .into_iter()
        .find(|r| path_of(&r.url) == "/agents/start")
        .expect("the mayor started");
    let body: serde_json::Value = serde_json::from_str(start.body.as_deref().unwrap()).unwrap();
    assert_eq!(body["role"], "mayor");
    assert!(body["prompt"]
        .as_str()
        .unwrap()
        .contains("the breaker opened"));
    assert!(delivered(&town, &id));
    assert_eq!(town.agent("m1").status, AgentStatus::Working);
}

#[test]
fn the_mayors_mail_is_a_message_when_it_is_alive() {
    let town = TownBuilder::new()
        .rig("r")
        .agent(AgentSpec::mayor("m1").status(AgentStatus::Working))
        .build();
    let id = send(&town, "m1", "hello");
    let http = container();
    town.tick_with(&http, &RecordingSink::default());
    assert!(paths(&http, "POST").contains(&"/agents/m1/message".to_owned()));
    assert!(!paths(&http, "POST").contains(&"/agents/start".to_owned()));
    assert!(delivered(&town, &id));
}

fn escalation(town: &Town, priority: Priority) -> String {
    town.run(|ctx| {
        escalations::raise(
            ctx,
            &Raise {
                rig_id: "r",
                agent_id: Some("p1"),
                title: "tests fail on main",
                body: Some("since the last merge"),
                priority,
                metadata: Map::new(),
            },
        )
    })
    .unwrap()
    .bead_id
}

fn severity(town: &Town, id: &str) -> (String, i64) {
    let e = escalation_store::get(&town.db, id).unwrap().unwrap();
    (e.severity, e.re_escalation_count)
}

#[test]
fn an_escalation_is_bumped_once_per_four_hours_of_age_and_at_most_three_times() {
    let town = working_polecat().build();
    let id = escalation(&town, Priority::Low);
    let get = |town: &Town| escalation_store::get(&town.db, &id).unwrap().unwrap();
    let at = |h: i64, m: i64| T0 + h * HOUR + m * MINUTE;
    assert_eq!(escalations::due_bump(&get(&town), at(3, 59)), None);
    assert_eq!(
        escalations::due_bump(&get(&town), at(4, 0)),
        Some(Priority::Medium)
    );
    // Ticked through 20 hours: bumps at 4, 8 and 12 hours, then the cap.
    let http = container();
    let mut seen = vec![(severity(&town, &id), 0)];
    for step in 1..=(20 * 6) {
        town.advance(10 * MINUTE);
        town.tick_with(&http, &RecordingSink::default());
        let now = severity(&town, &id);
        if seen.last().map(|(s, _): &((String, i64), i64)| s) != Some(&now) {
            seen.push((now, step * 10));
        }
    }
    let bumps: Vec<(String, i64, i64)> = seen
        .into_iter()
        .skip(1)
        .map(|((s, n), minutes)| (s, n, minutes))
        .collect();
    assert_eq!(
        bumps,
        vec![
            ("medium".to_owned(), 1, 240),
            ("high".to_owned(), 2, 480),
            ("critical".to_owned(), 3, 720),
        ]
    );
    assert_eq!(
        town.history_types(&id)
            .iter()
            .filter(|t| *t == "re_escalated")
            .count(),
        3
    );
}

#[test]
fn re_escalation_tells_the_mayor_and_an_acknowledged_escalation_is_left_alone() {
    let town = working_polecat()
        .agent(AgentSpec::mayor("m1").status(AgentStatus::Working))
        .build();
    let loud = escalation(&town, Priority::Medium);
    let quiet = escalation(&town, Priority::Medium);
    town.run(|ctx| escalations::acknowledge(ctx, &quiet, "api"))
        .unwrap();
    town.advance(4 * HOUR);
    let http = container();
    town.tick_with(&http, &RecordingSink::default());
    assert_eq!(severity(&town, &loud), ("high".to_owned(), 1));
    assert_eq!(severity(&town, &quiet), ("medium".to_owned(), 0));
    let told: String = http
        .requests()
        .into_iter()
        .find(|r| path_of(&r.url) == "/agents/m1/message")
        .and_then(|r| r.body)
        .expect("the mayor was told");
    assert!(told.contains("[Re-Escalation:high]"), "{told}");
    assert_eq!(town.count("mail WHERE delivered_at IS NULL"), 0);
}

#[test]
fn a_critical_escalation_is_not_bumped() {
    let town = working_polecat().build();
    let id = escalation(&town, Priority::Critical);
    let e = escalation_store::get(&town.db, &id).unwrap().unwrap();
    assert_eq!(escalations::due_bump(&e, T0 + 100 * HOUR), None);
}

fn request(id: &str, agent: &str) -> BeadSpec {
    BeadSpec::issue(id)
        .rig("r")
        .title("Triage: stuck")
        .label(labels::TRIAGE_REQUEST)
        .assignee(agent)
        .meta("triage_type", json!("stuck_agent"))
        .meta("agent_bead_id", json!(agent))
}

fn batches(town: &Town) -> Vec<Bead> {
    town.beads_where("b.labels LIKE '%\"gt:triage\"%' AND b.created_by = 'patrol'")
}

#[test]
fn pending_requests_are_batched_dispatched_and_closed_by_done() {
    let town = working_polecat()
        .bead(request("q1", "p1"))
        .bead(request("q2", "p1"))
        .build();
    let http = container();
    let report = town.tick_with(&http, &RecordingSink::default());
    let made = batches(&town);
    assert_eq!(made.len(), 1);
    let batch = &made[0];
    assert_eq!(batch.rig_id.as_deref(), Some("r"));
    assert_eq!(batch.status, BeadStatus::Open);
    let task = batch.body.clone().unwrap_or_default();
    assert!(task.contains("q1") && task.contains("q2"), "{task}");
    assert!(matches!(report.rearm, Rearm::Active(_)));

    // The next tick's reconciler dispatches it, as a lightweight polecat.
    town.advance(5_000);
    let http = container();
    town.tick_with(&http, &RecordingSink::default());
    let start = http
        .requests()
        .into_iter()
        .find(|r| path_of(&r.url) == "/agents/start")
        .expect("the batch was dispatched");
    let body: serde_json::Value = serde_json::from_str(start.body.as_deref().unwrap()).unwrap();
    assert_eq!(body["lightweight"], true);
    assert!(body["prompt"].as_str().unwrap().contains("q1"));
    let batch = town.bead(&batch.bead_id);
    assert_eq!(batch.status, BeadStatus::InProgress);
    assert_eq!(
        batches(&town).len(),
        1,
        "no second batch while one is in flight"
    );

    // The triage agent resolves both and calls done: the batch closes.
    let agent = batch.assignee_agent_bead_id.clone().unwrap();
    for q in ["q1", "q2"] {
        town.run(|ctx| {
            gastown_town::domain::triage_resolution::resolve(
                ctx,
                &agent,
                q,
                gastown_town::domain::triage_resolution::Action::Discard,
                "handled",
            )
        })
        .unwrap();
    }
    town.apply(
        gastown_town::vocabulary::events::EventKind::AgentDone(
            gastown_town::vocabulary::events::AgentDone {
                branch: "gt/triage".into(),
                pr_url: None,
                summary: None,
            },
        ),
        Some(&agent),
        None,
    )
    .unwrap();
    assert_eq!(town.bead(&batch.bead_id).status, BeadStatus::Closed);
    town.advance(5_000);
    town.tick_with(&container(), &RecordingSink::default());
    assert_eq!(batches(&town).len(), 1, "nothing left to batch");
}

#[test]
fn after_a_failed_batch_no_new_one_for_two_minutes() {
    let town = working_polecat()
        .bead(request("q1", "p1"))
        .bead(
            BeadSpec::issue("old-batch")
                .rig("r")
                .label(labels::TRIAGE)
                .created_by("patrol")
                .status(BeadStatus::Failed)
                .updated_at(T0 - 30_000),
        )
        .build();
    let ctx_state = |town: &Town| activity::triage(&town.db, town.now()).unwrap();
    assert_eq!(
        ctx_state(&town),
        Batching::CoolingDown {
            until: T0 - 30_000 + triage::BATCH_COOLDOWN_MS
        }
    );
    town.tick_with(&container(), &RecordingSink::default());
    assert_eq!(batches(&town).len(), 1, "cooling down");
    town.advance(100_000);
    town.tick_with(&container(), &RecordingSink::default());
    assert_eq!(batches(&town).len(), 2, "a new batch after the cooldown");
}

/// A town whose only work is one open triage request, idle otherwise.
fn stuck_request() -> TownBuilder {
    TownBuilder::new()
        .agent(AgentSpec::polecat("p1"))
        .bead(request("q1", "p1").rig("r"))
}

#[test]
fn a_request_counts_as_active_work_only_while_the_loop_can_act_on_it() {
    // No rig: nobody can run a triage agent.
    let town = stuck_request().build();
    assert_eq!(activity::triage(&town.db, T0).unwrap(), Batching::NoRig);
    assert!(!activity::is_active(&town.db, T0));
    let report = town.tick_with(&container(), &RecordingSink::default());
    assert!(matches!(report.rearm, Rearm::Idle(_)), "{:?}", report.rearm);
    assert!(batches(&town).is_empty());

    // A rig: a batch can be made, so the town is active.
    let town = stuck_request().rig("r").build();
    assert_eq!(
        activity::triage(&town.db, T0).unwrap(),
        Batching::Ready { rig_id: "r".into() }
    );
    assert!(activity::is_active(&town.db, T0));

    // The breaker open: no batch could be dispatched.
    let mut open = stuck_request().rig("r");
    for i in 0..20 {
        open = open.bead(
            BeadSpec::issue(&format!("f{i}"))
                .rig("r")
                .meta("unused", json!(true)),
        );
    }
    let town = open.build();
    town.db
        .execute(
            "UPDATE beads SET last_dispatch_error = 'refused', last_dispatch_attempt_at = ?
             WHERE bead_id LIKE 'f%'",
            &gastown_town::params![gastown_town::vocabulary::time::iso(T0 - MINUTE)],
        )
        .unwrap();
    assert!(activity::breaker_open(&town.db, T0).unwrap());
    assert_eq!(
        activity::triage(&town.db, T0).unwrap(),
        Batching::BreakerOpen
    );
    assert!(!activity::is_active(&town.db, T0));
}

#[test]
fn the_current_batch_is_looked_up_through_the_type_status_index() {
    let town = stuck_request().rig("r").build();
    let recorded = Recording::new(&town.db);
    activity::triage(&recorded, T0).unwrap();
    let statements = recorded.into_statements();
    let (lookup, params) = statements
        .iter()
        .find(|(sql, _)| sql.contains("created_by = 'patrol'"))
        .expect("the batch is looked up");
    let plan: Vec<String> = town
        .db
        .query(&format!("EXPLAIN QUERY PLAN {lookup}"), params)
        .unwrap()
        .into_iter()
        .map(|r| r.text("detail").unwrap())
        .collect();
    assert!(
        plan.iter()
            .any(|d| d.contains("idx_beads_type_status (type=? AND status=?)")),
        "not every issue of the town: {plan:?}"
    );
}

#[test]
fn acknowledging_twice_keeps_the_first_time() {
    let town = working_polecat().build();
    let id = escalation(&town, Priority::High);
    let first = town
        .run(|ctx| escalations::acknowledge(ctx, &id, "api"))
        .unwrap();
    town.advance(MINUTE);
    let second = town
        .run(|ctx| escalations::acknowledge(ctx, &id, "api"))
        .unwrap();
    assert!(first.acknowledged);
    assert_eq!(first.acknowledged_at, second.acknowledged_at);
    let missing = town.run(|ctx| escalations::acknowledge(ctx, "nope", "api"));
    assert!(matches!(missing, Err(e) if e.is_not_found()));
}
