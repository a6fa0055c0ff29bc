//! Applying each of the 11 events (GASTOWN-DOMAIN.md 2.2), with every branch of "agent done",
//! "agent completed" and the container status rules.

use gastown_town::domain::apply::ApplyError;
use gastown_town::store::events::{Subject, RETRY_SPACING_MS};
use gastown_town::testing::http::{path_of, FakeHttp, Reply};
use gastown_town::testing::ports::RecordingSink;
use gastown_town::testing::town::*;
use gastown_town::vocabulary::events::*;
use gastown_town::vocabulary::model::*;
use gastown_town::vocabulary::time::{iso, SECOND};
use serde_json::json;

fn done(pr_url: Option<&str>) -> EventKind {
    EventKind::AgentDone(AgentDone {
        branch: "gt/toast/b1".into(),
        pr_url: pr_url.map(Into::into),
        summary: Some("finished".into()),
    })
}

fn completed(status: ExitStatus, reason: Option<&str>) -> EventKind {
    EventKind::AgentCompleted(AgentCompleted {
        status,
        reason: reason.map(Into::into),
    })
}

fn container(status: &str) -> EventKind {
    EventKind::ContainerStatus(ContainerStatus {
        status: status.into(),
        exit_reason: None,
    })
}

const PR: &str = "https://github.com/o/r1/pull/9";

// ---- agent_done ---------------------------------------------------------------------------

fn polecat_town() -> Town {
    TownBuilder::new()
        .rig_on("r1", "trunk")
        .bead(
            BeadSpec::issue("b1")
                .rig("r1")
                .status(BeadStatus::InProgress)
                .assignee("pc"),
        )
        .agent(
            AgentSpec::polecat("pc")
                .rig("r1")
                .hook("b1")
                .status(AgentStatus::Working),
        )
        .build()
}

#[test]
fn done_polecat_submits_for_review_unhooks_and_moves_the_bead_to_in_review() {
    let town = polecat_town();
    town.apply(done(Some(PR)), Some("pc"), None).unwrap();
    let mrs = town.beads_where("b.type = 'merge_request'");
    assert_eq!(mrs.len(), 1);
    let mr = &mrs[0];
    assert_eq!(mr.title, "Review: gt/toast/b1");
    assert_eq!(mr.body.as_deref(), Some("finished"));
    assert_eq!(mr.metadata["source_agent_id"], "pc");
    assert_eq!(mr.metadata["pr_url"], PR);
    assert_eq!(town.review(&mr.bead_id).target_branch, "trunk");
    let agent = town.agent("pc");
    assert_eq!(agent.current_hook_bead_id, None);
    assert_eq!(agent.status, AgentStatus::Idle);
    let bead = town.bead("b1");
    assert_eq!(bead.status, BeadStatus::InReview);
    assert_eq!(
        bead.assignee_agent_bead_id.as_deref(),
        Some("pc"),
        "assignee kept"
    );
}

#[test]
fn done_polecat_with_a_bad_pr_url_still_submits_without_it() {
    let town = polecat_town();
    town.apply(done(Some("not a url")), Some("pc"), None)
        .unwrap();
    let mr = town.beads_where("b.type = 'merge_request'").remove(0);
    assert!(!mr.metadata.contains_key("pr_url"));
    assert_eq!(town.review(&mr.bead_id).pr_url, None);
}

