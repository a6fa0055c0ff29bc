//! Convoys: slinging a task DAG, the cycle check that writes nothing, starting, progress and
//! landing.

use gastown_town::domain::convoys::{self, ConvoyTask, SlingConvoy};
use gastown_town::domain::DomainError;
use gastown_town::testing::town::*;
use gastown_town::vocabulary::config::TownConfig;
use gastown_town::vocabulary::model::*;
use serde_json::json;

fn task(title: &str, depends_on: &[usize]) -> ConvoyTask {
    ConvoyTask {
        title: title.into(),
        body: Some(format!("do {title}")),
        depends_on: depends_on.to_vec(),
    }
}

fn sling(title: &str, tasks: Vec<ConvoyTask>) -> SlingConvoy {
    SlingConvoy {
        title: title.into(),
        rig_id: "r1".into(),
        merge_mode: None,
        staged: None,
        tasks,
        created_by: "api".into(),
    }
}

#[test]
fn slinging_creates_the_convoy_its_beads_edges_and_one_event_per_bead() {
    let town = TownBuilder::new().rig("r1").build();
    let s = sling(
        "Add OAuth: login & logout!",
        vec![task("schema", &[]), task("api", &[0]), task("ui", &[0, 1])],
    );
    let slung = town.run(|ctx| convoys::sling(ctx, &s)).unwrap();
    let convoy_id = slung.convoy.bead.bead_id.clone();
    let branch = format!("convoy/add-oauth-login-logout/{}/head", &convoy_id[..8]);
    let c = &slung.convoy;
    assert_eq!(c.bead.bead_type, BeadType::Convoy);
    assert_eq!(c.bead.rig_id, None);
    assert_eq!(c.bead.labels, ["gt:convoy"]);
    assert_eq!(json!(c.bead.metadata), json!({"feature_branch": branch}));
    assert_eq!(c.convoy.total_beads, 3);
    assert_eq!(c.convoy.closed_beads, 0);
    assert_eq!(c.convoy.feature_branch.as_deref(), Some(branch.as_str()));
    assert_eq!(c.convoy.merge_mode, Some(MergeMode::ReviewThenLand));
    assert!(!c.convoy.staged);

    assert_eq!(slung.bead_ids.len(), 3);
    for id in &slung.bead_ids {
        let b = town.bead(id);
        assert_eq!(b.bead_type, BeadType::Issue);
        assert_eq!(b.rig_id.as_deref(), Some("r1"));
        assert_eq!(b.assignee_agent_bead_id, None);
        assert_eq!(
            json!(b.metadata),
            json!({"convoy_id": convoy_id, "feature_branch": branch})
        );
        assert!(town.has_dep(id, &convoy_id, DependencyType::Tracks));
    }
    let [schema, api, ui] = [&slung.bead_ids[0], &slung.bead_ids[1], &slung.bead_ids[2]];
    assert!(town.has_dep(api, schema, DependencyType::Blocks));
    assert!(town.has_dep(ui, schema, DependencyType::Blocks));
    assert!(town.has_dep(ui, api, DependencyType::Blocks));
    assert_eq!(
        town.count("bead_dependencies WHERE dependency_type = 'blocks'"),
        3
    );
    assert_eq!(
        town.count("agent_metadata"),
        0,
        "no agents: assignment is lazy"
    );

    let events = town.town_events();
    assert_eq!(events.len(), 3);
    for (e, (id, blockers)) in events
        .iter()
        .zip(slung.bead_ids.iter().zip([false, true, true]))
    {
        assert_eq!(e.event_type, "bead_created");
        assert_eq!(e.bead_id.as_deref(), Some(id.as_str()));
        assert_eq!(
            e.payload,
            json!({"bead_type": "issue", "rig_id": "r1", "convoy_id": convoy_id,
                   "has_blockers": blockers})
        );
    }
}

#[test]
fn a_cycle_is_refused_before_anything_is_written() {
    let town = TownBuilder::new().rig("r1").build();
    let before = town.snapshot();
    for tasks in [
        vec![task("a", &[1]), task("b", &[2]), task("c", &[0])],
        vec![task("a", &[0])],
        vec![task("a", &[]), task("b", &[2]), task("c", &[1])],
    ] {
        let err = town
            .run(|ctx| convoys::sling(ctx, &sling("loop", tasks)))
            .unwrap_err();
        assert!(matches!(err, DomainError::Cycle(_)), "{err:?}");
    }
    assert_eq!(town.snapshot(), before);
}

#[test]
fn slinging_validates_its_input() {
    let town = TownBuilder::new().rig("r1").build();
    let before = town.snapshot();
    let field_of = |s: SlingConvoy| match town.run(|ctx| convoys::sling(ctx, &s)).unwrap_err() {
        DomainError::Invalid { field, .. } => field,
        other => panic!("{other:?}"),
    };
    assert_eq!(field_of(sling(" ", vec![task("a", &[])])), "title");
    assert_eq!(field_of(sling("t", vec![])), "beads");
    assert_eq!(
        field_of(sling("t", vec![task("a", &[]), task("", &[])])),
        "beads[1].title"
    );
    assert_eq!(
        field_of(sling("t", vec![task("a", &[5])])),
        "beads[0].depends_on"
    );
    let mut unknown_rig = sling("t", vec![task("a", &[])]);
    unknown_rig.rig_id = "r9".into();
    let err = town
        .run(|ctx| convoys::sling(ctx, &unknown_rig))
        .unwrap_err();
    assert_eq!(err, DomainError::not_found("rig", "r9"));
    assert_eq!(town.snapshot(), before);
}

