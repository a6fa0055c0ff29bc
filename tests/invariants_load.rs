//! The snapshot the tick checks its invariants on after the side effects
//! (`reconciler::load::for_invariants`) reads only the beads and agents the invariants look
//! at, in four statements, and finds exactly the violations the full snapshot does.

use gastown_town::reconciler::invariants::check;
use gastown_town::reconciler::load::{self, for_invariants};
use gastown_town::testing::town::*;
use gastown_town::vocabulary::model::*;

/// A town breaking each checked invariant once, among work that breaks none.
fn town_breaking_everything() -> Town {
    let mut town = TownBuilder::new()
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
        .bead(BeadSpec::convoy("c2", 3))
        // #3: two direct reviews in progress on r1 (their issues are in review, tracked).
        .bead(BeadSpec::issue("i1").rig("r1").status(BeadStatus::InReview))
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
