//! Town-wide pieces: triage requests (de-duplicated and capped), nudges, rigs and draining.

use gastown_town::domain::nudges::{self, Queue};
use gastown_town::domain::rigs::{self, NewRig};
use gastown_town::domain::triage::{self, OPEN_CAP};
use gastown_town::domain::{drain, DomainError};
use gastown_town::testing::town::*;
use gastown_town::vocabulary::model::*;
use gastown_town::vocabulary::time::{iso, MINUTE};
use serde_json::json;

fn agents_town(n: usize) -> Town {
    let mut b = TownBuilder::new()
        .rig("r1")
        .bead(BeadSpec::issue("b1").rig("r1"));
    for i in 0..n {
        let mut a = AgentSpec::polecat(&format!("a{i}")).rig("r1");
        if i == 0 {
            a = a.hook("b1");
        }
        b = b.agent(a);
    }
    b.build()
}

#[test]
fn a_triage_request_is_an_assigned_labelled_issue_with_its_context() {
    let town = agents_town(1);
    let bead = town
        .run(|ctx| triage::create_request(ctx, "a0", TriageType::StuckAgent, "GUPP force stop"))
        .unwrap()
        .unwrap();
    assert_eq!(bead.bead_type, BeadType::Issue);
    assert_eq!(bead.title, "Triage: GUPP force stop");
    assert_eq!(bead.labels, ["gt:triage-request"]);
    assert_eq!(bead.priority, Priority::Medium);
    assert_eq!(bead.assignee_agent_bead_id.as_deref(), Some("a0"));
    assert_eq!(bead.rig_id.as_deref(), Some("r1"));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(bead.body.as_deref().unwrap()).unwrap(),
        json!({"reason": "GUPP force stop"})
    );
    assert_eq!(
        json!(bead.metadata),
        json!({"triage_type": "stuck_agent", "agent_bead_id": "a0", "hooked_bead_id": "b1",
               "context": {"reason": "GUPP force stop"},
               "options": ["RESTART", "CLOSE", "ESCALATE"]})
    );
}

#[test]
fn triage_requests_are_deduplicated_per_type_and_agent() {
    let town = agents_town(2);
    let first = town
        .run(|ctx| triage::create_request(ctx, "a0", TriageType::StuckAgent, "one"))
        .unwrap();
    assert!(first.is_some());
    let before = town.snapshot();
    let dup = town
        .run(|ctx| triage::create_request(ctx, "a0", TriageType::StuckAgent, "two"))
        .unwrap();
    assert!(dup.is_none());
    assert_eq!(town.snapshot(), before, "a duplicate writes nothing");
    for (agent, kind) in [
        ("a0", TriageType::CrashLoop),
        ("a1", TriageType::StuckAgent),
    ] {
        let other = town
            .run(|ctx| triage::create_request(ctx, agent, kind, "other"))
            .unwrap();
        assert!(other.is_some(), "{agent} {kind}");
    }
    // Once the first is resolved a new one may be filed.
    let id = first.unwrap().bead_id;
    town.db
        .execute(
            "UPDATE beads SET status = 'closed' WHERE bead_id = ?",
            &[id.as_str().into()],
        )
        .unwrap();
    let again = town
        .run(|ctx| triage::create_request(ctx, "a0", TriageType::StuckAgent, "three"))
        .unwrap();
    assert!(again.is_some());
}

#[test]
fn at_most_five_open_non_escalation_requests_but_escalations_pass() {
    assert_eq!(OPEN_CAP, 5);
    let town = agents_town(7);
    for i in 0..OPEN_CAP {
        let r = town
            .run(|ctx| triage::create_request(ctx, &format!("a{i}"), TriageType::StuckAgent, "x"))
            .unwrap();
        assert!(r.is_some(), "request {i}");
    }
    let before = town.snapshot();
    let capped = town
        .run(|ctx| triage::create_request(ctx, "a5", TriageType::HelpRequest, "x"))
        .unwrap();
    assert!(capped.is_none());
    assert_eq!(town.snapshot(), before);
    let escalation = town
        .run(|ctx| triage::create_request(ctx, "a6", TriageType::Escalation, "x"))
        .unwrap();
    assert!(escalation.is_some(), "escalations are not capped");
    let err = town
        .run(|ctx| triage::create_request(ctx, "ghost", TriageType::StuckAgent, "x"))
        .unwrap_err();
    assert!(err.is_not_found());
}

fn queue(agent: &str, message: &str, priority: NudgePriority) -> Queue {
    Queue {
        agent_id: agent.into(),
        message: message.into(),
        mode: NudgeMode::WaitIdle,
        priority,
        source: "system".into(),
        ttl_ms: None,
    }
}

#[test]
fn pending_nudges_come_urgent_first_then_oldest_first() {
    let town = agents_town(2);
    for (msg, p) in [
        ("n1", NudgePriority::Normal),
        ("u1", NudgePriority::Urgent),
        ("n2", NudgePriority::Normal),
        ("u2", NudgePriority::Urgent),
    ] {
        town.run(|ctx| nudges::queue(ctx, &queue("a0", msg, p)))
            .unwrap();
        town.advance(1_000);
    }
    town.run(|ctx| nudges::queue(ctx, &queue("a1", "other", NudgePriority::Urgent)))
        .unwrap();
    let pending = town.run(|ctx| nudges::pending(ctx, "a0")).unwrap();
    let order: Vec<_> = pending.iter().map(|n| n.message.as_str()).collect();
    assert_eq!(order, ["u1", "u2", "n1", "n2"]);

    let n = town
        .run(|ctx| nudges::mark_delivered(ctx, "a0", &pending[0].nudge_id))
        .unwrap();
    assert_eq!(n.delivered_at, Some(iso(town.now())));
    town.advance(1);
    let again = town
        .run(|ctx| nudges::mark_delivered(ctx, "a0", &pending[0].nudge_id))
        .unwrap();
    assert_eq!(
        again.delivered_at, n.delivered_at,
        "acknowledging twice changes nothing"
    );
    assert_eq!(town.run(|ctx| nudges::pending(ctx, "a0")).unwrap().len(), 3);
    let err = town
        .run(|ctx| nudges::mark_delivered(ctx, "a1", &pending[1].nudge_id))
        .unwrap_err();
    assert!(err.is_not_found(), "another agent's nudge");
    let err = town.run(|ctx| nudges::pending(ctx, "ghost")).unwrap_err();
    assert!(err.is_not_found());
}

