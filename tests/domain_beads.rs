//! Beads: the status helper, assignment, metadata, dependencies, filing and cancelling issues.

use gastown_town::domain::beads::{self, NewIssue};
use gastown_town::domain::DomainError;
use gastown_town::testing::town::*;
use gastown_town::vocabulary::events::CancelStatus;
use gastown_town::vocabulary::model::*;
use serde_json::json;

fn reason() -> FailureReason {
    FailureReason::new("agent_failed", "boom", "container")
}

#[test]
fn set_status_writes_the_status_an_event_and_closed_at() {
    let town = TownBuilder::new()
        .bead(BeadSpec::issue("b1").status(BeadStatus::InProgress))
        .build();
    town.advance(1_000);
    let bead = town
        .run(|ctx| beads::set_status(ctx, "b1", BeadStatus::Closed, "a1", None))
        .unwrap();
    assert_eq!(bead.status, BeadStatus::Closed);
    assert_eq!(
        bead.closed_at.as_deref(),
        Some(&*gastown_town::vocabulary::time::iso(T0 + 1_000))
    );
    assert_eq!(
        bead.updated_at,
        gastown_town::vocabulary::time::iso(T0 + 1_000)
    );
    let history = town.history("b1");
    let last = history.last().unwrap();
    assert_eq!(last.event_type, "status_changed");
    assert_eq!(last.old_value.as_deref(), Some("in_progress"));
    assert_eq!(last.new_value.as_deref(), Some("closed"));
    assert_eq!(last.agent_id.as_deref(), Some("a1"));
}

#[test]
fn failing_keeps_the_structured_failure_reason_and_no_closed_at() {
    let town = TownBuilder::new().bead(BeadSpec::issue("b1")).build();
    let bead = town
        .run(|ctx| beads::set_status(ctx, "b1", BeadStatus::Failed, "system", Some(&reason())))
        .unwrap();
    assert_eq!(bead.status, BeadStatus::Failed);
    assert_eq!(bead.closed_at, None);
    let event = town.history("b1").pop().unwrap();
    assert_eq!(
        event.metadata["failure_reason"],
        json!({"code": "agent_failed", "message": "boom", "source": "container"})
    );
}

#[test]
fn terminal_beads_are_immutable_and_equal_targets_change_nothing() {
    for terminal in [BeadStatus::Closed, BeadStatus::Failed] {
        let town = TownBuilder::new()
            .bead(BeadSpec::issue("b1").status(terminal))
            .build();
        let before = town.snapshot();
        for to in BeadStatus::ALL {
            let bead = town
                .run(|ctx| beads::set_status(ctx, "b1", *to, "system", None))
                .unwrap();
            assert_eq!(bead.status, terminal, "{terminal} -> {to}");
        }
        assert_eq!(town.snapshot(), before, "nothing written for {terminal}");
    }
    let town = TownBuilder::new().bead(BeadSpec::issue("b1")).build();
    let before = town.snapshot();
    town.advance(5);
    town.run(|ctx| beads::set_status(ctx, "b1", BeadStatus::Open, "system", None))
        .unwrap();
    assert_eq!(town.snapshot(), before, "open -> open is a no-op");
}

#[test]
fn set_status_of_an_unknown_bead_is_not_found() {
    let town = TownBuilder::new().build();
    let err = town
        .run(|ctx| beads::set_status(ctx, "nope", BeadStatus::Closed, "system", None))
        .unwrap_err();
    assert_eq!(err, DomainError::not_found("bead", "nope"));
}

