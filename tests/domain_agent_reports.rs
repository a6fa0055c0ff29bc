//! What agents report and send besides their work: mail, status messages, checkpoints, the
//! eviction context, the mayor's waiting, and the prime context that shows them.

use gastown_town::domain::mail::{self, Letter};
use gastown_town::domain::reports::{self, EvictionContext};
use gastown_town::domain::{prime, DomainError};
use gastown_town::effects::prompts;
use gastown_town::store::agents as agent_store;
use gastown_town::testing::town::*;
use gastown_town::vocabulary::model::*;
use serde_json::json;

fn town() -> Town {
    TownBuilder::new()
        .rig("web")
        .bead(BeadSpec::issue("b1").rig("web").body("Fix it."))
        .bead(BeadSpec::issue("b2").rig("web"))
        .bead(BeadSpec::issue("b3").rig("web").status(BeadStatus::Closed))
        .agent(
            AgentSpec::polecat("p1")
                .rig("web")
                .hook("b1")
                .status(AgentStatus::Working),
        )
        .agent(AgentSpec::refinery("r1").rig("web"))
        .agent(AgentSpec::mayor("m1").status(AgentStatus::Working))
        .build()
}

fn letter<'a>(to: &'a str, subject: &'a str) -> Letter<'a> {
    Letter {
        from_agent_id: "r1",
        to_agent_id: to,
        subject,
        body: "see the review",
    }
}

#[test]
fn mail_waits_undelivered_until_the_agent_checks_it_once() {
    let town = town();
    let first = town
        .run(|ctx| mail::send(ctx, &letter("p1", "one")))
        .unwrap();
    town.advance(1_000);
    town.run(|ctx| mail::send(ctx, &letter("p1", "two")))
        .unwrap();
    let waiting = town.run(|ctx| mail::undelivered(ctx, "p1")).unwrap();
    assert_eq!(
        waiting
            .iter()
            .map(|m| m.subject.as_str())
            .collect::<Vec<_>>(),
        ["one", "two"]
    );
    assert_eq!(waiting[0].mail_id, first.mail_id);
    let checked = town.run(|ctx| mail::check(ctx, "p1")).unwrap();
    assert_eq!(checked.len(), 2);
    assert!(checked.iter().all(|m| m.delivered_at.is_some()));
    assert_eq!(town.run(|ctx| mail::check(ctx, "p1")).unwrap(), vec![]);
    let kinds: Vec<String> = town
        .history("p1")
        .into_iter()
        .map(|e| e.event_type)
        .filter(|t| t.starts_with("mail_"))
        .collect();
    assert_eq!(kinds, ["mail_sent", "mail_sent", "mail_delivered"]);
}

#[test]
fn mail_to_nobody_or_without_a_subject_is_refused() {
    let town = town();
    let ghost = town.run(|ctx| mail::send(ctx, &letter("ghost", "x")));
    assert!(matches!(ghost, Err(DomainError::NotFound { .. })));
    let blank = town.run(|ctx| mail::send(ctx, &letter("p1", "  ")));
    assert!(matches!(blank, Err(DomainError::Invalid { .. })));
    assert_eq!(
        town.run(|ctx| mail::undelivered(ctx, "p1")).unwrap(),
        vec![]
    );
}

#[test]
fn a_status_message_is_trimmed_and_at_most_280_characters() {
    let town = town();
    town.run(|ctx| reports::set_status_message(ctx, "p1", "  reading  "))
        .unwrap();
    let long = "x".repeat(281);
    for bad in ["   ", long.as_str()] {
        let e = town.run(|ctx| reports::set_status_message(ctx, "p1", bad));
        assert!(matches!(e, Err(DomainError::Invalid { .. })), "{bad:?}");
    }
    let said = agent_store::status_messages(&town.db).unwrap();
    assert_eq!(said.len(), 1);
    assert_eq!((said[0].0.as_str(), said[0].1.as_str()), ("p1", "reading"));
}

