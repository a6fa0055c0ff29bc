//! Applying each of the 23 action types (GASTOWN-DOMAIN.md 4.1) through `tick::apply` on real
//! SQLite: the mutation it makes, and for a side effect its synchronous part and the `Effect` it
//! yields. Then `apply_all`: in order, each action atomic, and one failing action neither stops
//! the others nor leaves a partial write behind.

use gastown_town::domain::DomainError;
use gastown_town::sql::atomically;
use gastown_town::testing::town::*;
use gastown_town::tick::apply::{apply, apply_all};
use gastown_town::vocabulary::actions::{Action, Effect, MayorNotice, NudgeTier};
use gastown_town::vocabulary::model::*;
use gastown_town::vocabulary::time::{iso, MINUTE};
use serde_json::{json, Map};

fn s(v: &str) -> String {
    v.to_owned()
}

/// Applies one action in its own atomic unit, as `apply_all` does.
fn apply_one(town: &Town, action: &Action) -> Result<Option<Effect>, DomainError> {
    let ctx = town.ctx();
    atomically(&town.db, || apply(&ctx, action))
}

/// Applies a mutation and checks it yields no effect.
fn mutate(town: &Town, action: Action) {
    assert_eq!(apply_one(town, &action).unwrap(), None, "{action:?}");
}

const PR: &str = "https://github.com/o/r1/pull/7";

/// A rig `r1` with an open issue `b1`, a working polecat `p1` hooked to an in-progress `b2`, and
/// an idle refinery `ref`.
fn town() -> Town {
    TownBuilder::new()
        .rig("r1")
        .bead(BeadSpec::issue("b1").rig("r1"))
        .bead(
            BeadSpec::issue("b2")
                .rig("r1")
                .status(BeadStatus::InProgress)
                .assignee("p1"),
        )
        .agent(
            AgentSpec::polecat("p1")
                .rig("r1")
                .hook("b2")
                .status(AgentStatus::Working)
                .active_at(T0)
                .checkpoint("{\"step\":3}"),
        )
        .agent(AgentSpec::refinery("ref").rig("r1"))
        .build()
}

// ---- mutations ------------------------------------------------------------------------------

#[test]
fn transition_bead_uses_the_status_helper_and_ignores_from() {
    let t = town();
    t.advance(MINUTE);
    mutate(
        &t,
        Action::TransitionBead {
            bead_id: s("b1"),
            from: Some(BeadStatus::InReview),
            to: BeadStatus::Failed,
            reason: s("max dispatch attempts exceeded (5)"),
            actor: s("system"),
        },
    );
    let b1 = t.bead("b1");
    assert_eq!(b1.status, BeadStatus::Failed);
    assert_eq!(b1.updated_at, iso(T0 + MINUTE));
    let changed = t.history("b1").pop().unwrap();
    assert_eq!(changed.event_type, "status_changed");
    assert_eq!(changed.agent_id.as_deref(), Some("system"));
    assert_eq!(
        changed.metadata["failure_reason"],
        json!({"code": "reconciler", "message": "max dispatch attempts exceeded (5)",
               "source": "scheduler"})
    );

    // Terminal beads never move again; the action still succeeds and writes nothing.
    let before = t.snapshot();
    mutate(
        &t,
        Action::TransitionBead {
            bead_id: s("b1"),
            from: None,
            to: BeadStatus::Open,
            reason: s("again"),
            actor: s("system"),
        },
    );
    assert_eq!(t.snapshot(), before);
}

#[test]
fn transition_bead_to_a_terminal_status_recomputes_convoy_progress() {
    let t = TownBuilder::new()
        .rig("r1")
        .bead(
            BeadSpec::convoy("c1", 1)
                .merge_mode(Some(MergeMode::ReviewAndMerge))
                .feature_branch(None),
        )
        .bead(BeadSpec::issue("m1").rig("r1").status(BeadStatus::InReview))
        .dep("m1", "c1", DependencyType::Tracks)
        .build();
    mutate(
        &t,
        Action::TransitionBead {
            bead_id: s("m1"),
            from: Some(BeadStatus::InReview),
            to: BeadStatus::Closed,
            reason: s("MR merged (reconciler safety net)"),
            actor: s("system"),
        },
    );
    assert_eq!(t.convoy("c1").closed_beads, 1);
    assert_eq!(t.bead("c1").status, BeadStatus::Closed);
    assert!(t.convoy("c1").landed_at.is_some());
}

#[test]
fn assign_bead_sets_the_assignee_and_logs_it() {
    let t = town();
    mutate(
        &t,
        Action::AssignBead {
            bead_id: s("b1"),
            agent_id: s("p1"),
        },
    );
    assert_eq!(t.bead("b1").assignee_agent_bead_id.as_deref(), Some("p1"));
    assert_eq!(t.history_types("b1").last().unwrap(), "assigned");
}

