//! Agents: the hook and its refusals, heartbeats, get-or-create with the name pool, status,
//! checkpoint and deletion.

use gastown_town::domain::agents::{self, Watermark, NAME_POOL};
use gastown_town::domain::DomainError;
use gastown_town::testing::town::*;
use gastown_town::vocabulary::model::*;
use gastown_town::vocabulary::time::{iso, MINUTE};

fn rig_town() -> TownBuilder {
    TownBuilder::new().rig("rig-abcdefghij")
}

#[test]
fn hooking_assigns_the_bead_readies_the_agent_and_logs_hooked() {
    let town = rig_town()
        .bead(BeadSpec::issue("b1").rig("rig-abcdefghij"))
        .agent(
            AgentSpec::polecat("a1")
                .rig("rig-abcdefghij")
                .status(AgentStatus::Stalled)
                .active_at(T0 - 10 * MINUTE),
        )
        .build();
    town.db
        .execute(
            "UPDATE agent_metadata SET agent_status_message = 'thinking' WHERE bead_id = 'a1'",
            &[],
        )
        .unwrap();
    town.advance(3_000);
    let agent = town.run(|ctx| agents::hook(ctx, "a1", "b1")).unwrap();
    assert_eq!(agent.current_hook_bead_id.as_deref(), Some("b1"));
    assert_eq!(agent.status, AgentStatus::Idle);
    assert_eq!(agent.stalled_at, None);
    assert_eq!(agent.last_activity_at, Some(iso(T0 + 3_000)));
    let message = town
        .db
        .one(
            "SELECT agent_status_message FROM agent_metadata WHERE bead_id = 'a1'",
            &[],
        )
        .unwrap()
        .opt_text("agent_status_message")
        .unwrap();
    assert_eq!(message, None);
    let bead = town.bead("b1");
    assert_eq!(bead.assignee_agent_bead_id.as_deref(), Some("a1"));
    assert_eq!(
        bead.status,
        BeadStatus::Open,
        "dispatch, not hooking, starts the bead"
    );
    assert_eq!(bead.dispatch_attempts, 0);
    assert_eq!(town.history_types("b1"), ["hooked"]);
}

#[test]
fn hooking_refuses_unhookable_types_triage_requests_and_terminal_beads() {
    let mut builder = rig_town().agent(AgentSpec::polecat("a1").rig("rig-abcdefghij"));
    for t in [
        BeadType::Escalation,
        BeadType::Convoy,
        BeadType::Agent,
        BeadType::Message,
    ] {
        builder = builder.bead(BeadSpec::new(t.as_str(), t));
    }
    let town = builder
        .bead(BeadSpec::issue("triage").label(labels::TRIAGE_REQUEST))
        .bead(BeadSpec::issue("done").status(BeadStatus::Closed))
        .build();
    let before = town.snapshot();
    for target in ["escalation", "convoy", "agent", "message", "triage", "done"] {
        let err = town.run(|ctx| agents::hook(ctx, "a1", target)).unwrap_err();
        assert!(matches!(err, DomainError::Conflict(_)), "{target}: {err:?}");
    }
    let err = town
        .run(|ctx| agents::hook(ctx, "a1", "missing"))
        .unwrap_err();
    assert_eq!(err, DomainError::not_found("bead", "missing"));
    let err = town
        .run(|ctx| agents::hook(ctx, "ghost", "done"))
        .unwrap_err();
    assert_eq!(err, DomainError::not_found("agent", "ghost"));
    assert_eq!(town.snapshot(), before);
}

#[test]
fn hooking_is_idempotent_and_refuses_an_agent_hooked_elsewhere() {
    let town = rig_town()
        .bead(BeadSpec::issue("b1"))
        .bead(BeadSpec::issue("b2"))
        .agent(
            AgentSpec::polecat("a1")
                .hook("b1")
                .status(AgentStatus::Working),
        )
        .build();
    let before = town.snapshot();
    let agent = town.run(|ctx| agents::hook(ctx, "a1", "b1")).unwrap();
    assert_eq!(
        agent.status,
        AgentStatus::Working,
        "same bead: nothing changes"
    );
    assert_eq!(town.snapshot(), before);
    let err = town.run(|ctx| agents::hook(ctx, "a1", "b2")).unwrap_err();
    assert!(matches!(err, DomainError::Conflict(m) if m.contains("b1")));
    assert_eq!(town.snapshot(), before);
}