#[test]
fn done_closes_rework_fixup_and_feedback_beads_directly() {
    for label in [labels::REWORK, labels::PR_FIXUP, labels::PR_FEEDBACK] {
        let town = TownBuilder::new()
            .rig("r1")
            .bead(
                BeadSpec::issue("src")
                    .rig("r1")
                    .status(BeadStatus::InReview),
            )
            .bead(
                BeadSpec::mr("mr1", "src", "gt/x")
                    .rig("r1")
                    .status(BeadStatus::InProgress),
            )
            .bead(
                BeadSpec::issue("fix")
                    .rig("r1")
                    .label(label)
                    .status(BeadStatus::InProgress),
            )
            .dep("mr1", "fix", DependencyType::Blocks)
            .agent(
                AgentSpec::polecat("pc")
                    .rig("r1")
                    .hook("fix")
                    .status(AgentStatus::Working),
            )
            .build();
        town.apply(done(None), Some("pc"), None).unwrap();
        assert_eq!(town.bead("fix").status, BeadStatus::Closed, "{label}");
        assert_eq!(town.agent("pc").current_hook_bead_id, None);
        assert_eq!(
            town.count("beads WHERE type = 'merge_request'"),
            1,
            "no new MR"
        );
    }
}

#[test]
fn done_closes_a_patrol_triage_batch_but_not_a_look_alike() {
    let batch = |created_by: &str| {
        TownBuilder::new()
            .rig("r1")
            .bead(
                BeadSpec::issue("batch")
                    .rig("r1")
                    .label(labels::TRIAGE)
                    .created_by(created_by)
                    .status(BeadStatus::InProgress),
            )
            .agent(
                AgentSpec::polecat("pc")
                    .rig("r1")
                    .hook("batch")
                    .status(AgentStatus::Working),
            )
            .build()
    };
    let town = batch("patrol");
    town.apply(done(None), Some("pc"), None).unwrap();
    assert_eq!(town.bead("batch").status, BeadStatus::Closed);
    assert_eq!(town.count("beads WHERE type = 'merge_request'"), 0);
    let town = batch("someone");
    town.apply(done(None), Some("pc"), None).unwrap();
    assert_eq!(town.bead("batch").status, BeadStatus::InReview);
    assert_eq!(town.count("beads WHERE type = 'merge_request'"), 1);
}

fn refinery_town(hooked: bool) -> Town {
    let mut refinery = AgentSpec::refinery("ref")
        .rig("r1")
        .status(AgentStatus::Working);
    if hooked {
        refinery = refinery.hook("mr1");
    }
    TownBuilder::new()
        .rig("r1")
        .bead(
            BeadSpec::issue("src")
                .rig("r1")
                .status(BeadStatus::InReview)
                .assignee("pc"),
        )
        .bead(
            BeadSpec::mr("mr1", "src", "gt/toast/src")
                .rig("r1")
                .status(BeadStatus::InProgress)
                .assignee("ref"),
        )
        .agent(AgentSpec::polecat("pc").rig("r1"))
        .agent(refinery)
        .build()
}

#[test]
fn done_refinery_with_a_pr_url_tracks_the_pr_and_unhooks() {
    let town = refinery_town(true);
    town.db
        .execute(
            "UPDATE beads SET status = 'open' WHERE bead_id = 'mr1'",
            &[],
        )
        .unwrap();
    town.apply(done(Some(PR)), Some("ref"), None).unwrap();
    let mr = town.bead("mr1");
    assert_eq!(mr.status, BeadStatus::InProgress);
    assert_eq!(mr.metadata["pr_url"], PR);
    assert_eq!(town.review("mr1").pr_url.as_deref(), Some(PR));
    assert!(town.history_types("mr1").contains(&"pr_created".to_owned()));
    let agent = town.agent("ref");
    assert_eq!(agent.current_hook_bead_id, None);
    assert_eq!(agent.status, AgentStatus::Idle);
    assert_eq!(
        town.bead("src").status,
        BeadStatus::InReview,
        "the PR is still open"
    );
}

#[test]
fn done_refinery_with_a_bad_pr_url_fails_the_review() {
    let town = refinery_town(true);
    town.apply(done(Some("http://insecure.test/pr/1")), Some("ref"), None)
        .unwrap();
    assert_eq!(town.bead("mr1").status, BeadStatus::Failed);
    assert!(town
        .history_types("mr1")
        .contains(&"pr_creation_failed".to_owned()));
    assert_eq!(town.bead("src").status, BeadStatus::Open);
    assert_eq!(town.agent("ref").current_hook_bead_id, None);
}