#[test]
fn clear_bead_assignee_also_unhooks_every_holder() {
    let t = town();
    t.advance(MINUTE);
    mutate(&t, Action::ClearBeadAssignee { bead_id: s("b2") });
    let b2 = t.bead("b2");
    assert_eq!(b2.assignee_agent_bead_id, None);
    assert_eq!(b2.updated_at, iso(T0 + MINUTE));
    let p1 = t.agent("p1");
    assert_eq!(p1.current_hook_bead_id, None);
    assert_eq!(p1.status, AgentStatus::Idle);
    assert_eq!(t.history_types("b2").last().unwrap(), "unhooked");
}

#[test]
fn create_mr_bead_submits_to_the_review_queue() {
    let t = town();
    mutate(
        &t,
        Action::CreateMrBead {
            source_bead_id: s("b2"),
            agent_id: s("p1"),
            rig_id: s("r1"),
            branch: s("gt/p1/b2"),
            target_branch: s("trunk"),
            pr_url: Some(s(PR)),
            summary: Some(s("did it")),
        },
    );
    let mrs = t.beads_where("b.type = 'merge_request'");
    assert_eq!(mrs.len(), 1);
    let mr = &mrs[0];
    assert_eq!(
        (mr.status, mr.title.as_str(), mr.body.as_deref()),
        (BeadStatus::Open, "Review: gt/p1/b2", Some("did it"))
    );
    assert_eq!(mr.rig_id.as_deref(), Some("r1"));
    assert_eq!(mr.meta_str("source_bead_id"), Some("b2"));
    assert!(t.has_dep(&mr.bead_id, "b2", DependencyType::Tracks));
    let review = t.review(&mr.bead_id);
    assert_eq!(review.target_branch, "trunk");
    assert_eq!(review.pr_url.as_deref(), Some(PR));
    assert_eq!(t.history_types("b2").last().unwrap(), "review_submitted");
}

#[test]
fn create_landing_mr_reviews_the_feature_branch_as_system() {
    let t = TownBuilder::new()
        .rig("r1")
        .bead(BeadSpec::convoy("c1", 1))
        .build();
    mutate(
        &t,
        Action::CreateLandingMr {
            convoy_id: s("c1"),
            rig_id: s("r1"),
            feature_branch: s("convoy/c1/head"),
            target_branch: s("main"),
        },
    );
    let mr = t.beads_where("b.type = 'merge_request'").pop().unwrap();
    assert_eq!(mr.created_by.as_deref(), Some("system"));
    assert_eq!(mr.title, "Review: convoy/c1/head");
    assert!(t.has_dep(&mr.bead_id, "c1", DependencyType::Tracks));
    let review = t.review(&mr.bead_id);
    assert_eq!(
        (review.branch.as_str(), review.target_branch.as_str()),
        ("convoy/c1/head", "main")
    );
}

#[test]
fn close_sibling_mrs_closes_the_others_only() {
    let t = TownBuilder::new()
        .rig("r1")
        .bead(
            BeadSpec::issue("src")
                .rig("r1")
                .status(BeadStatus::InReview),
        )
        .bead(BeadSpec::mr("keep", "src", "a").rig("r1"))
        .bead(
            BeadSpec::mr("sib", "src", "b")
                .rig("r1")
                .status(BeadStatus::InProgress),
        )
        .bead(
            BeadSpec::mr("gone", "src", "c")
                .rig("r1")
                .status(BeadStatus::Failed),
        )
        .build();
    mutate(
        &t,
        Action::CloseSiblingMrs {
            source_bead_id: s("src"),
            exclude_mr_id: s("keep"),
        },
    );
    assert_eq!(t.bead("keep").status, BeadStatus::Open);
    assert_eq!(t.bead("sib").status, BeadStatus::Closed);
    assert_eq!(t.bead("gone").status, BeadStatus::Failed);
}

#[test]
fn set_review_pr_url_stores_https_urls_only() {
    let t = TownBuilder::new()
        .rig("r1")
        .bead(BeadSpec::issue("src").rig("r1"))
        .bead(BeadSpec::mr("m1", "src", "a").rig("r1"))
        .build();
    mutate(
        &t,
        Action::SetReviewPrUrl {
            bead_id: s("m1"),
            pr_url: s(PR),
        },
    );
    assert_eq!(t.review("m1").pr_url.as_deref(), Some(PR));
    assert_eq!(t.bead("m1").meta_str("pr_url"), Some(PR));

    let before = t.snapshot();
    let refused = apply_one(
        &t,
        &Action::SetReviewPrUrl {
            bead_id: s("m1"),
            pr_url: s("http://github.com/o/r1/pull/8"),
        },
    );
    assert!(
        matches!(refused, Err(DomainError::Invalid { .. })),
        "{refused:?}"
    );
    assert_eq!(t.snapshot(), before);
}

