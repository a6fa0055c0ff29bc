//! The snapshot the tick checks its invariants on after the side effects
//! (`reconciler::load::for_invariants`) reads only the beads and agents the invariants look
//! at, in four statements, and finds exactly the violations the full snapshot does; a tick
//! that wrote nothing since its snapshot checks that one and reads nothing anew.

mod recording;

use gastown_town::reconciler::invariants::check;
use gastown_town::reconciler::load::{self, for_invariants};
use gastown_town::testing::http::{block_on, remotes, FakeHttp, Reply};
use gastown_town::testing::ports::{ManualClock, RecordingSink};
use gastown_town::testing::town::*;
use gastown_town::tick::phases::Unwatched;
use gastown_town::tick::{self, TickEnv, TickOptions, TickReport};
use gastown_town::vocabulary::model::*;
use recording::Recording;
use serde_json::json;

/// Two direct reviews in progress on r1, their issues in review and tracked (#3).
fn two_direct_reviews(town: TownBuilder) -> TownBuilder {
    town.bead(BeadSpec::issue("i1").rig("r1").status(BeadStatus::InReview))
        .bead(BeadSpec::issue("i2").rig("r1").status(BeadStatus::InReview))
        .bead(
            BeadSpec::mr("m1", "i1", "gt/a/i1")
                .rig("r1")
                .status(BeadStatus::InProgress),
        )
        .bead(
            BeadSpec::mr("m2", "i2", "gt/b/i2")
                .rig("r1")
                .status(BeadStatus::InProgress),
        )
}

/// A town breaking each checked invariant once, among work that breaks none.
fn town_breaking_everything() -> Town {
    let town = TownBuilder::new()
        .rig("r1")
        .rig("r2")
        // #7: a working polecat with nothing on its hook.
        .agent(
            AgentSpec::polecat("w1")
                .rig("r1")
                .status(AgentStatus::Working),
        )
        // #5: a failed convoy.
        .bead(BeadSpec::convoy("c1", 2).status(BeadStatus::Failed))
        .bead(BeadSpec::convoy("c2", 3));
    let mut town = two_direct_reviews(town)
        // A PR review beside them does not count.
        .bead(BeadSpec::issue("i3").rig("r1").status(BeadStatus::InReview))
        .bead(
            BeadSpec::mr("m3", "i3", "gt/c/i3")
                .rig("r1")
                .pr_url("https://github.com/o/r/pull/3")
                .status(BeadStatus::InProgress),
        )
        // #6: two agents hooked to one bead.
        .bead(
            BeadSpec::issue("h1")
                .rig("r2")
                .status(BeadStatus::InProgress),
        )
        .agent(
            AgentSpec::polecat("a1")
                .rig("r2")
                .hook("h1")
                .status(AgentStatus::Working),
        )
        .agent(
            AgentSpec::polecat("a2")
                .rig("r2")
                .hook("h1")
                .status(AgentStatus::Working),
        )
        // An idle polecat with nothing on its hook breaks nothing and is not read.
        .agent(AgentSpec::polecat("idle1").rig("r2"))
        // #4: an issue in review that no open merge request tracks.
        .bead(
            BeadSpec::issue("orphan")
                .rig("r2")
                .status(BeadStatus::InReview),
        );
    for i in 0..30 {
        town = town.bead(BeadSpec::issue(&format!("open{i:02}")).rig("r2"));
    }
    for i in 0..10 {
        town = town.bead(
            BeadSpec::issue(&format!("done{i:02}"))
                .rig("r2")
                .status(BeadStatus::Closed),
        );
    }
    town.build()
}

#[test]
fn the_narrow_load_finds_the_same_violations_from_fewer_beads() {
    let town = town_breaking_everything();
    let full = load::snapshot(&town.db, T0).unwrap();
    let before = town.db.statements();
    let narrow = for_invariants(&town.db).unwrap();
    assert_eq!(town.db.statements() - before, 4);

    let violations = check(&full);
    let mut kinds: Vec<u8> = violations.iter().map(|v| v.invariant).collect();
    kinds.dedup();
    assert_eq!(kinds, [7, 5, 3, 6, 4], "{violations:?}");
    assert_eq!(check(&narrow), violations);
    assert!(
        narrow.beads().len() < full.beads().len() / 2,
        "{} of {} beads",
        narrow.beads().len(),
        full.beads().len()
    );
    let working_or_hooked: Vec<_> = full
        .agents()
        .iter()
        .filter(|a| a.status == AgentStatus::Working || a.current_hook_bead_id.is_some())
        .cloned()
        .collect();
    assert_eq!(narrow.agents(), working_or_hooked);
    assert!(working_or_hooked.len() < full.agents().len());
}

/// One tick of `town` at T0, every remote answering that all runs; whether it read the
/// invariants' beads anew.
fn tick_reading(town: &Town) -> (TickReport, bool) {
    let recorded = Recording::new(&town.db);
    let http = FakeHttp::new();
    http.always("*", "*", Reply::ok(json!({"status": "running"})));
    let env = TickEnv {
        sql: &recorded,
        ids: &town.ids,
        clock: &ManualClock::at(T0),
        sink: &RecordingSink::default(),
        http: &http,
        remotes: &remotes(),
        options: TickOptions::default(),
        watch: &Unwatched,
    };
    let report = block_on(tick::run(&env));
    let reread = recorded
        .into_statements()
        .iter()
        .any(|(text, _)| text.contains("0 AS dispatch_failed"));
    (report, reread)
}

#[test]
fn a_tick_that_wrote_nothing_since_its_snapshot_checks_the_snapshot() {
    // Two direct reviews in progress on one rig (#3): nothing for the reconciler to do.
    let town = two_direct_reviews(TownBuilder::new().rig("r1")).build();
    let expected = check(&load::snapshot(&town.db, T0).unwrap()).len() as u64;
    assert!(expected > 0);
    let (report, reread) = tick_reading(&town);
    assert_eq!(report.metrics.actions_by_type.values().sum::<u64>(), 0);
    assert!(!reread, "nothing was written: the snapshot is the town");
    assert_eq!(report.metrics.invariant_violations, expected);
}

#[test]
fn a_tick_that_wrote_checks_the_town_as_it_is_after() {
    // A working polecat with nothing on its hook (#7): the reconciler sets it idle, so the
    // violation its snapshot holds is gone by the check.
    let town = TownBuilder::new()
        .rig("r1")
        .agent(
            AgentSpec::polecat("w1")
                .rig("r1")
                .status(AgentStatus::Working)
                .active_at(T0),
        )
        .build();
    assert_eq!(check(&load::snapshot(&town.db, T0).unwrap()).len(), 1);
    let (report, reread) = tick_reading(&town);
    assert!(reread, "the tick wrote: the invariants read anew");
    assert_eq!(report.metrics.invariant_violations, 0);
    assert_ne!(town.agent("w1").status, AgentStatus::Working);
}