#[test]
fn a_terminal_member_updates_its_convoys_progress() {
    let town = TownBuilder::new()
        .rig("r1")
        .bead(BeadSpec::convoy("c1", 2).merge_mode(Some(MergeMode::ReviewAndMerge)))
        .bead(
            BeadSpec::issue("m1")
                .rig("r1")
                .status(BeadStatus::InProgress),
        )
        .bead(BeadSpec::issue("m2").rig("r1").status(BeadStatus::Closed))
        .dep("m1", "c1", DependencyType::Tracks)
        .dep("m2", "c1", DependencyType::Tracks)
        .build();
    town.run(|ctx| beads::set_status(ctx, "m1", BeadStatus::Failed, "system", Some(&reason())))
        .unwrap();
    assert_eq!(town.convoy("c1").closed_beads, 2);
    assert_eq!(
        town.bead("c1").status,
        BeadStatus::Closed,
        "review-and-merge closes"
    );
    assert!(town.convoy("c1").landed_at.is_some());
}

#[test]
fn assign_and_clear_assignee_which_also_unhooks_every_holder() {
    let town = TownBuilder::new()
        .rig("r1")
        .bead(BeadSpec::issue("b1").rig("r1"))
        .agent(
            AgentSpec::polecat("a1")
                .rig("r1")
                .hook("b1")
                .status(AgentStatus::Working),
        )
        .build();
    let bead = town.run(|ctx| beads::assign(ctx, "b1", "a1")).unwrap();
    assert_eq!(bead.assignee_agent_bead_id.as_deref(), Some("a1"));
    assert_eq!(town.history_types("b1"), ["assigned"]);
    let bead = town.run(|ctx| beads::clear_assignee(ctx, "b1")).unwrap();
    assert_eq!(bead.assignee_agent_bead_id, None);
    let agent = town.agent("a1");
    assert_eq!(agent.current_hook_bead_id, None);
    assert_eq!(agent.status, AgentStatus::Idle);
    assert_eq!(town.history_types("b1"), ["assigned", "unhooked"]);
}

#[test]
fn metadata_merges_top_level_keys_and_null_removes() {
    let town = TownBuilder::new()
        .bead(
            BeadSpec::issue("b1")
                .meta("keep", json!(1))
                .meta("drop", json!("x")),
        )
        .build();
    town.advance(7);
    let patch = json!({"drop": null, "add": {"n": 2}, "keep": 3});
    let bead = town
        .run(|ctx| beads::merge_metadata(ctx, "b1", patch.as_object().unwrap()))
        .unwrap();
    assert_eq!(json!(bead.metadata), json!({"keep": 3, "add": {"n": 2}}));
    assert_eq!(bead.updated_at, gastown_town::vocabulary::time::iso(T0 + 7));
}

#[test]
fn dependencies_refuse_cycles_self_edges_and_conflicting_kinds() {
    let town = TownBuilder::new()
        .bead(BeadSpec::issue("a"))
        .bead(BeadSpec::issue("b"))
        .bead(BeadSpec::issue("c"))
        .build();
    town.run(|ctx| beads::add_dependency(ctx, "a", "b", DependencyType::Blocks))
        .unwrap();
    town.run(|ctx| beads::add_dependency(ctx, "b", "c", DependencyType::Blocks))
        .unwrap();
    let before = town.snapshot();
    let err = town
        .run(|ctx| beads::add_dependency(ctx, "c", "a", DependencyType::Blocks))
        .unwrap_err();
    assert!(matches!(err, DomainError::Cycle(_)), "{err:?}");
    let err = town
        .run(|ctx| beads::add_dependency(ctx, "a", "a", DependencyType::Blocks))
        .unwrap_err();
    assert!(matches!(err, DomainError::Cycle(_)));
    let err = town
        .run(|ctx| beads::add_dependency(ctx, "a", "b", DependencyType::Tracks))
        .unwrap_err();
    assert!(matches!(err, DomainError::Conflict(_)));
    let err = town
        .run(|ctx| beads::add_dependency(ctx, "a", "zz", DependencyType::Blocks))
        .unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(town.snapshot(), before);
    // Tracking edges may point back: they are not a DAG of work.
    town.run(|ctx| beads::add_dependency(ctx, "c", "a", DependencyType::Tracks))
        .unwrap();
    // Adding an existing edge again changes nothing.
    town.run(|ctx| beads::add_dependency(ctx, "a", "b", DependencyType::Blocks))
        .unwrap();
    assert_eq!(town.count("bead_dependencies"), 3);
}