#[test]
fn done_refinery_without_a_pr_url_merged_it() {
    let town = refinery_town(true);
    town.apply(done(None), Some("ref"), None).unwrap();
    assert_eq!(town.bead("mr1").status, BeadStatus::Closed);
    assert_eq!(town.bead("src").status, BeadStatus::Closed);
    let agent = town.agent("ref");
    assert_eq!(
        (agent.current_hook_bead_id, agent.status),
        (None, AgentStatus::Idle)
    );
}

#[test]
fn done_refinery_without_a_hook_recovers_its_latest_live_mr() {
    let town = refinery_town(false);
    town.apply(done(None), Some("ref"), None).unwrap();
    assert_eq!(town.bead("mr1").status, BeadStatus::Closed, "merged");

    let town = refinery_town(false);
    town.apply(done(Some(PR)), Some("ref"), None).unwrap();
    assert_eq!(town.review("mr1").pr_url.as_deref(), Some(PR));
    assert_eq!(town.bead("mr1").status, BeadStatus::InProgress);

    let town = refinery_town(false);
    town.apply(done(Some("ftp://nope")), Some("ref"), None)
        .unwrap();
    assert_eq!(town.bead("mr1").status, BeadStatus::Failed);
}

#[test]
fn done_without_a_hook_and_nothing_to_recover_changes_nothing() {
    let town = refinery_town(false);
    town.db
        .execute(
            "UPDATE beads SET status = 'closed' WHERE bead_id = 'mr1'",
            &[],
        )
        .unwrap();
    let before = town.snapshot();
    town.apply(done(None), Some("ref"), None).unwrap();
    town.apply(done(None), Some("pc"), None).unwrap();
    town.apply(done(None), None, None).unwrap();
    assert_eq!(town.snapshot(), before);
}

#[test]
fn done_on_a_bead_that_already_finished_only_unhooks() {
    let town = polecat_town();
    town.db
        .execute(
            "UPDATE beads SET status = 'failed' WHERE bead_id = 'b1'",
            &[],
        )
        .unwrap();
    town.apply(done(None), Some("pc"), None).unwrap();
    assert_eq!(town.agent("pc").current_hook_bead_id, None);
    assert_eq!(town.count("beads WHERE type = 'merge_request'"), 0);
    assert_eq!(town.bead("b1").status, BeadStatus::Failed);
}

#[test]
fn done_for_a_missing_agent_fails_and_the_tick_poisons_it_after_three_tries() {
    let town = polecat_town();
    let err = town.apply(done(None), Some("ghost"), None).unwrap_err();
    assert!(
        matches!(err, ApplyError::Domain(ref e) if e.is_not_found()),
        "{err:?}"
    );

    town.record(&done(None), &Subject::agent("ghost"));
    let sink = RecordingSink::default();
    // Back-to-back ticks (a backlog re-arms at once) try it once: the retry waits.
    for tick in 0..5 {
        town.advance(SECOND);
        let report = town.tick_with(&FakeHttp::new(), &sink);
        let failed = u64::from(tick == 0);
        assert_eq!(report.metrics.events_failed, failed, "tick {tick}");
    }
    let poisoned = |town: &Town| {
        town.db
            .one("SELECT poisoned FROM town_events", &[])
            .unwrap()
            .bool("poisoned")
            .unwrap()
    };
    assert!(!poisoned(&town), "not poisoned within seconds");
    for wait in RETRY_SPACING_MS {
        town.advance(wait);
        let report = town.tick_with(&FakeHttp::new(), &sink);
        assert_eq!(report.metrics.events_failed, 1, "after {wait} ms");
    }
    let row = town
        .db
        .one("SELECT poisoned, processed_at FROM town_events", &[])
        .unwrap();
    assert!(row.bool("poisoned").unwrap());
    assert!(row.opt_text("processed_at").unwrap().is_some());
}

