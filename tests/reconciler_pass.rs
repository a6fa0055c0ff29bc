//! A whole reconcile pass: the order of the rule groups, the circuit breaker and draining
//! across every rule, determinism, and the cost on a 10,000-bead town.

use gastown_town::reconciler::invariants;
use gastown_town::reconciler::{reconcile, Options, Snapshot, SnapshotBuilder};
use gastown_town::testing::snapshot::*;
use gastown_town::vocabulary::actions::{Action, MayorNotice};
use gastown_town::vocabulary::model::*;
use gastown_town::vocabulary::time::{Millis, HOUR, MINUTE};

const NOW: Millis = T0 + 3 * HOUR;

fn types(actions: &[Action]) -> Vec<&'static str> {
    actions.iter().map(Action::type_name).collect()
}

fn pass(snapshot: &Snapshot) -> Vec<Action> {
    reconcile(snapshot, &Options::of(snapshot), NOW)
}

/// Something for every rule group to do, one group at a time.
fn one_of_each() -> SnapshotBuilder {
    let fresh = NOW - MINUTE;
    SnapshotBuilder::new()
        // agents (A): a working polecat that never heartbeated.
        .agent(
            polecat("lost", "r")
                .status(AgentStatus::Working)
                .hook("run")
                .created(fresh),
        )
        .bead(
            issue("run", "r")
                .status(BeadStatus::InProgress)
                .updated(NOW),
        )
        // beads (B1): open work.
        .bead(issue("todo", "r").created(T0 + 1))
        // review queue (R5): an open review and an idle refinery.
        .bead(merge_request("mr", "r").created(T0 + 2))
        .review(review("mr"))
        .agent(refinery("ref", "r").created(fresh))
        // convoys: progress changed.
        .bead(convoy_bead("cv").created(T0 + 3))
        .convoy(convoy("cv").progress(0, 2))
        .bead(
            issue("member", "r")
                .status(BeadStatus::Closed)
                .created(T0 + 4),
        )
        .bead(
            issue("member2", "r")
                .status(BeadStatus::InProgress)
                .updated(NOW)
                .created(T0 + 5),
        )
        .tracks("member", "cv")
        .tracks("member2", "cv")
        .agent(
            polecat("busy", "r")
                .status(AgentStatus::Working)
                .hook("member2")
                .active(NOW)
                .created(fresh),
        )
        // GUPP: a worker silent for 20 minutes.
        .agent(
            polecat("quiet", "r")
                .status(AgentStatus::Working)
                .hook("q")
                .active(NOW)
                .event_at(NOW - 20 * MINUTE)
                .created(fresh),
        )
        .bead(
            issue("q", "r")
                .status(BeadStatus::InProgress)
                .updated(NOW)
                .created(T0 + 6),
        )
        // GC: an unhooked polecat silent for two days.
        .agent(polecat("old", "r").created(T0 - 48 * HOUR))
}

#[test]
fn rule_groups_come_in_order_agents_beads_reviews_convoys_gupp_gc() {
    assert_eq!(
        types(&pass(&one_of_each().build())),
        [
            "transition_agent",
            "dispatch_agent",
            "transition_bead",
            "hook_agent",
            "dispatch_agent",
            "update_convoy_progress",
            "send_nudge",
            "delete_agent",
        ]
    );
}

#[test]
fn the_same_facts_give_the_same_actions_whatever_their_insertion_order() {
    let forward = one_of_each().build();
    let mut reversed = SnapshotBuilder::new();
    for b in forward.beads().iter().rev() {
        reversed = reversed.bead(b.clone());
    }
    for a in forward.agents().iter().rev() {
        reversed = reversed.agent(a.clone());
    }
    reversed = reversed
        .review(review("mr"))
        .convoy(convoy("cv").progress(0, 2))
        .tracks("member2", "cv")
        .tracks("member", "cv");
    let reversed = reversed.build();
    assert_eq!(reversed, forward);
    assert_eq!(pass(&reversed), pass(&forward));
}

/// 20 beads whose last dispatch failed a minute ago (in backoff, so they add no actions).
fn failures(mut b: SnapshotBuilder, n: usize) -> SnapshotBuilder {
    for i in 0..n {
        let id = format!("failing-{i}");
        b = b
            .bead(
                issue(&id, "r")
                    .attempts(2)
                    .last_attempt(NOW - MINUTE)
                    .created(T0 - 1),
            )
            .dispatch_failed(&id);
    }
    b
}

