//! The review queue: submitting, every review outcome, PR URLs and change requests.

use gastown_town::domain::reviews::{self, Outcome, Submission};
use gastown_town::domain::DomainError;
use gastown_town::testing::town::*;
use gastown_town::vocabulary::model::*;
use serde_json::json;

fn submission(source: &str, agent: &str, rig: Option<&str>) -> Submission {
    Submission {
        source_bead_id: source.into(),
        agent_id: agent.into(),
        rig_id: rig.map(Into::into),
        branch: "gt/toast/b1".into(),
        pr_url: None,
        summary: Some("did the thing".into()),
        default_branch: None,
    }
}

#[test]
fn submitting_creates_the_mr_bead_its_review_row_and_the_tracks_edge() {
    let town = TownBuilder::new()
        .rig_on("r1", "develop")
        .bead(
            BeadSpec::issue("b1")
                .rig("r1")
                .status(BeadStatus::InProgress),
        )
        .agent(AgentSpec::polecat("a1").rig("r1").hook("b1"))
        .build();
    let mut s = submission("b1", "a1", Some("r1"));
    s.pr_url = Some("https://github.com/o/r1/pull/7".into());
    let mr = town.run(|ctx| reviews::submit(ctx, &s)).unwrap();
    assert_eq!(mr.bead_type, BeadType::MergeRequest);
    assert_eq!(mr.status, BeadStatus::Open);
    assert_eq!(mr.title, "Review: gt/toast/b1");
    assert_eq!(mr.body.as_deref(), Some("did the thing"));
    assert_eq!(mr.rig_id.as_deref(), Some("r1"));
    assert_eq!(mr.assignee_agent_bead_id, None);
    assert_eq!(mr.labels, ["gt:merge-request"]);
    assert_eq!(mr.created_by.as_deref(), Some("a1"));
    assert_eq!(
        json!(mr.metadata),
        json!({"source_bead_id": "b1", "source_agent_id": "a1",
               "pr_url": "https://github.com/o/r1/pull/7"})
    );
    assert!(town.has_dep(&mr.bead_id, "b1", DependencyType::Tracks));
    let review = town.review(&mr.bead_id);
    assert_eq!(review.branch, "gt/toast/b1");
    assert_eq!(review.target_branch, "develop", "the rig's default branch");
    assert_eq!(
        review.pr_url.as_deref(),
        Some("https://github.com/o/r1/pull/7")
    );
    assert_eq!(town.history_types("b1"), ["review_submitted"]);
}

#[test]
fn the_target_is_the_feature_branch_of_a_review_then_land_convoy() {
    let town = TownBuilder::new()
        .rig_on("r1", "develop")
        .bead(BeadSpec::convoy("land", 1))
        .bead(BeadSpec::convoy("merge", 1).merge_mode(Some(MergeMode::ReviewAndMerge)))
        .bead(BeadSpec::convoy("nobranch", 1).feature_branch(None))
        .bead(BeadSpec::issue("in-land").rig("r1"))
        .bead(BeadSpec::issue("in-merge").rig("r1"))
        .bead(BeadSpec::issue("in-nobranch").rig("r1"))
        .bead(BeadSpec::issue("alone").rig("r1"))
        .dep("in-land", "land", DependencyType::Tracks)
        .dep("in-merge", "merge", DependencyType::Tracks)
        .dep("in-nobranch", "nobranch", DependencyType::Tracks)
        .build();
    let target = |source: &str, rig: Option<&str>| {
        let mr = town
            .run(|ctx| reviews::submit(ctx, &submission(source, "a1", rig)))
            .unwrap();
        (town.review(&mr.bead_id).target_branch, mr.metadata)
    };
    let (t, meta) = target("in-land", Some("r1"));
    assert_eq!(t, "convoy/land/head");
    assert_eq!(meta["convoy_id"], "land");
    assert_eq!(meta["convoy_feature_branch"], "convoy/land/head");
    let (t, meta) = target("in-merge", Some("r1"));
    assert_eq!(t, "develop");
    assert_eq!(meta["convoy_id"], "merge");
    assert!(!meta.contains_key("convoy_feature_branch"));
    assert_eq!(target("in-nobranch", Some("r1")).0, "develop");
    assert_eq!(target("alone", None).0, "main");
}

#[test]
fn submitting_refuses_an_unknown_source_an_empty_branch_and_a_non_https_pr() {
    let town = TownBuilder::new().bead(BeadSpec::issue("b1")).build();
    let before = town.snapshot();
    let err = town
        .run(|ctx| reviews::submit(ctx, &submission("nope", "a1", None)))
        .unwrap_err();
    assert!(err.is_not_found());
    let mut s = submission("b1", "a1", None);
    s.branch = " ".into();
    let err = town.run(|ctx| reviews::submit(ctx, &s)).unwrap_err();
    assert!(matches!(err, DomainError::Invalid { ref field, .. } if field == "branch"));
    let mut s = submission("b1", "a1", None);
    s.pr_url = Some("http://github.com/o/r/pull/1".into());
    let err = town.run(|ctx| reviews::submit(ctx, &s)).unwrap_err();
    assert!(matches!(err, DomainError::Invalid { ref field, .. } if field == "pr_url"));
    assert_eq!(town.snapshot(), before);
}