#[test]
fn hooking_a_bead_held_by_another_agent_unhooks_that_agent() {
    let town = rig_town()
        .bead(BeadSpec::issue("b1"))
        .agent(
            AgentSpec::polecat("old")
                .hook("b1")
                .status(AgentStatus::Working)
                .checkpoint("{\"step\":3}"),
        )
        .agent(AgentSpec::polecat("new"))
        .build();
    town.run(|ctx| agents::hook(ctx, "new", "b1")).unwrap();
    let old = town.agent("old");
    assert_eq!(old.current_hook_bead_id, None);
    assert_eq!(old.status, AgentStatus::Idle);
    assert_eq!(old.checkpoint, None);
    assert_eq!(
        town.agent("new").current_hook_bead_id.as_deref(),
        Some("b1")
    );
    assert_eq!(town.history_types("b1"), ["unhooked", "hooked"]);
    assert_eq!(
        town.bead("b1").assignee_agent_bead_id.as_deref(),
        Some("new")
    );
}

#[test]
fn unhooking_idles_clears_the_checkpoint_and_keeps_the_assignee() {
    let town = rig_town()
        .bead(BeadSpec::issue("b1").assignee("a1"))
        .agent(
            AgentSpec::polecat("a1")
                .hook("b1")
                .status(AgentStatus::Working)
                .checkpoint("{}"),
        )
        .build();
    let agent = town.run(|ctx| agents::unhook(ctx, "a1")).unwrap();
    assert_eq!(agent.current_hook_bead_id, None);
    assert_eq!(agent.status, AgentStatus::Idle);
    assert_eq!(agent.checkpoint, None);
    assert_eq!(town.history_types("b1"), ["unhooked"]);
    assert_eq!(
        town.bead("b1").assignee_agent_bead_id.as_deref(),
        Some("a1")
    );
}

#[test]
fn a_heartbeat_is_proof_of_life_and_keeps_the_watermark() {
    let town = rig_town()
        .bead(BeadSpec::issue("b1"))
        .agent(AgentSpec::polecat("a1").hook("b1").dispatch_attempts(3))
        .agent(AgentSpec::mayor("m").status(AgentStatus::Waiting))
        .build();
    town.advance(30_000);
    let w = Watermark {
        last_event_type: Some("tool_call".into()),
        last_event_at: Some(iso(T0 + 29_000)),
        active_tools: Some(vec!["bash".into()]),
    };
    let agent = town.run(|ctx| agents::touch(ctx, "a1", &w)).unwrap();
    assert_eq!(agent.status, AgentStatus::Working);
    assert_eq!(agent.last_activity_at, Some(iso(T0 + 30_000)));
    assert_eq!(agent.dispatch_attempts, 0);
    assert_eq!(agent.last_event_type.as_deref(), Some("tool_call"));
    assert_eq!(agent.active_tools, ["bash"]);
    // A heartbeat without a watermark keeps the stored one.
    let agent = town
        .run(|ctx| agents::touch(ctx, "a1", &Watermark::default()))
        .unwrap();
    assert_eq!(agent.last_event_at, Some(iso(T0 + 29_000)));
    assert_eq!(agent.active_tools, ["bash"]);
    // A future time is clamped to now, and one in another format is stored in the town's.
    for (sent, kept) in [
        ("9999-12-31T23:59:59Z", iso(T0 + 30_000)),
        ("2026-02-31T00:00:00Z", iso(T0 + 30_000)),
        (&*iso(T0 + 20_000).replace(".000Z", "Z"), iso(T0 + 20_000)),
    ] {
        let w = Watermark {
            last_event_at: Some(sent.to_owned()),
            ..Watermark::default()
        };
        let agent = town.run(|ctx| agents::touch(ctx, "a1", &w)).unwrap();
        assert_eq!(agent.last_event_at.as_deref(), Some(&*kept), "{sent}");
        assert_eq!(town.agent("a1").last_event_at, Some(kept));
    }
    // Only idle becomes working.
    let mayor = town
        .run(|ctx| agents::touch(ctx, "m", &Watermark::default()))
        .unwrap();
    assert_eq!(mayor.status, AgentStatus::Waiting);
}

#[test]
fn the_mayor_is_a_town_singleton_named_after_the_town() {
    let town = rig_town().build();
    let mayor = town
        .run(|ctx| agents::get_or_create(ctx, AgentRole::Mayor, None))
        .unwrap();
    assert_eq!(mayor.identity, "mayor-town-012");
    assert_eq!(mayor.rig_id, None);
    let again = town
        .run(|ctx| agents::get_or_create(ctx, AgentRole::Mayor, Some("rig-abcdefghij")))
        .unwrap();
    assert_eq!(again.agent_id, mayor.agent_id);
}