#[test]
fn queued_nudges_expire() {
    let town = agents_town(1);
    let mut q = queue("a0", "soon stale", NudgePriority::Normal);
    q.mode = NudgeMode::Queue;
    q.ttl_ms = Some(MINUTE);
    let n = town.run(|ctx| nudges::queue(ctx, &q)).unwrap();
    assert_eq!(n.expires_at, Some(iso(T0 + MINUTE)));
    town.run(|ctx| nudges::queue(ctx, &queue("a0", "forever", NudgePriority::Normal)))
        .unwrap();
    town.advance(MINUTE);
    let pending = town.run(|ctx| nudges::pending(ctx, "a0")).unwrap();
    assert_eq!(pending.len(), 1, "an expired nudge is not offered");
    assert_eq!(town.run(nudges::expire).unwrap(), 1);
    assert_eq!(town.count("agent_nudges WHERE delivered_at IS NULL"), 1);
}

#[test]
fn rigs_are_registered_once() {
    let town = TownBuilder::new().build();
    let rig = town
        .run(|ctx| {
            rigs::create(
                ctx,
                &NewRig {
                    rig_id: Some("web".into()),
                    name: "Web".into(),
                    git_url: "https://github.com/o/web.git".into(),
                    default_branch: None,
                },
            )
        })
        .unwrap();
    assert_eq!(rig.default_branch, "main");
    let generated = town
        .run(|ctx| {
            rigs::create(
                ctx,
                &NewRig {
                    rig_id: None,
                    name: "Api".into(),
                    git_url: "https://github.com/o/api.git".into(),
                    default_branch: Some("develop".into()),
                },
            )
        })
        .unwrap();
    assert_eq!(generated.default_branch, "develop");
    let before = town.snapshot();
    let dup = NewRig {
        rig_id: Some("web".into()),
        name: "Web".into(),
        git_url: "https://github.com/o/other.git".into(),
        default_branch: None,
    };
    assert!(matches!(
        town.run(|ctx| rigs::create(ctx, &dup)).unwrap_err(),
        DomainError::Conflict(_)
    ));
    let empty = NewRig {
        rig_id: Some("new".into()),
        name: " ".into(),
        ..dup
    };
    assert!(matches!(
        town.run(|ctx| rigs::create(ctx, &empty)).unwrap_err(),
        DomainError::Invalid { .. }
    ));
    assert_eq!(town.snapshot(), before);
    let all = town.run(rigs::list).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(town.run(|ctx| rigs::get(ctx, "web")).unwrap().name, "Web");
}

#[test]
fn eviction_drains_until_the_matching_nonce_reports_ready() {
    let town = TownBuilder::new().build();
    assert_eq!(town.run(drain::nonce).unwrap(), None);
    assert_eq!(
        town.run(|ctx| drain::container_ready(ctx, "anything")),
        Ok(true),
        "not draining: a no-op"
    );
    let nonce = town.run(drain::evict).unwrap();
    assert_eq!(town.run(drain::nonce).unwrap(), Some(nonce.clone()));
    let events = town.town_events();
    assert_eq!(events.last().unwrap().event_type, "container_eviction");
    assert_eq!(
        town.run(|ctx| drain::container_ready(ctx, "wrong")),
        Ok(false),
        "a mismatch changes nothing"
    );
    assert_eq!(town.run(drain::nonce).unwrap(), Some(nonce.clone()));
    assert_eq!(
        town.run(|ctx| drain::container_ready(ctx, &nonce)),
        Ok(true)
    );
    assert_eq!(town.run(drain::nonce).unwrap(), None);
}

#[test]
fn a_heartbeat_from_a_new_container_instance_ends_the_drain() {
    let town = TownBuilder::new().build();
    town.run(|ctx| drain::saw_instance(ctx, "box-1")).unwrap();
    town.run(drain::evict).unwrap();
    town.run(|ctx| drain::saw_instance(ctx, "box-1")).unwrap();
    assert!(
        town.run(drain::nonce).unwrap().is_some(),
        "same instance: still draining"
    );
    town.run(|ctx| drain::saw_instance(ctx, "box-2")).unwrap();
    assert_eq!(town.run(drain::nonce).unwrap(), None);
}

#[test]
fn deleting_a_town_empties_it_despite_foreign_keys() {
    let town = TownBuilder::new()
        .rig("r1")
        .bead(BeadSpec::issue("b1").rig("r1"))
        .bead(BeadSpec::issue("child").rig("r1"))
        .agent(AgentSpec::polecat("a1").rig("r1").hook("b1"))
        .build();
    town.db
        .execute(
            "UPDATE beads SET parent_bead_id = 'b1' WHERE bead_id = 'child'",
            &[],
        )
        .unwrap();
    gastown_town::store::town::delete(&town.db).unwrap();
    for table in ["beads", "agent_metadata", "rigs", "town"] {
        assert_eq!(town.count(table), 0, "{table}");
    }
}