fn review_town() -> Town {
    TownBuilder::new()
        .rig("r1")
        .bead(BeadSpec::convoy("c1", 1).merge_mode(Some(MergeMode::ReviewAndMerge)))
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
        .bead(BeadSpec::mr("mr0", "src", "gt/toast/src-old").rig("r1"))
        .bead(
            BeadSpec::mr("mr-failed", "src", "gt/toast/src-older")
                .rig("r1")
                .status(BeadStatus::Failed),
        )
        .dep("src", "c1", DependencyType::Tracks)
        .agent(AgentSpec::polecat("pc").rig("r1"))
        .agent(
            AgentSpec::refinery("ref")
                .rig("r1")
                .hook("mr1")
                .status(AgentStatus::Working),
        )
        .build()
}

#[test]
fn a_merged_review_closes_the_source_and_its_sibling_mrs_and_lands_the_convoy() {
    let town = review_town();
    let mr = town
        .run(|ctx| reviews::complete(ctx, "mr1", Outcome::Merged, Some("lgtm"), Some("abc123")))
        .unwrap();
    assert_eq!(mr.status, BeadStatus::Closed);
    assert_eq!(town.review("mr1").merge_commit.as_deref(), Some("abc123"));
    assert_eq!(town.bead("src").status, BeadStatus::Closed);
    assert_eq!(
        town.bead("mr0").status,
        BeadStatus::Closed,
        "sibling force-closed"
    );
    assert_eq!(
        town.bead("mr-failed").status,
        BeadStatus::Failed,
        "terminal stays"
    );
    let completed = town
        .history("src")
        .into_iter()
        .find(|e| e.event_type == "review_completed")
        .unwrap();
    assert_eq!(completed.new_value.as_deref(), Some("merged"));
    assert_eq!(completed.metadata["mr_bead_id"], "mr1");
    // The convoy's only member is done and has no live MR: review-and-merge closes it.
    assert_eq!(town.convoy("c1").closed_beads, 1);
    assert_eq!(town.bead("c1").status, BeadStatus::Closed);
    assert!(town.convoy("c1").landed_at.is_some());
}

#[test]
fn a_failed_review_reopens_the_source_without_assignee() {
    let town = review_town();
    let mr = town
        .run(|ctx| reviews::complete(ctx, "mr1", Outcome::Failed, Some("tests fail"), None))
        .unwrap();
    assert_eq!(mr.status, BeadStatus::Failed);
    let failure = &town.history("mr1").pop().unwrap().metadata["failure_reason"];
    assert_eq!(failure["code"], "review_failed");
    assert_eq!(failure["message"], "tests fail");
    let src = town.bead("src");
    assert_eq!(src.status, BeadStatus::Open);
    assert_eq!(src.assignee_agent_bead_id, None);
    assert_eq!(
        town.bead("mr0").status,
        BeadStatus::Open,
        "siblings untouched"
    );
    assert_eq!(town.count("beads WHERE type = 'escalation'"), 0);
}

#[test]
fn a_conflict_also_files_a_high_priority_escalation() {
    let town = review_town();
    town.run(|ctx| {
        reviews::complete(
            ctx,
            "mr1",
            Outcome::Conflict,
            Some("CONFLICT in a.rs"),
            None,
        )
    })
    .unwrap();
    assert_eq!(town.bead("mr1").status, BeadStatus::Failed);
    assert_eq!(town.bead("src").status, BeadStatus::Open);
    let escalations = town.beads_where("b.type = 'escalation'");
    assert_eq!(escalations.len(), 1);
    let e = &escalations[0];
    assert!(e.title.starts_with("Merge conflict: "), "{}", e.title);
    assert_eq!(e.priority, Priority::High);
    assert_eq!(e.rig_id.as_deref(), Some("r1"));
    assert!(e.body.as_deref().unwrap().contains("CONFLICT in a.rs"));
    let severity = town
        .db
        .one(
            "SELECT severity, category FROM escalation_metadata WHERE bead_id = ?",
            &[e.bead_id.as_str().into()],
        )
        .unwrap();
    assert_eq!(severity.text("severity").unwrap(), "high");
    assert_eq!(severity.text("category").unwrap(), "merge_conflict");
}

#[test]
fn a_terminal_source_is_not_reopened_and_a_finished_mr_is_not_completed_twice() {
    let town = TownBuilder::new()
        .bead(BeadSpec::issue("src").status(BeadStatus::Closed))
        .bead(BeadSpec::mr("mr1", "src", "b").status(BeadStatus::InProgress))
        .bead(BeadSpec::mr("mr2", "src", "b").status(BeadStatus::Closed))
        .build();
    town.run(|ctx| reviews::complete(ctx, "mr1", Outcome::Failed, None, None))
        .unwrap();
    assert_eq!(town.bead("src").status, BeadStatus::Closed);
    let before = town.snapshot();
    let mr = town
        .run(|ctx| reviews::complete(ctx, "mr2", Outcome::Conflict, None, None))
        .unwrap();
    assert_eq!(mr.status, BeadStatus::Closed);
    assert_eq!(town.snapshot(), before);
    let err = town
        .run(|ctx| reviews::complete(ctx, "src", Outcome::Merged, None, None))
        .unwrap_err();
    assert_eq!(err, DomainError::not_found("merge request", "src"));
}