#[test]
fn staging_defaults_from_the_town_config_and_start_clears_it() {
    let config = TownConfig {
        staged_convoys_default: true,
        ..TownConfig::default()
    };
    let town = TownBuilder::new().rig("r1").config(config).build();
    let slung = town
        .run(|ctx| convoys::sling(ctx, &sling("t", vec![task("a", &[])])))
        .unwrap();
    let id = slung.convoy.bead.bead_id;
    assert!(slung.convoy.convoy.staged);
    let mut explicit = sling("t2", vec![task("a", &[])]);
    explicit.staged = Some(false);
    let other = town.run(|ctx| convoys::sling(ctx, &explicit)).unwrap();
    assert!(!other.convoy.convoy.staged);

    let started = town.run(|ctx| convoys::start(ctx, &id)).unwrap();
    assert!(!started.convoy.staged);
    let last = town.town_events().pop().unwrap();
    assert_eq!(last.event_type, "convoy_started");
    assert_eq!(last.payload, json!({"convoy_id": id}));
    let before = town.snapshot();
    let err = town.run(|ctx| convoys::start(ctx, &id)).unwrap_err();
    assert!(matches!(err, DomainError::Conflict(_)), "already started");
    let err = town.run(|ctx| convoys::start(ctx, "nope")).unwrap_err();
    assert_eq!(err, DomainError::not_found("convoy", "nope"));
    assert_eq!(town.snapshot(), before);
}

#[test]
fn the_feature_branch_slug_is_at_most_forty_characters() {
    let long = "A very long convoy title that keeps going well past forty characters";
    let branch = convoys::feature_branch(long, "0123456789abcdef");
    assert_eq!(
        branch,
        "convoy/a-very-long-convoy-title-that-keeps-goin/01234567/head"
    );
    assert_eq!(convoys::feature_branch("!!!", "c"), "convoy/convoy/c/head");
}

fn convoy_town(mode: Option<MergeMode>, branch: Option<&str>) -> Town {
    TownBuilder::new()
        .rig("r1")
        .bead(
            BeadSpec::convoy("c1", 2)
                .merge_mode(mode)
                .feature_branch(branch),
        )
        .bead(BeadSpec::issue("m1").rig("r1").status(BeadStatus::Closed))
        .bead(BeadSpec::issue("m2").rig("r1").status(BeadStatus::InReview))
        .bead(
            BeadSpec::mr("mr2", "m2", "gt/x/m2")
                .rig("r1")
                .status(BeadStatus::InProgress),
        )
        .dep("m1", "c1", DependencyType::Tracks)
        .dep("m2", "c1", DependencyType::Tracks)
        .build()
}

#[test]
fn progress_does_not_count_members_whose_mr_is_still_live() {
    let town = convoy_town(Some(MergeMode::ReviewThenLand), Some("convoy/c1/head"));
    town.run(|ctx| convoys::recompute_progress(ctx, "m1"))
        .unwrap();
    assert_eq!(town.convoy("c1").closed_beads, 1);
    // m2 closes while its MR is still in progress: still not done.
    town.run(|ctx| {
        gastown_town::domain::beads::set_status(ctx, "m2", BeadStatus::Closed, "system", None)
    })
    .unwrap();
    assert_eq!(town.convoy("c1").closed_beads, 1);
    assert!(!town.bead("c1").flag("ready_to_land"));
}

#[test]
fn a_done_review_then_land_convoy_is_flagged_ready_to_land() {
    let town = convoy_town(Some(MergeMode::ReviewThenLand), Some("convoy/c1/head"));
    town.db
        .execute(
            "UPDATE beads SET status = 'closed' WHERE bead_id IN ('m2', 'mr2')",
            &[],
        )
        .unwrap();
    town.advance(10);
    town.run(|ctx| convoys::recompute_progress(ctx, "m2"))
        .unwrap();
    let c1 = town.bead("c1");
    assert_eq!(town.convoy("c1").closed_beads, 2);
    assert_eq!(c1.status, BeadStatus::Open);
    assert!(c1.flag("ready_to_land"));
    assert_eq!(c1.updated_at, gastown_town::vocabulary::time::iso(T0 + 10));
    assert_eq!(town.convoy("c1").landed_at, None);
}

#[test]
fn a_done_convoy_without_landing_closes_at_once() {
    for (mode, branch) in [
        (Some(MergeMode::ReviewAndMerge), Some("convoy/c1/head")),
        (Some(MergeMode::ReviewThenLand), None),
    ] {
        let town = convoy_town(mode, branch);
        town.db
            .execute(
                "UPDATE beads SET status = 'failed' WHERE bead_id IN ('m2', 'mr2')",
                &[],
            )
            .unwrap();
        town.run(|ctx| convoys::recompute_progress(ctx, "m2"))
            .unwrap();
        assert_eq!(
            town.bead("c1").status,
            BeadStatus::Closed,
            "{mode:?} {branch:?}"
        );
        assert!(town.convoy("c1").landed_at.is_some());
    }
}

#[test]
fn reconciler_convoy_actions() {
    let town = convoy_town(Some(MergeMode::ReviewThenLand), Some("convoy/c1/head"));
    let c = town
        .run(|ctx| convoys::update_progress(ctx, "c1", 1))
        .unwrap();
    assert_eq!(c.convoy.closed_beads, 1);
    let c = town
        .run(|ctx| convoys::set_ready_to_land(ctx, "c1"))
        .unwrap();
    assert_eq!(c.bead.metadata["ready_to_land"], 1);
    town.advance(5);
    let c = town.run(|ctx| convoys::close(ctx, "c1")).unwrap();
    assert_eq!(c.bead.status, BeadStatus::Closed);
    assert_eq!(
        c.convoy.landed_at,
        Some(gastown_town::vocabulary::time::iso(T0 + 5))
    );
    assert_eq!(town.history_types("c1").last().unwrap(), "status_changed");
}