#[test]
fn the_refinery_is_one_per_rig_whatever_its_status() {
    let town = rig_town().rig("rig-two").build();
    let r = town
        .run(|ctx| agents::get_or_create(ctx, AgentRole::Refinery, Some("rig-abcdefghij")))
        .unwrap();
    assert_eq!(r.identity, "refinery-refinery-rig-abcd@town-012");
    assert_eq!(r.status, AgentStatus::Idle);
    town.run(|ctx| agents::set_status(ctx, &r.agent_id, AgentStatus::Working))
        .unwrap();
    let same = town
        .run(|ctx| agents::get_or_create(ctx, AgentRole::Refinery, Some("rig-abcdefghij")))
        .unwrap();
    assert_eq!(same.agent_id, r.agent_id);
    let other = town
        .run(|ctx| agents::get_or_create(ctx, AgentRole::Refinery, Some("rig-two")))
        .unwrap();
    assert_ne!(other.agent_id, r.agent_id);
}

#[test]
fn polecats_are_reused_when_idle_and_unhooked_else_named_from_the_pool() {
    let town = rig_town().bead(BeadSpec::issue("b1")).build();
    let rig = Some("rig-abcdefghij");
    let first = town
        .run(|ctx| agents::get_or_create(ctx, AgentRole::Polecat, rig))
        .unwrap();
    assert_eq!(first.name, "Toast");
    assert_eq!(first.identity, "Toast-polecat-rig-abcd@town-012");
    assert_eq!(first.status, AgentStatus::Idle);
    assert_eq!(first.last_activity_at, None);
    let reused = town
        .run(|ctx| agents::get_or_create(ctx, AgentRole::Polecat, rig))
        .unwrap();
    assert_eq!(reused.agent_id, first.agent_id, "idle and unhooked: reused");
    town.run(|ctx| agents::hook(ctx, &first.agent_id, "b1"))
        .unwrap();
    let second = town
        .run(|ctx| agents::get_or_create(ctx, AgentRole::Polecat, rig))
        .unwrap();
    assert_ne!(second.agent_id, first.agent_id);
    assert_eq!(second.name, "Maple");
}

#[test]
fn the_name_pool_runs_out_into_numbered_polecats() {
    let town = rig_town().build();
    let rig = Some("rig-abcdefghij");
    let mut names = Vec::new();
    for _ in 0..22 {
        let a = town
            .run(|ctx| agents::get_or_create(ctx, AgentRole::Polecat, rig))
            .unwrap();
        // Keep each busy so the next call registers a new one.
        town.run(|ctx| agents::set_status(ctx, &a.agent_id, AgentStatus::Working))
            .unwrap();
        names.push(a.name);
    }
    let expected = [
        "Toast",
        "Maple",
        "Birch",
        "Shadow",
        "Clover",
        "Ember",
        "Sage",
        "Dusk",
        "Flint",
        "Coral",
        "Slate",
        "Reed",
        "Thorn",
        "Pike",
        "Moss",
        "Wren",
        "Blaze",
        "Gale",
        "Drift",
        "Lark",
        "Polecat-21",
        "Polecat-22",
    ];
    assert_eq!(names, expected);
    assert_eq!(NAME_POOL, expected[..20]);
}

#[test]
fn polecats_registered_together_are_named_as_one_by_one_and_skip_taken_identities() {
    // Both towns already hold a busy Polecat-22 on the rig, so that number is skipped.
    let town = || {
        let town = rig_town()
            .agent(
                AgentSpec::polecat("taken")
                    .name("Polecat-22")
                    .rig("rig-abcdefghij")
                    .status(AgentStatus::Working),
            )
            .build();
        town.db
            .execute(
                "UPDATE agent_metadata SET identity = 'Polecat-22-polecat-rig-abcd@town-012'",
                &[],
            )
            .unwrap();
        town
    };
    let rig = "rig-abcdefghij";
    let one_by_one = town();
    let mut expected = Vec::new();
    for _ in 0..23 {
        let a = one_by_one
            .run(|ctx| agents::get_or_create(ctx, AgentRole::Polecat, Some(rig)))
            .unwrap();
        one_by_one
            .run(|ctx| agents::set_status(ctx, &a.agent_id, AgentStatus::Working))
            .unwrap();
        expected.push((a.name, a.identity));
    }
    assert_eq!(expected[20].0, "Polecat-21");
    assert_eq!(expected[21].0, "Polecat-23");

    let together = town();
    let registered = together
        .run(|ctx| agents::register_polecats(ctx, rig, 23))
        .unwrap();
    let names: Vec<_> = registered
        .iter()
        .map(|a| (a.name.clone(), a.identity.clone()))
        .collect();
    assert_eq!(names, expected);
    for a in &registered {
        assert_eq!(&together.agent(&a.agent_id), a, "as stored");
        assert_eq!(a.status, AgentStatus::Idle);
        assert_eq!(a.rig_id.as_deref(), Some(rig));
    }
    // The next registration goes on from where the block ended.
    let next = together
        .run(|ctx| agents::register_polecats(ctx, rig, 1))
        .unwrap();
    assert_eq!(next[0].name, "Polecat-25");
}