#[test]
fn transition_agent_keeps_stalled_at_while_stalled() {
    let t = town();
    let to = |status| Action::TransitionAgent {
        agent_id: s("p1"),
        from: None,
        to: status,
        reason: s("GUPP force stop — no SDK activity for 2h"),
    };
    t.advance(MINUTE);
    mutate(&t, to(AgentStatus::Stalled));
    let stalled = t.agent("p1");
    assert_eq!(stalled.status, AgentStatus::Stalled);
    assert_eq!(stalled.stalled_at, Some(iso(T0 + MINUTE)));
    t.advance(MINUTE);
    mutate(&t, to(AgentStatus::Stalled));
    assert_eq!(t.agent("p1").stalled_at, Some(iso(T0 + MINUTE)));
    mutate(&t, to(AgentStatus::Idle));
    let idle = t.agent("p1");
    assert_eq!((idle.status, idle.stalled_at), (AgentStatus::Idle, None));
    assert_eq!(idle.current_hook_bead_id.as_deref(), Some("b2"));
}

#[test]
fn hook_agent_hooks_assigns_and_refuses_a_finished_bead() {
    let t = TownBuilder::new()
        .rig("r1")
        .bead(BeadSpec::issue("src").rig("r1"))
        .bead(BeadSpec::mr("m1", "src", "a").rig("r1"))
        .bead(
            BeadSpec::mr("m2", "src", "b")
                .rig("r1")
                .status(BeadStatus::Closed),
        )
        .agent(AgentSpec::refinery("ref").rig("r1"))
        .build();
    t.advance(MINUTE);
    mutate(
        &t,
        Action::HookAgent {
            agent_id: s("ref"),
            bead_id: s("m1"),
        },
    );
    let r = t.agent("ref");
    assert_eq!(r.current_hook_bead_id.as_deref(), Some("m1"));
    assert_eq!(r.last_activity_at, Some(iso(T0 + MINUTE)));
    assert_eq!(t.bead("m1").assignee_agent_bead_id.as_deref(), Some("ref"));
    assert_eq!(t.history_types("m1"), ["hooked"]);

    let refused = apply_one(
        &t,
        &Action::HookAgent {
            agent_id: s("ref"),
            bead_id: s("m2"),
        },
    );
    assert!(
        matches!(refused, Err(DomainError::Conflict(_))),
        "{refused:?}"
    );
}

#[test]
fn unhook_agent_empties_the_hook_and_the_checkpoint() {
    let t = town();
    mutate(
        &t,
        Action::UnhookAgent {
            agent_id: s("p1"),
            reason: s("max dispatch attempts"),
        },
    );
    let p1 = t.agent("p1");
    assert_eq!(p1.current_hook_bead_id, None);
    assert_eq!(p1.status, AgentStatus::Idle);
    assert_eq!(p1.checkpoint, None);
    assert_eq!(t.bead("b2").assignee_agent_bead_id.as_deref(), Some("p1"));
}

#[test]
fn clear_agent_checkpoint_keeps_the_hook() {
    let t = town();
    mutate(&t, Action::ClearAgentCheckpoint { agent_id: s("p1") });
    let p1 = t.agent("p1");
    assert_eq!(p1.checkpoint, None);
    assert_eq!(p1.current_hook_bead_id.as_deref(), Some("b2"));
    assert_eq!(p1.status, AgentStatus::Working);
}

#[test]
fn delete_agent_reopens_its_live_work_and_removes_it() {
    let t = TownBuilder::new()
        .rig("r1")
        .bead(
            BeadSpec::issue("done")
                .rig("r1")
                .status(BeadStatus::Closed)
                .assignee("p1"),
        )
        .bead(
            BeadSpec::issue("live")
                .rig("r1")
                .status(BeadStatus::InProgress)
                .assignee("p1"),
        )
        .agent(AgentSpec::polecat("p1").rig("r1"))
        .build();
    mutate(
        &t,
        Action::DeleteAgent {
            agent_id: s("p1"),
            reason: s("GC: idle > 24h"),
        },
    );
    assert!(!t.has_bead("p1"));
    assert_eq!(t.count("agent_metadata"), 0);
    let live = t.bead("live");
    assert_eq!(
        (live.status, live.assignee_agent_bead_id),
        (BeadStatus::Open, None)
    );
    let done = t.bead("done");
    assert_eq!(
        (done.status, done.assignee_agent_bead_id),
        (BeadStatus::Closed, None)
    );

    let missing = apply_one(
        &t,
        &Action::DeleteAgent {
            agent_id: s("nobody"),
            reason: s("GC: idle > 24h"),
        },
    );
    assert!(
        matches!(missing, Err(DomainError::NotFound { .. })),
        "{missing:?}"
    );
}

