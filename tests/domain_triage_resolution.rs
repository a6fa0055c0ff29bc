//! Resolving triage requests: who may, and what each of the nine actions does to the agent, its
//! bead and the request.

use gastown_town::domain::mail;
use gastown_town::domain::nudges;
use gastown_town::domain::triage_resolution::{self as triage, Action};
use gastown_town::domain::DomainError;
use gastown_town::testing::town::*;
use gastown_town::vocabulary::model::*;
use serde_json::json;

/// A triage agent `t1` hooked to a patrol batch, a stuck polecat `p1` on bead `b1` (with
/// `attempts` dispatch attempts), a mayor, and request `q1` about `p1`.
fn town(attempts: i64) -> Town {
    TownBuilder::new()
        .rig("web")
        .bead(
            BeadSpec::issue("batch")
                .label("gt:triage")
                .created_by("patrol"),
        )
        .bead(BeadSpec::issue("fake").label("gt:triage").created_by("p1"))
        .bead(
            BeadSpec::issue("b1")
                .rig("web")
                .status(BeadStatus::InProgress)
                .assignee("p1")
                .dispatch_attempts(attempts),
        )
        .bead(
            BeadSpec::issue("q1")
                .rig("web")
                .title("Triage: stuck")
                .label("gt:triage-request")
                .assignee("p1")
                .meta("agent_bead_id", json!("p1"))
                .meta("hooked_bead_id", json!("b1")),
        )
        .agent(AgentSpec::polecat("t1").rig("web").hook("batch"))
        .agent(
            AgentSpec::polecat("p1")
                .rig("web")
                .hook("b1")
                .status(AgentStatus::Working),
        )
        .agent(AgentSpec::polecat("p2").rig("web").hook("fake"))
        .agent(AgentSpec::mayor("m1"))
        .build()
}

fn resolve(town: &Town, action: Action) -> Result<Bead, DomainError> {
    town.run(|ctx| triage::resolve(ctx, "t1", "q1", action, "try the other API"))
}

#[test]
fn only_the_agent_on_a_patrol_batch_may_resolve() {
    let town = town(0);
    assert!(town.run(|ctx| triage::may_resolve(ctx, "t1")).unwrap());
    for other in ["p1", "p2", "ghost"] {
        assert!(
            !town.run(|ctx| triage::may_resolve(ctx, other)).unwrap(),
            "{other}"
        );
    }
}

#[test]
fn actions_are_read_case_insensitively() {
    assert_eq!(
        Action::parse("restart_with_backoff"),
        Some(Action::RestartWithBackoff)
    );
    assert_eq!(
        Action::parse("Provide_Guidance"),
        Some(Action::ProvideGuidance)
    );
    assert_eq!(Action::parse("CLOSE"), None);
}

#[test]
fn restart_and_reassign_free_the_bead_for_another_dispatch_below_the_limit() {
    for action in [
        Action::Restart,
        Action::RestartWithBackoff,
        Action::ReassignBead,
    ] {
        let town = town(4);
        let request = resolve(&town, action).unwrap();
        assert_eq!(request.status, BeadStatus::Closed);
        assert_eq!(request.meta_str("resolution"), Some(action.as_str()));
        let bead = town.bead("b1");
        assert_eq!(bead.status, BeadStatus::Open, "{action:?}");
        assert_eq!(bead.assignee_agent_bead_id, None);
        assert_eq!(bead.dispatch_attempts, 4, "the counter is kept");
        let agent = town.agent("p1");
        assert_eq!(
            (agent.current_hook_bead_id, agent.status),
            (None, AgentStatus::Idle)
        );
    }
}

#[test]
fn restart_and_reassign_fail_the_bead_once_its_attempts_are_used_up() {
    for action in [
        Action::Restart,
        Action::RestartWithBackoff,
        Action::ReassignBead,
    ] {
        let town = town(5);
        resolve(&town, action).unwrap();
        assert_eq!(town.bead("b1").status, BeadStatus::Failed, "{action:?}");
        assert_eq!(town.agent("p1").current_hook_bead_id, None);
    }
}

#[test]
fn close_bead_closes_it_and_discard_touches_nothing_but_the_request() {
    let town = town(1);
    resolve(&town, Action::CloseBead).unwrap();
    assert_eq!(town.bead("b1").status, BeadStatus::Closed);
    assert_eq!(town.agent("p1").current_hook_bead_id, None);

    let town = self::town(1);
    let before = (town.bead("b1"), town.agent("p1"));
    resolve(&town, Action::Discard).unwrap();
    assert_eq!((town.bead("b1"), town.agent("p1")), before);
    assert_eq!(town.bead("q1").status, BeadStatus::Closed);
    let logged = town
        .history("q1")
        .into_iter()
        .find(|e| e.event_type == "triage_resolved");
    assert_eq!(logged.unwrap().new_value.as_deref(), Some("DISCARD"));
}

#[test]
fn escalations_file_a_bead_and_the_mayor_gets_mail_only_when_asked() {
    let town = town(0);
    resolve(&town, Action::Escalate).unwrap();
    assert_eq!(
        town.run(|ctx| mail::undelivered(ctx, "m1")).unwrap(),
        vec![]
    );
    let town = self::town(0);
    resolve(&town, Action::EscalateToMayor).unwrap();
    let escalations: i64 = town
        .db
        .first("SELECT COUNT(*) AS n FROM escalation_metadata", &[])
        .unwrap()
        .unwrap()
        .int("n")
        .unwrap();
    assert_eq!(escalations, 1);
    let to_mayor = town.run(|ctx| mail::undelivered(ctx, "m1")).unwrap();
    assert_eq!(to_mayor.len(), 1);
    assert_eq!(to_mayor[0].body, "try the other API");
}

#[test]
fn nudge_and_guidance_reach_the_agent() {
    let town = town(0);
    resolve(&town, Action::Nudge).unwrap();
    let pending = town.run(|ctx| nudges::pending(ctx, "p1")).unwrap();
    assert_eq!(pending[0].message, "try the other API");
    assert_eq!(town.agent("p1").current_hook_bead_id.as_deref(), Some("b1"));
    let town = self::town(0);
    resolve(&town, Action::ProvideGuidance).unwrap();
    assert_eq!(
        town.run(|ctx| mail::undelivered(ctx, "p1")).unwrap()[0].body,
        "try the other API"
    );
}

#[test]
fn a_resolved_request_or_another_bead_is_refused() {
    let town = town(0);
    resolve(&town, Action::Discard).unwrap();
    assert!(matches!(
        resolve(&town, Action::Discard),
        Err(DomainError::Conflict(_))
    ));
    let other = town.run(|ctx| triage::resolve(ctx, "t1", "b1", Action::Discard, ""));
    assert!(matches!(other, Err(DomainError::Invalid { .. })));
}