#[test]
fn a_checkpoint_is_kept_as_text_for_the_next_prompt_and_null_clears_it() {
    let town = town();
    town.run(|ctx| reports::checkpoint(ctx, "p1", &json!("tests written")))
        .unwrap();
    assert_eq!(
        town.agent("p1").checkpoint.as_deref(),
        Some("tests written")
    );
    town.run(|ctx| reports::checkpoint(ctx, "p1", &json!({"step": 2})))
        .unwrap();
    assert_eq!(
        town.agent("p1").checkpoint.as_deref(),
        Some(r#"{"step":2}"#)
    );
    let prompt = prompts::task(&town.bead("b1"), town.agent("p1").checkpoint.as_deref());
    assert!(
        prompt.ends_with("Resume from checkpoint:\n{\"step\":2}"),
        "the next dispatch resumes from it: {prompt}"
    );
    town.run(|ctx| reports::checkpoint(ctx, "p1", &json!(null)))
        .unwrap();
    assert_eq!(town.agent("p1").checkpoint, None);
}

#[test]
fn the_eviction_context_is_noted_on_the_hooked_bead_only() {
    let town = town();
    let context = EvictionContext {
        branch: "gt/toast/wip",
        agent_name: "Toast",
        saved_at: "2026-12-03T09:00:00Z",
    };
    town.run(|ctx| reports::eviction_context(ctx, "p1", &context))
        .unwrap();
    let body = town.bead("b1").body.unwrap();
    assert!(body.starts_with("Fix it.\n\n"), "{body}");
    assert!(body.contains("`gt/toast/wip`"), "{body}");
    let logged = town.history("b1").into_iter().last().unwrap();
    assert_eq!(logged.event_type, "eviction_context");
    assert_eq!(logged.new_value.as_deref(), Some("gt/toast/wip"));
    let before = town.bead("b2");
    town.run(|ctx| reports::eviction_context(ctx, "r1", &context))
        .unwrap();
    assert_eq!(town.bead("b2"), before, "no hook: nothing written");
}

#[test]
fn only_a_working_mayor_starts_waiting() {
    let town = town();
    assert_eq!(
        town.run(|ctx| reports::waiting(ctx, "m1")).unwrap().status,
        AgentStatus::Waiting
    );
    assert_eq!(
        town.run(|ctx| reports::waiting(ctx, "p1")).unwrap().status,
        AgentStatus::Working
    );
    assert_eq!(town.agent("p1").status, AgentStatus::Working);
}

#[test]
fn prime_shows_the_agent_its_hook_its_mail_and_the_rig_s_open_issues() {
    let town = town();
    town.run(|ctx| mail::send(ctx, &letter("p1", "hello")))
        .unwrap();
    let primed = town.run(|ctx| prime::prime(ctx, "p1")).unwrap();
    assert_eq!(primed.agent.agent_id, "p1");
    assert_eq!(primed.hooked_bead.unwrap().bead_id, "b1");
    assert_eq!(primed.undelivered_mail.len(), 1, "prime does not deliver");
    let open: Vec<&str> = primed
        .open_beads
        .iter()
        .map(|b| b.bead_id.as_str())
        .collect();
    assert_eq!(open, ["b1", "b2"]);
    assert_eq!(
        town.run(|ctx| mail::undelivered(ctx, "p1")).unwrap().len(),
        1
    );
    let refinery = town.run(|ctx| prime::prime(ctx, "r1")).unwrap();
    assert_eq!(refinery.hooked_bead, None);
}

#[test]
fn agent_events_keep_the_newest_per_agent_and_refuse_strangers() {
    use gastown_town::domain::agent_events;
    use gastown_town::store::agent_events::{newest, KEEP};
    let town = town();
    for n in 0..KEEP + 5 {
        town.run(|ctx| agent_events::append(ctx, "p1", "tool_call", &json!({"n": n})))
            .unwrap();
    }
    town.run(|ctx| agent_events::append(ctx, "r1", "message", &json!("hi")))
        .unwrap();
    let kept = town
        .run(|ctx| Ok::<_, DomainError>(newest(ctx.sql, "p1", 1_000)?))
        .unwrap();
    assert_eq!(kept.len() as i64, KEEP);
    assert_eq!(kept[0]["data"], json!({"n": KEEP + 4}));
    assert_eq!(kept.last().unwrap()["data"], json!({"n": 5}));
    let other = town
        .run(|ctx| Ok::<_, DomainError>(newest(ctx.sql, "r1", 10)?))
        .unwrap();
    assert_eq!(
        other,
        [json!({"event_type": "message", "data": "hi", "created_at": other[0]["created_at"]})]
    );
    assert!(matches!(
        town.run(|ctx| agent_events::append(ctx, "nobody", "x", &json!({}))),
        Err(DomainError::NotFound { .. })
    ));
    assert!(matches!(
        town.run(|ctx| agent_events::append(ctx, "p1", "  ", &json!({}))),
        Err(DomainError::Invalid { .. })
    ));
}