#[test]
fn update_convoy_progress_stores_the_count() {
    let t = TownBuilder::new().bead(BeadSpec::convoy("c1", 3)).build();
    mutate(
        &t,
        Action::UpdateConvoyProgress {
            convoy_id: s("c1"),
            closed_beads: 2,
        },
    );
    assert_eq!(t.convoy("c1").closed_beads, 2);
    assert_eq!(t.bead("c1").status, BeadStatus::Open);
}

#[test]
fn set_convoy_ready_to_land_flags_the_convoy_bead() {
    let t = TownBuilder::new().bead(BeadSpec::convoy("c1", 1)).build();
    t.advance(MINUTE);
    mutate(&t, Action::SetConvoyReadyToLand { convoy_id: s("c1") });
    let c1 = t.bead("c1");
    assert_eq!(c1.metadata["ready_to_land"], json!(1));
    assert_eq!(c1.updated_at, iso(T0 + MINUTE));
    assert_eq!(c1.status, BeadStatus::Open);
}

#[test]
fn close_convoy_closes_and_lands_it() {
    let t = TownBuilder::new().bead(BeadSpec::convoy("c1", 1)).build();
    t.advance(MINUTE);
    mutate(&t, Action::CloseConvoy { convoy_id: s("c1") });
    assert_eq!(t.bead("c1").status, BeadStatus::Closed);
    assert_eq!(t.bead("c1").closed_at, Some(iso(T0 + MINUTE)));
    assert_eq!(t.convoy("c1").landed_at, Some(iso(T0 + MINUTE)));
}

#[test]
fn create_triage_request_files_one_per_agent_and_type() {
    let t = town();
    let triage = Action::CreateTriageRequest {
        agent_id: s("p1"),
        triage_type: TriageType::StuckAgent,
        reason: s("GUPP force stop"),
    };
    mutate(&t, triage.clone());
    let filed = t.beads_where("b.labels LIKE '%\"gt:triage-request\"%'");
    assert_eq!(filed.len(), 1);
    let request = &filed[0];
    assert_eq!(request.title, "Triage: GUPP force stop");
    assert_eq!(request.assignee_agent_bead_id.as_deref(), Some("p1"));
    assert_eq!(request.meta_str("triage_type"), Some("stuck_agent"));
    assert_eq!(request.meta_str("hooked_bead_id"), Some("b2"));
    mutate(&t, triage);
    assert_eq!(
        t.beads_where("b.labels LIKE '%\"gt:triage-request\"%'")
            .len(),
        1,
        "de-duplicated"
    );
}

// ---- side effects: synchronous part and effect -----------------------------------------------

#[test]
fn dispatch_agent_without_an_agent_hooks_a_new_polecat_and_yields_the_start() {
    let t = TownBuilder::new()
        .rig("r1")
        .bead(BeadSpec::issue("b1").rig("r1"))
        .build();
    t.advance(MINUTE);
    let effect = apply_one(
        &t,
        &Action::DispatchAgent {
            agent_id: None,
            bead_id: s("b1"),
            rig_id: s("r1"),
        },
    )
    .unwrap();
    let agents = t.beads_where("b.type = 'agent'");
    assert_eq!(agents.len(), 1);
    let polecat = t.agent(&agents[0].bead_id);
    assert_eq!(polecat.role, AgentRole::Polecat);
    assert_eq!(polecat.name, "Toast");
    assert_eq!(polecat.status, AgentStatus::Working);
    assert_eq!(polecat.current_hook_bead_id.as_deref(), Some("b1"));
    let b1 = t.bead("b1");
    assert_eq!(b1.status, BeadStatus::InProgress);
    assert_eq!(b1.assignee_agent_bead_id, Some(polecat.agent_id.clone()));
    // The attempt counters move only when the start is sent.
    assert_eq!(b1.dispatch_attempts, 0);
    assert_eq!(b1.last_dispatch_attempt_at, None);
    assert_eq!(
        effect,
        Some(Effect::Dispatch {
            agent_id: polecat.agent_id,
            bead_id: s("b1"),
            rig_id: s("r1"),
        })
    );
}