#[test]
fn a_recorded_done_is_applied_by_the_tick() {
    let town = polecat_town();
    town.record(&done(None), &Subject::agent("pc"));
    let sink = RecordingSink::default();
    let container = FakeHttp::new();
    container.always(
        "GET",
        "/agents/pc/status",
        Reply::ok(json!({"status": "running"})),
    );
    let report = town.tick_with(&container, &sink);
    assert_eq!(report.metrics.events_drained, 1);
    assert_eq!(report.metrics.events_failed, 0);
    assert_eq!(town.bead("b1").status, BeadStatus::InReview);
}

// ---- agent_completed -----------------------------------------------------------------------

fn working_polecat(bead_status: BeadStatus) -> Town {
    TownBuilder::new()
        .rig("r1")
        .bead(
            BeadSpec::issue("b1")
                .rig("r1")
                .status(bead_status)
                .assignee("pc"),
        )
        .agent(
            AgentSpec::polecat("pc")
                .rig("r1")
                .hook("b1")
                .status(AgentStatus::Working)
                .dispatch_attempts(2),
        )
        .build()
}

#[test]
fn completed_failed_fails_the_bead_and_frees_the_agent() {
    let town = working_polecat(BeadStatus::InProgress);
    town.apply(completed(ExitStatus::Failed, Some("OOM")), Some("pc"), None)
        .unwrap();
    assert_eq!(town.bead("b1").status, BeadStatus::Failed);
    assert_eq!(town.history_types("b1"), ["status_changed", "unhooked"]);
    let failure = &town.history("b1")[0].metadata["failure_reason"];
    assert_eq!(
        *failure,
        json!({"code": "agent_failed", "message": "OOM", "source": "container"})
    );
    let agent = town.agent("pc");
    assert_eq!(agent.current_hook_bead_id, None);
    assert_eq!(agent.status, AgentStatus::Idle);
    assert_eq!(agent.dispatch_attempts, 0);
}

#[test]
fn completed_by_eviction_reopens_an_in_progress_bead() {
    let town = working_polecat(BeadStatus::InProgress);
    town.apply(
        completed(ExitStatus::Completed, Some("container eviction")),
        Some("pc"),
        None,
    )
    .unwrap();
    let bead = town.bead("b1");
    assert_eq!(bead.status, BeadStatus::Open);
    assert_eq!(bead.assignee_agent_bead_id, None);
    assert_eq!(town.agent("pc").current_hook_bead_id, None);
}

#[test]
fn completed_otherwise_leaves_the_bead_for_the_reconciler() {
    for status in [BeadStatus::InProgress, BeadStatus::InReview] {
        let town = working_polecat(status);
        town.apply(
            completed(ExitStatus::Completed, Some("done")),
            Some("pc"),
            None,
        )
        .unwrap();
        let bead = town.bead("b1");
        assert_eq!(bead.status, status);
        assert_eq!(bead.assignee_agent_bead_id.as_deref(), Some("pc"));
        let agent = town.agent("pc");
        assert_eq!(agent.current_hook_bead_id, None);
        assert_eq!(agent.status, AgentStatus::Idle);
        assert_eq!(agent.dispatch_attempts, 0);
    }
    // An eviction of a bead that is not in progress leaves it too.
    let town = working_polecat(BeadStatus::InReview);
    town.apply(
        completed(ExitStatus::Completed, Some("container eviction")),
        Some("pc"),
        None,
    )
    .unwrap();
    assert_eq!(town.bead("b1").status, BeadStatus::InReview);
}