/// Work for every dispatching rule (B1, B2, R5, R6) and each one's max-attempts failure.
fn dispatch_work() -> SnapshotBuilder {
    SnapshotBuilder::new()
        // B1
        .bead(issue("todo", "r").created(T0 + 1))
        .bead(issue("spent", "r").attempts(5).created(T0 + 2))
        // B2
        .bead(issue("hooked", "r").assignee("p").created(T0 + 3))
        .agent(polecat("p", "r").created(NOW))
        .bead(
            issue("hooked-spent", "r")
                .assignee("p2")
                .attempts(5)
                .created(T0 + 4),
        )
        .agent(polecat("p2", "r").hook("hooked-spent").created(NOW))
        // R5
        .bead(merge_request("mr", "r").created(T0 + 5))
        .review(review("mr"))
        .agent(refinery("ref", "r").created(NOW))
        // R6 (another rig, so R5 above still has an idle refinery)
        .bead(
            merge_request("mr2", "r2")
                .status(BeadStatus::InProgress)
                .updated(NOW)
                .created(T0 + 6),
        )
        .review(review("mr2"))
        .agent(refinery("ref2", "r2").hook("mr2").created(NOW))
        .bead(
            merge_request("mr3", "r3")
                .status(BeadStatus::InProgress)
                .attempts(5)
                .updated(NOW)
                .created(T0 + 7),
        )
        .review(review("mr3"))
        .agent(refinery("ref3", "r3").hook("mr3").created(NOW))
}

fn with_p_hooked(b: SnapshotBuilder) -> SnapshotBuilder {
    b.agent(polecat("p", "r").hook("hooked").created(NOW))
}