#[test]
fn dispatch_agent_for_a_merge_request_makes_the_rig_refinery() {
    let t = TownBuilder::new()
        .rig("r1")
        .bead(
            BeadSpec::issue("src")
                .rig("r1")
                .status(BeadStatus::InReview),
        )
        .bead(BeadSpec::mr("m1", "src", "a").rig("r1"))
        .build();
    let effect = apply_one(
        &t,
        &Action::DispatchAgent {
            agent_id: None,
            bead_id: s("m1"),
            rig_id: s("r1"),
        },
    )
    .unwrap();
    let Some(Effect::Dispatch { agent_id, .. }) = effect else {
        panic!("{effect:?}")
    };
    let refinery = t.agent(&agent_id);
    assert_eq!(refinery.role, AgentRole::Refinery);
    assert_eq!(refinery.current_hook_bead_id.as_deref(), Some("m1"));
    assert_eq!(t.bead("m1").status, BeadStatus::InProgress);
}

#[test]
fn a_batch_of_dispatches_registers_its_polecats_together_and_hooks_them_oldest_first() {
    let town = || {
        TownBuilder::new()
            .rig("r1")
            .bead(BeadSpec::issue("b1").rig("r1"))
            .bead(BeadSpec::issue("b2").rig("r1"))
            .bead(BeadSpec::issue("b3").rig("r1"))
            .bead(BeadSpec::issue("b4").rig("r1").status(BeadStatus::InReview))
            .bead(BeadSpec::mr("m1", "b4", "gt/x/b4").rig("r1"))
            // A free polecat of the rig: the oldest, taken first.
            .agent(AgentSpec::polecat("p0").name("Veteran").rig("r1"))
            .build()
    };
    let dispatch = |bead: &str| Action::DispatchAgent {
        agent_id: None,
        bead_id: s(bead),
        rig_id: s("r1"),
    };
    let batch = [
        dispatch("b1"),
        dispatch("m1"),
        dispatch("b2"),
        dispatch("b3"),
    ];
    // What each dispatch got, by bead: the agent's name and role.
    let hooked = |t: &Town, effects: &[Effect]| -> Vec<(String, String, AgentRole)> {
        effects
            .iter()
            .map(|e| match e {
                Effect::Dispatch {
                    agent_id, bead_id, ..
                } => {
                    let a = t.agent(agent_id);
                    (bead_id.clone(), a.name, a.role)
                }
                other => panic!("{other:?}"),
            })
            .collect()
    };

    let together = town();
    let before = together.db.statements();
    let applied = apply_all(&together.ctx(), &batch);
    let statements_together = together.db.statements() - before;
    assert_eq!(applied.failed, 0);
    assert_eq!(
        hooked(&together, &applied.effects),
        [
            (s("b1"), s("Veteran"), AgentRole::Polecat),
            (s("m1"), s("refinery"), AgentRole::Refinery),
            (s("b2"), s("Toast"), AgentRole::Polecat),
            (s("b3"), s("Maple"), AgentRole::Polecat),
        ]
    );
    // Exactly the two polecats the rig was short of were registered.
    let agents = together.beads_where("b.type = 'agent'").len();
    assert_eq!(agents, 4, "Veteran, Toast, Maple and the refinery");

    // The same dispatches applied one by one register each its own: the same outcome, in more
    // statements.
    let alone = town();
    let before = alone.db.statements();
    let effects: Vec<Effect> = batch
        .iter()
        .filter_map(|a| apply_one(&alone, a).unwrap())
        .collect();
    let statements_alone = alone.db.statements() - before;
    assert_eq!(
        hooked(&alone, &effects),
        hooked(&together, &applied.effects)
    );
    assert!(
        statements_together < statements_alone,
        "{statements_together} statements together, {statements_alone} one by one"
    );
}

/// Applies `actions` with `apply_all` and one at a time on two copies of `town`: the same rows
/// (ids, names, history and its order) and the same effects. Answers the statements each took.
/// The towns have free polecats enough for every dispatch, so `apply_all` registers none up
/// front (one at a time would register them one by one, with other ids).
fn same_as_one_at_a_time(town: impl Fn() -> Town, actions: &[Action]) -> (u64, u64) {
    let together = town();
    let before = together.db.statements();
    let applied = apply_all(&together.ctx(), actions);
    let statements_together = together.db.statements() - before;
    let alone = town();
    let before = alone.db.statements();
    let results: Vec<_> = actions.iter().map(|a| apply_one(&alone, a)).collect();
    let statements_alone = alone.db.statements() - before;
    let failed = results.iter().filter(|r| r.is_err()).count() as u64;
    let effects: Vec<Effect> = results
        .into_iter()
        .filter_map(Result::ok)
        .flatten()
        .collect();
    assert_eq!(applied.failed, failed);
    assert_eq!(applied.effects, effects);
    assert_eq!(together.snapshot(), alone.snapshot());
    (statements_together, statements_alone)
}