#[test]
fn completed_refinery_keeps_its_hook_and_attempts() {
    let town = TownBuilder::new()
        .rig("r1")
        .bead(BeadSpec::issue("src").rig("r1"))
        .bead(
            BeadSpec::mr("mr1", "src", "b")
                .rig("r1")
                .status(BeadStatus::InProgress),
        )
        .agent(
            AgentSpec::refinery("ref")
                .rig("r1")
                .hook("mr1")
                .status(AgentStatus::Working)
                .dispatch_attempts(3),
        )
        .build();
    town.apply(completed(ExitStatus::Failed, None), Some("ref"), None)
        .unwrap();
    let agent = town.agent("ref");
    assert_eq!(agent.current_hook_bead_id.as_deref(), Some("mr1"));
    assert_eq!(
        agent.status,
        AgentStatus::Working,
        "working on a hook: re-dispatched"
    );
    assert_eq!(agent.dispatch_attempts, 3, "monotonic for refineries");
    assert_eq!(town.bead("mr1").status, BeadStatus::InProgress);

    town.db
        .execute(
            "UPDATE agent_metadata SET status = 'stalled' WHERE bead_id = 'ref'",
            &[],
        )
        .unwrap();
    town.apply(completed(ExitStatus::Completed, None), Some("ref"), None)
        .unwrap();
    let agent = town.agent("ref");
    assert_eq!(agent.status, AgentStatus::Idle);
    assert_eq!(agent.current_hook_bead_id.as_deref(), Some("mr1"));
}

#[test]
fn completed_without_hook_idles_the_agent_and_ignores_unknown_agents() {
    let town = TownBuilder::new()
        .agent(
            AgentSpec::mayor("m")
                .status(AgentStatus::Working)
                .dispatch_attempts(1),
        )
        .build();
    town.apply(completed(ExitStatus::Completed, None), Some("m"), None)
        .unwrap();
    let mayor = town.agent("m");
    assert_eq!(mayor.status, AgentStatus::Idle);
    assert_eq!(mayor.dispatch_attempts, 0);
    let before = town.snapshot();
    town.apply(completed(ExitStatus::Failed, None), Some("ghost"), None)
        .unwrap();
    town.apply(completed(ExitStatus::Failed, None), None, None)
        .unwrap();
    assert_eq!(town.snapshot(), before);
}

// ---- container_status ----------------------------------------------------------------------

#[test]
fn container_not_found_is_ignored_during_the_cold_start_grace() {
    let town = working_polecat(BeadStatus::InProgress);
    town.db
        .execute(
            "UPDATE agent_metadata SET last_activity_at = ? WHERE bead_id = 'pc'",
            &[iso(T0).into()],
        )
        .unwrap();
    town.advance(179 * SECOND);
    town.apply(container("not_found"), Some("pc"), None)
        .unwrap();
    assert_eq!(town.agent("pc").status, AgentStatus::Working);
    town.advance(SECOND);
    town.apply(container("not_found"), Some("pc"), None)
        .unwrap();
    let agent = town.agent("pc");
    assert_eq!(agent.status, AgentStatus::Idle);
    assert_eq!(
        agent.current_hook_bead_id.as_deref(),
        Some("b1"),
        "hook kept"
    );
    assert_eq!(
        town.bead("b1").status,
        BeadStatus::InProgress,
        "B3 recovers it"
    );
}

#[test]
fn container_exited_idles_working_and_stalled_agents_only() {
    for (from, to) in [
        (AgentStatus::Working, AgentStatus::Idle),
        (AgentStatus::Stalled, AgentStatus::Idle),
        (AgentStatus::Idle, AgentStatus::Idle),
        (AgentStatus::Dead, AgentStatus::Dead),
    ] {
        let town = working_polecat(BeadStatus::InProgress);
        town.db
            .execute(
                "UPDATE agent_metadata SET status = ?, last_activity_at = ? WHERE bead_id = 'pc'",
                &[from.as_str().into(), iso(T0).into()],
            )
            .unwrap();
        town.apply(container("exited"), Some("pc"), None).unwrap();
        assert_eq!(town.agent("pc").status, to, "{from}");
    }
}