#[test]
fn filing_an_issue_needs_a_rig_and_records_bead_created() {
    let town = TownBuilder::new().rig("r1").build();
    let issue = |rig: &str, title: &str| NewIssue {
        rig_id: rig.into(),
        title: title.into(),
        body: Some("details".into()),
        priority: Priority::High,
        labels: vec!["x".into()],
        created_by: "api".into(),
    };
    let before = town.snapshot();
    let err = town
        .run(|ctx| beads::create_issue(ctx, &issue("r9", "t")))
        .unwrap_err();
    assert_eq!(err, DomainError::not_found("rig", "r9"));
    let err = town
        .run(|ctx| beads::create_issue(ctx, &issue("r1", "  ")))
        .unwrap_err();
    assert!(matches!(err, DomainError::Invalid { ref field, .. } if field == "title"));
    assert_eq!(town.snapshot(), before);

    let bead = town
        .run(|ctx| beads::create_issue(ctx, &issue("r1", "Fix it")))
        .unwrap();
    assert_eq!(bead.bead_type, BeadType::Issue);
    assert_eq!(bead.status, BeadStatus::Open);
    assert_eq!(bead.assignee_agent_bead_id, None);
    assert_eq!(bead.priority, Priority::High);
    assert_eq!(bead.rig_id.as_deref(), Some("r1"));
    let events = town.town_events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "bead_created");
    assert_eq!(events[0].bead_id.as_deref(), Some(bead.bead_id.as_str()));
    assert_eq!(
        events[0].payload,
        json!({"bead_type": "issue", "rig_id": "r1", "has_blockers": false})
    );
}

#[test]
fn cancelling_records_bead_cancelled_before_the_status_write() {
    let town = TownBuilder::new()
        .bead(BeadSpec::issue("b1").status(BeadStatus::InProgress))
        .bead(BeadSpec::issue("b2").status(BeadStatus::Closed))
        .agent(AgentSpec::polecat("a1"))
        .build();
    let bead = town
        .run(|ctx| beads::cancel(ctx, "b1", CancelStatus::Failed, "api"))
        .unwrap();
    assert_eq!(bead.status, BeadStatus::Failed);
    let events = town.town_events();
    assert_eq!(events[0].event_type, "bead_cancelled");
    assert_eq!(events[0].payload, json!({"cancel_status": "failed"}));
    let failure = &town.history("b1").pop().unwrap().metadata["failure_reason"];
    assert_eq!(failure["code"], "cancelled");

    let before = town.snapshot();
    let err = town
        .run(|ctx| beads::cancel(ctx, "b2", CancelStatus::Closed, "api"))
        .unwrap_err();
    assert!(matches!(err, DomainError::Conflict(_)));
    let err = town
        .run(|ctx| beads::cancel(ctx, "a1", CancelStatus::Closed, "api"))
        .unwrap_err();
    assert!(
        matches!(err, DomainError::Conflict(_)),
        "agent beads refuse"
    );
    assert_eq!(town.snapshot(), before);
}

#[test]
fn cancelling_a_convoy_as_failed_is_refused_so_invariant_5_holds() {
    let town = TownBuilder::new().bead(BeadSpec::convoy("c1", 2)).build();
    let before = town.snapshot();
    let err = town
        .run(|ctx| beads::cancel(ctx, "c1", CancelStatus::Failed, "api"))
        .unwrap_err();
    assert!(matches!(err, DomainError::Conflict(_)), "{err:?}");
    assert_eq!(town.snapshot(), before);
    let closed = town
        .run(|ctx| beads::cancel(ctx, "c1", CancelStatus::Closed, "api"))
        .unwrap();
    assert_eq!(closed.status, BeadStatus::Closed);
}