fn new_polecat_for(bead: &str, rig: &str) -> Action {
    Action::DispatchAgent {
        agent_id: None,
        bead_id: s(bead),
        rig_id: s(rig),
    }
}

#[test]
fn a_run_of_plain_dispatches_is_applied_together_as_one_at_a_time_would() {
    let town = || {
        let mut b = TownBuilder::new()
            .rig("r1")
            .rig("r2")
            // Free polecats, taken oldest first within each rig.
            .agent(AgentSpec::polecat("p1").rig("r1"))
            .agent(AgentSpec::polecat("q1").rig("r2"))
            .agent(AgentSpec::polecat("p2").rig("r1"))
            .agent(AgentSpec::polecat("q2").rig("r2"))
            .agent(AgentSpec::polecat("p3").rig("r1"))
            // Busy ones are passed over.
            .agent(AgentSpec::polecat("busy").rig("r1").hook("x"))
            .bead(BeadSpec::issue("x").rig("r1").status(BeadStatus::InReview));
        for (bead, rig) in [
            ("b1", "r1"),
            ("b2", "r2"),
            ("b3", "r1"),
            ("b4", "r2"),
            ("b5", "r1"),
        ] {
            b = b.bead(BeadSpec::issue(bead).rig(rig));
        }
        b.build()
    };
    let actions = [
        new_polecat_for("b1", "r1"),
        new_polecat_for("b2", "r2"),
        // Another action splits the dispatches into two runs, applied in order around it.
        Action::TransitionBead {
            bead_id: s("x"),
            from: Some(BeadStatus::InReview),
            to: BeadStatus::Failed,
            reason: s("agent lost"),
            actor: s("system"),
        },
        new_polecat_for("b3", "r1"),
        new_polecat_for("b4", "r2"),
        new_polecat_for("b5", "r1"),
    ];
    let (together, alone) = same_as_one_at_a_time(town, &actions);
    assert!(
        together < alone,
        "{together} statements together, {alone} one at a time"
    );
}

#[test]
fn a_run_with_a_dispatch_that_is_not_plain_is_applied_one_at_a_time() {
    // A bead held by an idle polecat (unhooked first), one already in progress, the same bead
    // twice, a bead that does not exist: one at a time handles each.
    let town = || {
        TownBuilder::new()
            .rig("r1")
            .agent(AgentSpec::polecat("p1").rig("r1"))
            .agent(AgentSpec::polecat("p2").rig("r1"))
            .bead(BeadSpec::issue("b1").rig("r1"))
            .bead(BeadSpec::issue("b2").rig("r1"))
            .bead(
                BeadSpec::issue("b3")
                    .rig("r1")
                    .status(BeadStatus::InProgress),
            )
            .agent(AgentSpec::polecat("holder").rig("r1").hook("b2"))
            .build()
    };
    for run in [
        [new_polecat_for("b1", "r1"), new_polecat_for("b2", "r1")],
        [new_polecat_for("b1", "r1"), new_polecat_for("b3", "r1")],
        [new_polecat_for("b1", "r1"), new_polecat_for("b1", "r1")],
        [new_polecat_for("b1", "r1"), new_polecat_for("gone", "r1")],
    ] {
        same_as_one_at_a_time(town, &run);
    }
}

#[test]
fn dispatch_agent_with_an_agent_uses_its_rig_when_none_is_given() {
    let t = TownBuilder::new()
        .rig("r1")
        .bead(BeadSpec::issue("b1").assignee("p1"))
        .agent(AgentSpec::polecat("p1").rig("r1").hook("b1"))
        .build();
    let effect = apply_one(
        &t,
        &Action::DispatchAgent {
            agent_id: Some(s("p1")),
            bead_id: s("b1"),
            rig_id: s(""),
        },
    )
    .unwrap();
    assert_eq!(
        effect,
        Some(Effect::Dispatch {
            agent_id: s("p1"),
            bead_id: s("b1"),
            rig_id: s("r1"),
        })
    );
    assert_eq!(t.agent("p1").status, AgentStatus::Working);
    assert_eq!(t.bead("b1").status, BeadStatus::InProgress);
}