#[test]
fn a_tick_pings_the_container_and_applies_what_it_observed_about_its_agents() {
    let town = working_polecat(BeadStatus::InProgress);
    let fake = FakeHttp::new();
    fake.always("GET", "/health", Reply::ok(json!({"status": "ok"})))
        .always("POST", "*", Reply::ok(json!({})))
        .always(
            "GET",
            "/agents/pc/status",
            Reply::ok(json!({"status": "exited"})),
        );
    let report = town.tick_with(&fake, &RecordingSink::default());
    let sent: Vec<String> = fake
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, path_of(&r.url)))
        .collect();
    // The upkeep (ping, config, token) and the observation come first, before any side effect.
    assert_eq!(
        sent[..4],
        [
            "GET /health",
            "POST /sync-config",
            "POST /refresh-token",
            "GET /agents/pc/status"
        ]
    );
    assert_eq!(
        report.metrics.events_drained, 1,
        "the recorded container_status"
    );
    assert_eq!(town.agent("pc").status, AgentStatus::Idle);
}

#[test]
fn other_container_statuses_change_nothing() {
    let town = working_polecat(BeadStatus::InProgress);
    let before = town.snapshot();
    for s in ["unknown", "error", "stopped", "running"] {
        town.apply(container(s), Some("pc"), None).unwrap();
    }
    town.apply(container("exited"), Some("ghost"), None)
        .unwrap();
    town.apply(container("exited"), None, None).unwrap();
    assert_eq!(town.snapshot(), before);
}

#[test]
fn container_gone_refinery_unhooks_from_a_finished_mr_and_keeps_a_live_one() {
    let town_with = |mr_status: BeadStatus, hooked: bool| {
        let mut r = AgentSpec::refinery("ref")
            .rig("r1")
            .status(AgentStatus::Working)
            .checkpoint("{}");
        if hooked {
            r = r.hook("mr1");
        }
        TownBuilder::new()
            .rig("r1")
            .bead(BeadSpec::issue("src").rig("r1"))
            .bead(BeadSpec::mr("mr1", "src", "b").rig("r1").status(mr_status))
            .agent(r)
            .build()
    };
    let town = town_with(BeadStatus::Closed, true);
    town.apply(container("exited"), Some("ref"), None).unwrap();
    let r = town.agent("ref");
    assert_eq!(
        (r.status, r.current_hook_bead_id, r.checkpoint),
        (AgentStatus::Idle, None, None)
    );

    let town = town_with(BeadStatus::InProgress, true);
    town.apply(container("exited"), Some("ref"), None).unwrap();
    let r = town.agent("ref");
    assert_eq!(r.status, AgentStatus::Idle);
    assert_eq!(
        r.current_hook_bead_id.as_deref(),
        Some("mr1"),
        "R6 re-dispatches"
    );

    let town = town_with(BeadStatus::InProgress, false);
    town.apply(container("not_found"), Some("ref"), None)
        .unwrap();
    assert_eq!(town.agent("ref").status, AgentStatus::Idle);
}

// ---- pr_status_changed ---------------------------------------------------------------------

fn pr_town() -> Town {
    TownBuilder::new()
        .rig("r1")
        .bead(
            BeadSpec::issue("src")
                .rig("r1")
                .status(BeadStatus::InReview),
        )
        .bead(
            BeadSpec::mr("mr1", "src", "b")
                .rig("r1")
                .status(BeadStatus::InProgress)
                .pr_url(PR),
        )
        .build()
}

fn pr_state(state: &str) -> EventKind {
    EventKind::PrStatusChanged(PrStatusChanged {
        pr_url: PR.into(),
        pr_state: state.into(),
    })
}

#[test]
fn pr_merged_completes_the_review_as_merged() {
    let town = pr_town();
    town.apply(pr_state("merged"), None, Some("mr1")).unwrap();
    assert_eq!(town.bead("mr1").status, BeadStatus::Closed);
    assert_eq!(town.bead("src").status, BeadStatus::Closed);
    let completed = town
        .history("src")
        .into_iter()
        .find(|e| e.event_type == "review_completed");
    assert_eq!(
        completed.unwrap().metadata["message"],
        "PR merged (detected by polling)"
    );
}