#[test]
fn rig_agents_need_a_rig() {
    let town = rig_town().build();
    for role in [AgentRole::Polecat, AgentRole::Refinery] {
        let err = town
            .run(|ctx| agents::get_or_create(ctx, role, None))
            .unwrap_err();
        assert!(matches!(err, DomainError::Invalid { ref field, .. } if field == "rig_id"));
    }
}

#[test]
fn stalled_at_marks_entering_stalled_and_clears_on_leaving() {
    let town = rig_town()
        .agent(AgentSpec::polecat("a1").status(AgentStatus::Working))
        .build();
    let a = town
        .run(|ctx| agents::set_status(ctx, "a1", AgentStatus::Stalled))
        .unwrap();
    assert_eq!(a.stalled_at, Some(iso(T0)));
    town.advance(MINUTE);
    let a = town
        .run(|ctx| agents::set_status(ctx, "a1", AgentStatus::Stalled))
        .unwrap();
    assert_eq!(
        a.stalled_at,
        Some(iso(T0)),
        "staying stalled keeps the time"
    );
    let a = town
        .run(|ctx| agents::set_status(ctx, "a1", AgentStatus::Idle))
        .unwrap();
    assert_eq!(a.stalled_at, None);
}

#[test]
fn clearing_the_checkpoint() {
    let town = rig_town()
        .agent(AgentSpec::polecat("a1").checkpoint("{\"x\":1}"))
        .build();
    let a = town.run(|ctx| agents::clear_checkpoint(ctx, "a1")).unwrap();
    assert_eq!(a.checkpoint, None);
}

#[test]
fn deleting_an_agent_releases_its_beads_then_removes_it_with_its_satellites() {
    let town = rig_town()
        .bead(
            BeadSpec::issue("live")
                .status(BeadStatus::InProgress)
                .assignee("a1"),
        )
        .bead(
            BeadSpec::issue("done")
                .status(BeadStatus::Closed)
                .assignee("a1"),
        )
        .bead(BeadSpec::issue("other").assignee("a2"))
        .agent(
            AgentSpec::polecat("a1")
                .hook("live")
                .status(AgentStatus::Working),
        )
        .agent(AgentSpec::polecat("a2"))
        .build();
    town.db
        .execute(
            "INSERT INTO agent_nudges (nudge_id, agent_bead_id, message, created_at)
             VALUES ('n1', 'a1', 'hi', '2026-01-01T00:00:00.000Z')",
            &[],
        )
        .unwrap();
    town.run(|ctx| agents::delete(ctx, "a1")).unwrap();
    let live = town.bead("live");
    assert_eq!(live.status, BeadStatus::Open);
    assert_eq!(live.assignee_agent_bead_id, None);
    let done = town.bead("done");
    assert_eq!(done.status, BeadStatus::Closed);
    assert_eq!(done.assignee_agent_bead_id, None);
    assert_eq!(
        town.bead("other").assignee_agent_bead_id.as_deref(),
        Some("a2")
    );
    assert!(!town.has_bead("a1"));
    assert_eq!(town.count("agent_metadata"), 1);
    assert_eq!(town.count("agent_nudges"), 0);
    let err = town.run(|ctx| agents::delete(ctx, "a1")).unwrap_err();
    assert!(err.is_not_found());
}

#[test]
fn a_free_polecat_is_found_in_its_rig_even_when_inserted_without_the_rig_copy() {
    // Migration 0007 copies the bead's rig onto agent_metadata for the free-polecat index; an
    // insert that leaves it out (raw SQL, as fixtures do) gets it from the bead.
    let town = rig_town().build();
    town.db
        .batch(
            "INSERT INTO beads (bead_id, type, title, rig_id, created_at, updated_at)
               VALUES ('raw', 'agent', 'raw', 'rig-abcdefghij', '2026-01-01T00:00:00.000Z',
                       '2026-01-01T00:00:00.000Z');
             INSERT INTO agent_metadata (bead_id, role, name, identity)
               VALUES ('raw', 'polecat', 'raw', 'raw@x');",
        )
        .unwrap();
    let copied = town
        .db
        .one(
            "SELECT rig_id FROM agent_metadata WHERE bead_id = 'raw'",
            &[],
        )
        .unwrap()
        .opt_text("rig_id")
        .unwrap();
    assert_eq!(copied.as_deref(), Some("rig-abcdefghij"));
    let found = town
        .run(|ctx| agents::get_or_create(ctx, AgentRole::Polecat, Some("rig-abcdefghij")))
        .unwrap();
    assert_eq!(found.agent_id, "raw");
    let elsewhere =
        town.run(|ctx| agents::get_or_create(ctx, AgentRole::Polecat, Some("rig-other")));
    assert!(elsewhere.is_err() || elsewhere.unwrap().agent_id != "raw");
}
