//! Whether a town has work in flight (`store::activity::has_work_in_flight`): each of its five
//! conditions alone makes a town active, and a town with only finished or waiting work is idle.
//! (Open triage requests count only while the triage loop can act on them: tests/housekeeping.rs.)

use gastown_town::params;
use gastown_town::sql::Sql;
use gastown_town::store::activity::has_work_in_flight;
use gastown_town::store::events::{self, Subject};
use gastown_town::testing::town::*;
use gastown_town::vocabulary::events::{EventKind, NoPayload};
use gastown_town::vocabulary::model::*;

/// Work that keeps nobody busy: an idle polecat with nothing on its hook, a closed merge
/// request, an open issue that is no triage request, a closed triage request and an event
/// already processed.
fn quiet() -> TownBuilder {
    TownBuilder::new()
        .rig("r")
        .agent(AgentSpec::polecat("idle").rig("r"))
        .bead(BeadSpec::issue("done").rig("r").status(BeadStatus::Closed))
        .bead(
            BeadSpec::mr("mr-done", "done", "gt/a/done")
                .rig("r")
                .status(BeadStatus::Closed),
        )
        .bead(BeadSpec::issue("waiting").rig("r"))
        .bead(
            BeadSpec::issue("answered")
                .label(labels::TRIAGE_REQUEST)
                .status(BeadStatus::Closed),
        )
}

fn processed_event(town: &Town) {
    let kind = EventKind::NudgeTimeout(NoPayload {});
    events::insert(&town.db, "old", &kind, &Subject::agent("idle"), T0).unwrap();
    town.db
        .execute(
            "UPDATE town_events SET processed_at = ? WHERE event_id = 'old'",
            &params!["2026-01-01T00:00:00.000Z"],
        )
        .unwrap();
}

#[test]
fn a_town_with_only_finished_or_waiting_work_is_idle() {
    let town = quiet().build();
    processed_event(&town);
    assert!(!has_work_in_flight(&town.db).unwrap());
}

#[test]
fn each_condition_alone_makes_a_town_active() {
    let cases: [(&str, TownBuilder); 5] = [
        (
            "a working agent",
            quiet().agent(
                AgentSpec::polecat("w")
                    .rig("r")
                    .status(AgentStatus::Working)
                    .hook("waiting"),
            ),
        ),
        (
            "a stalled agent",
            quiet().agent(
                AgentSpec::polecat("s")
                    .rig("r")
                    .status(AgentStatus::Stalled)
                    .hook("waiting"),
            ),
        ),
        (
            "an idle agent with a hook",
            quiet().agent(AgentSpec::polecat("h").rig("r").hook("waiting")),
        ),
        (
            "an open merge request",
            quiet().bead(BeadSpec::mr("mr-open", "waiting", "gt/b/waiting").rig("r")),
        ),
        (
            "a merge request in progress",
            quiet().bead(
                BeadSpec::mr("mr-busy", "waiting", "gt/c/waiting")
                    .rig("r")
                    .status(BeadStatus::InProgress),
            ),
        ),
    ];
    for (what, town) in cases {
        let town = town.build();
        processed_event(&town);
        assert!(has_work_in_flight(&town.db).unwrap(), "{what}");
    }
    let town = quiet().build();
    let kind = EventKind::NudgeTimeout(NoPayload {});
    events::insert(&town.db, "new", &kind, &Subject::agent("idle"), T0).unwrap();
    assert!(has_work_in_flight(&town.db).unwrap(), "a pending event");
}