#[test]
fn pr_closed_fails_the_review_and_other_states_do_nothing() {
    let town = pr_town();
    let before = town.snapshot();
    town.apply(pr_state("open"), None, Some("mr1")).unwrap();
    town.apply(pr_state("merged"), None, None).unwrap();
    town.apply(pr_state("merged"), None, Some("ghost")).unwrap();
    assert_eq!(town.snapshot(), before);
    town.apply(pr_state("closed"), None, Some("mr1")).unwrap();
    assert_eq!(town.bead("mr1").status, BeadStatus::Failed);
    let failure = &town.history("mr1").pop().unwrap().metadata["failure_reason"];
    assert_eq!(failure["message"], "PR closed without merge");
    assert_eq!(town.bead("src").status, BeadStatus::Open);
}

// ---- bead_created, container_eviction, nudge_timeout ---------------------------------------

#[test]
fn audit_only_events_change_nothing() {
    let town = pr_town();
    let before = town.snapshot();
    let created = EventKind::BeadCreated(BeadCreated {
        bead_type: "issue".into(),
        rig_id: Some("r1".into()),
        convoy_id: None,
        has_blockers: None,
    });
    town.apply(created, None, Some("src")).unwrap();
    town.apply(EventKind::ContainerEviction(NoPayload {}), None, None)
        .unwrap();
    town.apply(EventKind::NudgeTimeout(NoPayload {}), None, None)
        .unwrap();
    assert_eq!(town.snapshot(), before);
}

#[test]
fn an_unreadable_payload_is_an_error() {
    let town = pr_town();
    let event = RecordedEvent {
        event_id: "e1".into(),
        agent_id: None,
        bead_id: None,
        created_at: iso(T0),
        retry_count: 0,
        kind: EventKind::parse("agent_done", "{}"),
    };
    let err = gastown_town::domain::apply::apply_event(&town.ctx(), &event).unwrap_err();
    assert!(matches!(err, ApplyError::BadPayload(_)));
}

// ---- bead_cancelled ------------------------------------------------------------------------

#[test]
fn bead_cancelled_sets_the_status_and_unhooks_every_holder() {
    let town = working_polecat(BeadStatus::InProgress);
    let cancel = |s| EventKind::BeadCancelled(BeadCancelled { cancel_status: s });
    town.apply(cancel(CancelStatus::Closed), None, Some("b1"))
        .unwrap();
    assert_eq!(town.bead("b1").status, BeadStatus::Closed);
    let agent = town.agent("pc");
    assert_eq!(
        (agent.current_hook_bead_id, agent.status),
        (None, AgentStatus::Idle)
    );

    // Usually the API already wrote the status: then only the unhook happens.
    let town = working_polecat(BeadStatus::Failed);
    town.apply(cancel(CancelStatus::Failed), None, Some("b1"))
        .unwrap();
    assert_eq!(town.agent("pc").current_hook_bead_id, None);
    let town = working_polecat(BeadStatus::Open);
    town.apply(cancel(CancelStatus::Failed), None, Some("b1"))
        .unwrap();
    assert_eq!(town.bead("b1").status, BeadStatus::Failed);
    town.apply(cancel(CancelStatus::Failed), None, Some("ghost"))
        .unwrap();
}

// ---- convoy_started ------------------------------------------------------------------------

#[test]
fn convoy_started_unstages_idempotently() {
    let town = TownBuilder::new()
        .bead(BeadSpec::convoy("c1", 1).staged())
        .build();
    let started = || {
        EventKind::ConvoyStarted(ConvoyStarted {
            convoy_id: "c1".into(),
        })
    };
    town.apply(started(), None, None).unwrap();
    assert!(!town.convoy("c1").staged);
    town.apply(started(), None, None).unwrap();
    assert!(!town.convoy("c1").staged);
    let missing = EventKind::ConvoyStarted(ConvoyStarted {
        convoy_id: "nope".into(),
    });
    town.apply(missing, None, None).unwrap();
}