#[test]
fn dispatch_agent_for_an_agent_no_longer_hooked_to_the_bead_is_refused() {
    // R2 reopened a stuck review and unhooked its refinery; R6, computed from the same
    // snapshot, still asks to re-dispatch that refinery on the review.
    let t = TownBuilder::new()
        .rig("r1")
        .bead(
            BeadSpec::issue("src")
                .rig("r1")
                .status(BeadStatus::InReview),
        )
        .bead(
            BeadSpec::mr("m1", "src", "a")
                .rig("r1")
                .status(BeadStatus::InProgress)
                .assignee("ref"),
        )
        .agent(AgentSpec::refinery("ref").rig("r1").hook("m1"))
        .build();
    let applied = apply_all(
        &t.ctx(),
        &[
            Action::TransitionBead {
                bead_id: s("m1"),
                from: Some(BeadStatus::InProgress),
                to: BeadStatus::Open,
                reason: s("stuck review, no working agent"),
                actor: s("system"),
            },
            Action::UnhookAgent {
                agent_id: s("ref"),
                reason: s("stuck review cleanup"),
            },
            Action::DispatchAgent {
                agent_id: Some(s("ref")),
                bead_id: s("m1"),
                rig_id: s("r1"),
            },
        ],
    );
    assert_eq!(applied.failed, 1);
    assert!(applied.effects.is_empty(), "no start is sent");
    let r = t.agent("ref");
    assert_eq!(
        (r.status, r.current_hook_bead_id),
        (AgentStatus::Idle, None)
    );
    assert_eq!(t.bead("m1").status, BeadStatus::Open);
}

#[test]
fn stop_agent_writes_nothing_and_yields_the_stop() {
    let t = town();
    let before = t.snapshot();
    let effect = apply_one(
        &t,
        &Action::StopAgent {
            agent_id: s("p1"),
            reason: s("exceeded 2h GUPP limit"),
        },
    )
    .unwrap();
    assert_eq!(
        effect,
        Some(Effect::Stop {
            agent_id: s("p1"),
            reason: s("exceeded 2h GUPP limit"),
        })
    );
    assert_eq!(t.snapshot(), before);
}

fn pr_town() -> Town {
    TownBuilder::new()
        .rig("r1")
        .bead(
            BeadSpec::issue("src")
                .rig("r1")
                .status(BeadStatus::InReview),
        )
        .bead(
            BeadSpec::mr("m1", "src", "a")
                .rig("r1")
                .pr_url(PR)
                .status(BeadStatus::InProgress)
                .meta("auto_merge_pending", json!(1)),
        )
        .build()
}

#[test]
fn poll_pr_stamps_the_poll_and_yields_it() {
    let t = pr_town();
    t.advance(MINUTE);
    let effect = apply_one(
        &t,
        &Action::PollPr {
            bead_id: s("m1"),
            pr_url: s(PR),
        },
    )
    .unwrap();
    assert_eq!(
        effect,
        Some(Effect::PollPr {
            bead_id: s("m1"),
            pr_url: s(PR),
        })
    );
    let m1 = t.bead("m1");
    assert_eq!(m1.metadata["last_poll_at"], json!(iso(T0 + MINUTE)));
    assert_eq!(m1.updated_at, iso(T0 + MINUTE));
    assert_eq!(m1.status, BeadStatus::InProgress);
}

#[test]
fn merge_pr_of_the_rig_repository_writes_nothing_and_yields_the_merge() {
    let t = pr_town();
    let before = t.snapshot();
    let effect = apply_one(
        &t,
        &Action::MergePr {
            bead_id: s("m1"),
            pr_url: s(PR),
        },
    )
    .unwrap();
    assert_eq!(
        effect,
        Some(Effect::MergePr {
            bead_id: s("m1"),
            pr_url: s(PR),
        })
    );
    assert_eq!(t.snapshot(), before);
}

#[test]
fn merge_pr_of_another_repository_is_refused_and_unflagged() {
    let t = pr_town();
    let effect = apply_one(
        &t,
        &Action::MergePr {
            bead_id: s("m1"),
            pr_url: s("https://github.com/someone/else/pull/7"),
        },
    )
    .unwrap();
    assert_eq!(effect, None);
    assert!(!t.bead("m1").metadata.contains_key("auto_merge_pending"));
}

#[test]
fn send_nudge_records_an_urgent_immediate_nudge_and_yields_its_delivery() {
    let t = town();
    let effect = apply_one(
        &t,
        &Action::SendNudge {
            agent_id: s("p1"),
            message: s("check your progress"),
            tier: NudgeTier::Escalate,
        },
    )
    .unwrap();
    let row =
        t.db.one(
            "SELECT nudge_id, agent_bead_id, mode, priority, source, delivered_at, expires_at
             FROM agent_nudges",
            &[],
        )
        .unwrap()
        .to_json();
    let nudge_id = row["nudge_id"].as_str().unwrap().to_owned();
    assert_eq!(
        row,
        json!({"nudge_id": nudge_id, "agent_bead_id": "p1", "mode": "immediate",
               "priority": "urgent", "source": "reconciler:escalate", "delivered_at": null,
               "expires_at": null})
    );
    assert_eq!(
        effect,
        Some(Effect::Nudge {
            agent_id: s("p1"),
            nudge_id,
            message: s("check your progress"),
        })
    );
}