#[test]
fn with_the_breaker_closed_every_rule_dispatches() {
    let out = pass(&failures(with_p_hooked(dispatch_work()), 19).build());
    let dispatched: Vec<&str> = out
        .iter()
        .filter_map(|a| match a {
            Action::DispatchAgent { bead_id, .. } => Some(bead_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(dispatched, ["todo", "hooked", "mr", "mr2"]);
    assert!(!out.iter().any(|a| matches!(a, Action::NotifyMayor { .. })));
}

#[test]
fn an_open_breaker_pauses_every_dispatch_but_not_max_attempt_failures() {
    let out = pass(&failures(with_p_hooked(dispatch_work()), 20).build());
    assert!(!out
        .iter()
        .any(|a| matches!(a, Action::DispatchAgent { .. })));
    assert!(!out.iter().any(|a| matches!(a, Action::HookAgent { .. })));
    let failed: Vec<&str> = out
        .iter()
        .filter_map(|a| match a {
            Action::TransitionBead {
                bead_id,
                to: BeadStatus::Failed,
                ..
            } => Some(bead_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(failed, ["spent", "hooked-spent", "mr3"]);
    let notices: Vec<usize> = out
        .iter()
        .enumerate()
        .filter(|(_, a)| {
            matches!(
                a,
                Action::NotifyMayor {
                    notice: MayorNotice::BreakerOpened,
                    ..
                }
            )
        })
        .map(|(i, _)| i)
        .collect();
    assert_eq!(notices.len(), 1);
    // The notice closes the bead rules: the review queue's failure (mr3) comes after it.
    let mr3 = out
        .iter()
        .position(|a| matches!(a, Action::TransitionBead { bead_id, .. } if bead_id == "mr3"))
        .unwrap();
    assert!(notices[0] < mr3);
}

#[test]
fn healthy_in_flight_dispatches_never_open_the_breaker() {
    let mut town = failures(with_p_hooked(dispatch_work()), 19);
    for i in 0..40 {
        let id = format!("flying-{i}");
        town = town
            .bead(
                issue(&id, "r")
                    .status(BeadStatus::InProgress)
                    .attempts(1)
                    .last_attempt(NOW - MINUTE)
                    .updated(NOW)
                    .created(T0 - 1),
            )
            .agent(
                polecat(&format!("a-{i}"), "r")
                    .status(AgentStatus::Working)
                    .hook(&id)
                    .active(NOW)
                    .created(NOW),
            );
    }
    let out = pass(&town.build());
    assert_eq!(
        out.iter()
            .filter(|a| matches!(a, Action::DispatchAgent { .. }))
            .count(),
        4
    );
}

#[test]
fn the_breaker_notice_is_sent_once_per_opening() {
    let notices = |b: SnapshotBuilder| -> Vec<MayorNotice> {
        pass(&b.build())
            .into_iter()
            .filter_map(|a| match a {
                Action::NotifyMayor { notice, .. } => Some(notice),
                _ => None,
            })
            .collect()
    };
    let told = "2026-11-29T03:00:00.000Z";
    assert_eq!(
        notices(failures(SnapshotBuilder::new(), 20)),
        [MayorNotice::BreakerOpened]
    );
    assert_eq!(
        notices(failures(SnapshotBuilder::new(), 20).breaker_notified_at(told)),
        []
    );
    assert_eq!(
        notices(failures(SnapshotBuilder::new(), 19).breaker_notified_at(told)),
        [MayorNotice::BreakerClosed]
    );
    assert_eq!(notices(failures(SnapshotBuilder::new(), 19)), []);
}

#[test]
fn draining_stops_dispatch_heartbeat_checks_and_gupp_but_not_recovery() {
    let town = with_p_hooked(dispatch_work())
        // Heartbeat lost, and silent for 3 h (GUPP force stop).
        .agent(
            polecat("lost", "r")
                .status(AgentStatus::Working)
                .hook("run")
                .active(NOW - 3 * HOUR)
                .created(NOW),
        )
        .bead(
            issue("run", "r")
                .status(BeadStatus::InProgress)
                .assignee("lost")
                .updated(NOW)
                .created(T0 + 8),
        )
        // Recovery that still runs: B3, agents B, R7, GC.
        .bead(
            issue("orphan", "r")
                .status(BeadStatus::InProgress)
                .updated(NOW - HOUR)
                .created(T0 + 9),
        )
        .bead(
            issue("done", "r")
                .status(BeadStatus::Closed)
                .created(T0 + 10),
        )
        .agent(polecat("idle-on-done", "r").hook("done").created(NOW))
        .bead(
            merge_request("merged", "r4")
                .status(BeadStatus::Closed)
                .created(T0 + 11),
        )
        .agent(
            refinery("ref4", "r4")
                .status(AgentStatus::Working)
                .hook("merged")
                .active(NOW)
                .created(NOW),
        )
        .agent(polecat("old", "r").created(T0 - 48 * HOUR))
        .draining(true);
    let out = pass(&town.build());
    assert_eq!(
        types(&out),
        [
            // agents B
            "unhook_agent",
            "clear_agent_checkpoint",
            // B2 fails before its draining check; B1 checks draining first and fails nothing.
            "transition_bead",
            "unhook_agent",
            // B3
            "transition_bead",
            "clear_bead_assignee",
            // R7 (unhooked once the stop is confirmed)
            "stop_agent",
            // GC
            "delete_agent",
        ],
        "{out:#?}"
    );
    let Action::TransitionBead { bead_id, .. } = &out[2] else {
        unreachable!()
    };
    assert_eq!(bead_id, "hooked-spent");
}

#[test]
fn options_follow_the_town() {
    let town = SnapshotBuilder::new()
        .draining(true)
        .refinery_code_review(false)
        .build();
    assert_eq!(
        Options::of(&town),
        Options {
            draining: true,
            refinery_code_review: false
        }
    );
    assert_eq!(
        Options::of(&SnapshotBuilder::new().build()),
        Options::default()
    );
}

/// A town of 10,000 beads with a realistic mix of live work, reviews, convoys and history.
fn big_town() -> Snapshot {
    let mut b = SnapshotBuilder::new().rig(rig("r", "main"));
    let mut n = 0;
    let mut next = |prefix: &str| {
        n += 1;
        (format!("{prefix}-{n}"), T0 - 10 * HOUR + n)
    };
    for _ in 0..5_000 {
        let (id, at) = next("history");
        b = b.bead(issue(&id, "r").status(BeadStatus::Closed).created(at));
    }
    for i in 0..2_000 {
        let (id, at) = next("todo");
        b = b.bead(
            issue(&id, "r")
                .attempts(i % 4)
                .last_attempt(NOW - 3 * MINUTE)
                .created(at),
        );
        if i % 2 == 1 {
            b = b.blocks_on(&id, &format!("todo-{}", 5_000 + i));
        }
    }
    for i in 0..1_500 {
        let (id, at) = next("run");
        let agent = format!("agent-{i}");
        b = b
            .bead(
                issue(&id, "r")
                    .status(BeadStatus::InProgress)
                    .assignee(&agent)
                    .updated(NOW - 10 * MINUTE)
                    .created(at),
            )
            .agent(
                polecat(&agent, "r")
                    .status(AgentStatus::Working)
                    .hook(&id)
                    .active(NOW - 30 * MINUTE)
                    .event_at(NOW - 70 * MINUTE),
            );
    }
    for i in 0..1_000 {
        let (id, at) = next("src");
        let (mr, mr_at) = next("mr");
        b = b
            .bead(
                issue(&id, "r")
                    .status(BeadStatus::InReview)
                    .updated(NOW - HOUR)
                    .created(at),
            )
            .bead(
                merge_request(&mr, &format!("rig-{}", i % 20))
                    .status(if i % 3 == 0 {
                        BeadStatus::InProgress
                    } else {
                        BeadStatus::Open
                    })
                    .created(mr_at),
            )
            .review(if i % 2 == 0 {
                review(&mr).pr("https://github.com/o/r/pull/1")
            } else {
                review(&mr)
            })
            .tracks(&mr, &id);
    }
    for c in 0..100 {
        let (cv, at) = next("convoy");
        b = b
            .bead(convoy_bead(&cv).created(at))
            .convoy(convoy(&cv).feature_branch("convoy/x/head"));
        for m in 0..4 {
            let (id, at) = next("member");
            let status = if (c + m) % 2 == 0 {
                BeadStatus::Closed
            } else {
                BeadStatus::Open
            };
            b = b
                .bead(issue(&id, "r").status(status).created(at))
                .tracks(&id, &cv);
        }
    }
    for i in 0..20 {
        b = b.agent(refinery(&format!("refinery-{i}"), &format!("rig-{i}")));
    }
    let snapshot = b.build();
    assert!(snapshot.beads().len() >= 10_000);
    snapshot
}

#[test]
fn a_ten_thousand_bead_town_reconciles_with_work_in_every_rule_family() {
    // Speed is measured by scripts/bench, never asserted here.
    let town = big_town();
    let actions = pass(&town);
    let violations = invariants::check(&town);
    assert!(
        actions.len() > 1_000,
        "the town has work: {}",
        actions.len()
    );
    assert!(!violations.is_empty());
}
