//! The domain operations return the entity as it now is without reading it again (each read is a
//! statement, and statements are what a tick costs in the Durable Object). Each result here is
//! held against a fresh read of the stored row, from states that exercise every field the
//! operation writes.

use gastown_town::domain::agents::{self, Watermark};
use gastown_town::domain::beads;
use gastown_town::domain::{Ctx, DomainError};
use gastown_town::testing::town::*;
use gastown_town::vocabulary::model::*;
use gastown_town::vocabulary::time::MINUTE;
use serde_json::{json, Map};

const RIG: &str = "rig-1";

fn town() -> Town {
    TownBuilder::new()
        .rig(RIG)
        .bead(BeadSpec::issue("open").rig(RIG))
        .bead(
            BeadSpec::issue("held")
                .rig(RIG)
                .status(BeadStatus::InProgress)
                .assignee("working")
                .meta("keep", json!(1))
                .meta("drop", json!("x")),
        )
        .bead(BeadSpec::convoy("convoy", 1))
        .dep("held", "convoy", DependencyType::Tracks)
        .agent(AgentSpec::polecat("idle").rig(RIG).checkpoint("cp"))
        .agent(
            AgentSpec::polecat("working")
                .rig(RIG)
                .status(AgentStatus::Working)
                .hook("held")
                .dispatch_attempts(3)
                .checkpoint("cp")
                .active_at(T0 - 10 * MINUTE),
        )
        .agent(
            AgentSpec::polecat("stalled")
                .rig(RIG)
                .status(AgentStatus::Stalled)
                .active_at(T0 - 20 * MINUTE),
        )
        .build()
}

/// Runs `op` a little later than the seeded times and checks what it returned against the store.
fn agent_matches(op: impl Fn(&Ctx<'_>) -> Result<Agent, DomainError>) {
    let town = town();
    town.advance(5_000);
    let returned = town.run(&op).expect("the operation applies");
    assert_eq!(returned, town.agent(&returned.agent_id));
}

fn bead_matches(op: impl Fn(&Ctx<'_>) -> Result<Bead, DomainError>) {
    let town = town();
    town.advance(5_000);
    let returned = town.run(&op).expect("the operation applies");
    assert_eq!(returned, town.bead(&returned.bead_id));
}

#[test]
fn agent_operations_return_the_stored_agent() {
    agent_matches(|ctx| agents::hook(ctx, "idle", "open"));
    for (role, rig) in [
        (AgentRole::Polecat, Some(RIG)),
        (AgentRole::Refinery, Some(RIG)),
        (AgentRole::Mayor, None),
    ] {
        // A new agent of each role (the fixture's polecat is taken first, then a new one).
        agent_matches(|ctx| {
            agents::hook(ctx, "idle", "open")?;
            agents::get_or_create(ctx, role, rig)
        });
    }
    agent_matches(|ctx| agents::unhook(ctx, "working"));
    agent_matches(|ctx| agents::unhook(ctx, "idle"));
    agent_matches(|ctx| agents::clear_checkpoint(ctx, "working"));
    agent_matches(|ctx| agents::reset_dispatch_attempts(ctx, "working"));
    for status in [
        AgentStatus::Idle,
        AgentStatus::Working,
        AgentStatus::Stalled,
        AgentStatus::Dead,
        AgentStatus::Waiting,
    ] {
        for agent in ["idle", "working", "stalled"] {
            agent_matches(|ctx| agents::set_status(ctx, agent, status));
        }
    }
    let watermark = Watermark {
        last_event_type: Some("tool_use".into()),
        last_event_at: Some("2026-11-29T00:00:00.000Z".into()),
        active_tools: Some(vec!["bash".into(), "edit".into()]),
    };
    for agent in ["idle", "working", "stalled"] {
        agent_matches(|ctx| agents::touch(ctx, agent, &watermark));
        agent_matches(|ctx| agents::touch(ctx, agent, &Watermark::default()));
    }
}

#[test]
fn hooking_to_start_writes_what_hook_then_the_two_status_changes_wrote() {
    let start = |ctx: &Ctx<'_>, agent: &str, bead: &str| {
        agents::hook_to_start_of(ctx, agents::get(ctx, agent)?, &beads::get(ctx, bead)?)
    };
    agent_matches(|ctx| start(ctx, "idle", "open"));
    agent_matches(|ctx| start(ctx, "stalled", "open"));
    agent_matches(|ctx| start(ctx, "working", "held"));

    let town = town();
    town.advance(5_000);
    let agent = town.run(|ctx| start(ctx, "idle", "open")).unwrap();
    assert_eq!(agent.status, AgentStatus::Working);
    let bead = town.bead("open");
    assert_eq!(bead.status, BeadStatus::InProgress);
    assert_eq!(bead.assignee_agent_bead_id.as_deref(), Some("idle"));
    assert_eq!(town.history_types("open"), ["hooked", "status_changed"]);
    let changed = &town.history("open")[1];
    assert_eq!(
        (changed.old_value.as_deref(), changed.new_value.as_deref()),
        (Some("open"), Some("in_progress"))
    );
}

#[test]
fn bead_operations_return_the_stored_bead() {
    for to in [
        BeadStatus::Open,
        BeadStatus::InProgress,
        BeadStatus::InReview,
        BeadStatus::Closed,
        BeadStatus::Failed,
    ] {
        for bead in ["open", "held"] {
            bead_matches(|ctx| beads::set_status(ctx, bead, to, "system", None));
        }
    }
    bead_matches(|ctx| beads::assign(ctx, "open", "idle"));
    bead_matches(|ctx| beads::clear_assignee(ctx, "held"));
    let mut patch = Map::new();
    patch.insert("drop".into(), json!(null));
    patch.insert("add".into(), json!({"k": [1, 2]}));
    bead_matches(|ctx| beads::merge_metadata(ctx, "held", &patch));
}