fn breaker_notified_at(t: &Town) -> Option<String> {
    t.db.one(
        "SELECT breaker_notified_at FROM town WHERE singleton = 1",
        &[],
    )
    .unwrap()
    .opt_text("breaker_notified_at")
    .unwrap()
}

#[test]
fn notify_mayor_yields_the_message_and_records_nothing_until_the_mayor_heard_it() {
    let t = town();
    let notify = |notice| Action::NotifyMayor {
        message: s("Dispatch circuit breaker is OPEN"),
        notice,
    };
    t.advance(MINUTE);
    for notice in [MayorNotice::BreakerOpened, MayorNotice::BreakerClosed] {
        let effect = apply_one(&t, &notify(notice)).unwrap();
        assert_eq!(
            effect,
            Some(Effect::NotifyMayor {
                message: s("Dispatch circuit breaker is OPEN"),
                notice,
            })
        );
        // Recorded by the side effect's settlement once the container accepted it
        // (tests/effects_settle.rs), so an unheard notice is sent again.
        assert_eq!(breaker_notified_at(&t), None);
    }
}

#[test]
fn emit_event_writes_nothing_when_applied_and_is_handed_to_the_tick() {
    let t = town();
    let mut data = Map::new();
    data.insert("beadId".into(), json!("b1"));
    let emit = Action::EmitEvent {
        event_name: s("bead.status_changed"),
        data: data.clone(),
    };
    let before = t.snapshot();
    assert_eq!(apply_one(&t, &emit).unwrap(), None);
    let applied = apply_all(&t.ctx(), &[emit]);
    assert_eq!(t.snapshot(), before);
    assert_eq!(applied.analytics, [(s("bead.status_changed"), data)]);
    assert!(applied.effects.is_empty());
    assert_eq!(applied.failed, 0);
}

// ---- apply_all ------------------------------------------------------------------------------

#[test]
fn a_failing_action_is_rolled_back_and_the_others_still_apply_in_order() {
    let t = TownBuilder::new()
        .rig("r1")
        .bead(BeadSpec::issue("b1").rig("r1"))
        .bead(BeadSpec::issue("dead").rig("r1").status(BeadStatus::Failed))
        .bead(
            BeadSpec::issue("src")
                .rig("r1")
                .status(BeadStatus::InReview),
        )
        .bead(BeadSpec::mr("m1", "src", "a").rig("r1"))
        .agent(AgentSpec::refinery("ref").rig("r1"))
        .build();
    let actions = [
        Action::TransitionBead {
            bead_id: s("m1"),
            from: Some(BeadStatus::Open),
            to: BeadStatus::InProgress,
            reason: s("popped for review"),
            actor: s("system"),
        },
        // Registers a polecat, then fails to hook it to a failed bead: all of it rolls back.
        Action::DispatchAgent {
            agent_id: None,
            bead_id: s("dead"),
            rig_id: s("r1"),
        },
        // Later actions see earlier mutations: the hook is in place for the dispatch.
        Action::HookAgent {
            agent_id: s("ref"),
            bead_id: s("m1"),
        },
        Action::DispatchAgent {
            agent_id: Some(s("ref")),
            bead_id: s("m1"),
            rig_id: s("r1"),
        },
        Action::ClearBeadAssignee {
            bead_id: s("missing"),
        },
        Action::UpdateConvoyProgress {
            convoy_id: s("not-a-convoy"),
            closed_beads: 1,
        },
        Action::StopAgent {
            agent_id: s("ref"),
            reason: s("r"),
        },
    ];
    let applied = apply_all(&t.ctx(), &actions);
    assert_eq!(applied.failed, 3);
    assert_eq!(
        applied.effects,
        [
            Effect::Dispatch {
                agent_id: s("ref"),
                bead_id: s("m1"),
                rig_id: s("r1"),
            },
            Effect::Stop {
                agent_id: s("ref"),
                reason: s("r"),
            },
        ]
    );
    assert_eq!(t.count("agent_metadata"), 1, "the polecat was rolled back");
    assert_eq!(t.history_types("dead"), Vec::<String>::new());
    assert_eq!(t.bead("dead").assignee_agent_bead_id, None);
    assert_eq!(t.bead("m1").status, BeadStatus::InProgress);
    let r = t.agent("ref");
    assert_eq!(r.current_hook_bead_id.as_deref(), Some("m1"));
    assert_eq!(r.status, AgentStatus::Working);
}