// ---- pr_feedback_detected, pr_auto_merge ---------------------------------------------------

fn feedback(comments: bool, failing: bool, unchecked: bool) -> EventKind {
    EventKind::PrFeedbackDetected(PrFeedbackDetected {
        mr_bead_id: "mr1".into(),
        pr_url: PR.into(),
        pr_number: 9,
        repo: "o/r1".into(),
        branch: "gt/toast/src".into(),
        has_unresolved_comments: comments,
        has_failing_checks: failing,
        has_unchecked_runs: unchecked,
    })
}

#[test]
fn pr_feedback_files_one_blocking_fix_up_bead_at_a_time() {
    let town = pr_town();
    town.apply(feedback(true, true, false), None, Some("mr1"))
        .unwrap();
    let fb = town.beads_where("b.labels LIKE '%gt:pr-feedback%'");
    assert_eq!(fb.len(), 1);
    let fb = &fb[0];
    assert_eq!(
        fb.title,
        "Address review comments & failing CI on PR #9 (r1)"
    );
    assert_eq!(fb.rig_id.as_deref(), Some("r1"));
    assert_eq!(fb.parent_bead_id.as_deref(), Some("mr1"));
    assert_eq!(
        json!(fb.metadata),
        json!({"pr_feedback_for": "mr1", "pr_url": PR, "branch": "gt/toast/src"})
    );
    let body = fb.body.as_deref().unwrap();
    for needle in [
        "gh pr view 9 --comments",
        "gh pr checks 9",
        "--log-failed",
        "gt_done",
    ] {
        assert!(body.contains(needle), "{needle}");
    }
    assert!(town.has_dep("mr1", &fb.bead_id, DependencyType::Blocks));

    let before = town.snapshot();
    town.apply(feedback(false, true, false), None, Some("mr1"))
        .unwrap();
    assert_eq!(
        town.snapshot(),
        before,
        "a live feedback bead already blocks the MR"
    );

    town.db
        .execute(
            "UPDATE beads SET status = 'closed' WHERE bead_id = ?",
            &[fb.bead_id.as_str().into()],
        )
        .unwrap();
    town.apply(feedback(false, false, true), None, None)
        .unwrap();
    let titles: Vec<_> = town
        .beads_where("b.labels LIKE '%gt:pr-feedback%'")
        .into_iter()
        .map(|b| b.title)
        .collect();
    assert_eq!(titles[1], "Address unchecked CI runs on PR #9 (r1)");
    assert!(town.beads_where("b.labels LIKE '%gt:pr-feedback%'")[1]
        .body
        .as_deref()
        .unwrap()
        .contains("more than 100 check runs"));
}

#[test]
fn pr_feedback_and_auto_merge_skip_a_finished_mr() {
    let town = pr_town();
    town.db
        .execute(
            "UPDATE beads SET status = 'closed' WHERE bead_id = 'mr1'",
            &[],
        )
        .unwrap();
    let before = town.snapshot();
    town.apply(feedback(true, false, false), None, Some("mr1"))
        .unwrap();
    let auto = EventKind::PrAutoMerge(PrAutoMerge {
        mr_bead_id: "mr1".into(),
        pr_url: PR.into(),
    });
    town.apply(auto, None, Some("mr1")).unwrap();
    assert_eq!(town.snapshot(), before);
}

#[test]
fn pr_auto_merge_flags_the_mr_for_the_reconciler() {
    let town = pr_town();
    town.advance(42);
    let auto = EventKind::PrAutoMerge(PrAutoMerge {
        mr_bead_id: "mr1".into(),
        pr_url: PR.into(),
    });
    town.apply(auto, None, None).unwrap();
    let mr = town.bead("mr1");
    assert_eq!(mr.metadata["auto_merge_pending"], 1);
    assert_eq!(mr.updated_at, iso(T0 + 42));
}