#[test]
fn a_merged_landing_mr_lands_its_convoy() {
    let town = TownBuilder::new()
        .rig("r1")
        .bead(BeadSpec::convoy("c1", 1).meta("ready_to_land", json!(1)))
        .bead(BeadSpec::issue("m1").rig("r1").status(BeadStatus::Closed))
        .dep("m1", "c1", DependencyType::Tracks)
        .build();
    let landing = town
        .run(|ctx| reviews::create_landing_mr(ctx, "c1", "r1", "convoy/c1/head", "main"))
        .unwrap();
    assert_eq!(landing.created_by.as_deref(), Some("system"));
    assert!(town.has_dep(&landing.bead_id, "c1", DependencyType::Tracks));
    let review = town.review(&landing.bead_id);
    assert_eq!(
        (review.branch.as_str(), review.target_branch.as_str()),
        ("convoy/c1/head", "main")
    );
    town.run(|ctx| reviews::complete(ctx, &landing.bead_id, Outcome::Merged, None, None))
        .unwrap();
    assert_eq!(town.bead("c1").status, BeadStatus::Closed);
    assert!(town.convoy("c1").landed_at.is_some());
}

#[test]
fn pr_urls_must_be_https() {
    let town = TownBuilder::new()
        .bead(BeadSpec::issue("src"))
        .bead(BeadSpec::mr("mr1", "src", "b"))
        .build();
    let before = town.snapshot();
    for bad in [
        "http://x.test/pull/1",
        "ftp://x",
        "https://",
        "https:// x",
        "github.com/o/r",
    ] {
        let err = town
            .run(|ctx| reviews::set_pr_url(ctx, "mr1", bad))
            .unwrap_err();
        assert!(matches!(err, DomainError::Invalid { .. }), "{bad}");
    }
    assert_eq!(town.snapshot(), before);
    let mr = town
        .run(|ctx| reviews::set_pr_url(ctx, "mr1", "https://github.com/o/r/pull/1"))
        .unwrap();
    assert_eq!(mr.meta_str("pr_url"), Some("https://github.com/o/r/pull/1"));
    assert_eq!(
        town.review("mr1").pr_url.as_deref(),
        Some("https://github.com/o/r/pull/1")
    );
}

#[test]
fn a_refinery_requests_changes_with_a_rework_bead_that_blocks_the_mr() {
    let town = review_town();
    let rework = town
        .run(|ctx| reviews::request_changes(ctx, "ref", "mr1", "rename the function"))
        .unwrap();
    assert_eq!(rework.bead_type, BeadType::Issue);
    assert_eq!(rework.labels, ["gt:rework"]);
    assert_eq!(rework.title, "Rework: bead src");
    assert_eq!(rework.body.as_deref(), Some("rename the function"));
    assert_eq!(rework.rig_id.as_deref(), Some("r1"));
    assert_eq!(rework.parent_bead_id.as_deref(), Some("mr1"));
    assert_eq!(
        rework.assignee_agent_bead_id, None,
        "the reconciler dispatches it"
    );
    assert_eq!(rework.metadata["mr_bead_id"], "mr1");
    assert_eq!(rework.metadata["branch"], "gt/toast/src");
    assert!(town.has_dep("mr1", &rework.bead_id, DependencyType::Blocks));
    let events = town.town_events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "bead_created");
    assert_eq!(events[0].bead_id.as_deref(), Some(rework.bead_id.as_str()));
    assert_eq!(town.history_types("mr1"), ["rework_requested"]);
}

#[test]
fn only_the_refinery_reviewing_a_live_mr_may_request_changes() {
    let town = review_town();
    let before = town.snapshot();
    let conflict = |agent: &str, mr: &str, feedback: &str| {
        town.run(|ctx| reviews::request_changes(ctx, agent, mr, feedback))
            .unwrap_err()
    };
    assert!(matches!(
        conflict("pc", "mr1", "x"),
        DomainError::Conflict(_)
    ));
    assert!(matches!(
        conflict("ref", "mr0", "x"),
        DomainError::Conflict(_)
    ));
    assert!(matches!(
        conflict("ref", "mr1", " "),
        DomainError::Invalid { .. }
    ));
    assert!(conflict("ref", "src", "x").is_not_found());
    assert!(conflict("ghost", "mr1", "x").is_not_found());
    assert_eq!(town.snapshot(), before);
}

#[test]
fn the_api_names_mr_statuses() {
    assert_eq!(reviews::api_status(BeadStatus::Open), "pending");
    assert_eq!(reviews::api_status(BeadStatus::InProgress), "running");
    assert_eq!(reviews::api_status(BeadStatus::Closed), "merged");
    assert_eq!(reviews::api_status(BeadStatus::Failed), "failed");
}
