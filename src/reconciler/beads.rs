//! reconcileBeads (GASTOWN-DOMAIN.md 3.4): get open work dispatched, unstick assignees, and
//! recover beads whose agent or reviews are gone. Rules run in the order B1, B1b, B2, B3, B4;
//! the circuit breaker's mayor notice (if due) comes last.

use super::breaker::{self, Breaker};
use super::constants::{
    HEARTBEAT_STALE_MS, ORPHANED_SOURCE_TIMEOUT_MS, STALE_IN_PROGRESS_TIMEOUT_MS,
};
use super::snapshot::Snapshot;
use super::timing::{cooling_down, is_stale, out_of_attempts};
use super::{transition, Options};
use crate::vocabulary::actions::Action;
use crate::vocabulary::model::{labels, Agent, AgentRole, AgentStatus, Bead, BeadStatus, BeadType};
use crate::vocabulary::time::Millis;

/// Who a cleared assignee may be without being a stale one (escalations, rework requests).
const SYSTEM_ASSIGNEE: &str = "system";

pub fn reconcile(
    snapshot: &Snapshot,
    options: &Options,
    breaker: Breaker,
    now: Millis,
) -> Vec<Action> {
    let mut out = Vec::new();
    let issues = || {
        snapshot
            .beads()
            .iter()
            .filter(|b| b.bead_type == BeadType::Issue)
    };
    for bead in issues() {
        dispatch_unassigned(snapshot, options, breaker, now, bead, &mut out);
    }
    for bead in issues() {
        clear_stale_assignee(snapshot, bead, &mut out);
    }
    for agent in snapshot.agents() {
        redispatch_idle_hooked(snapshot, options, breaker, now, agent, &mut out);
    }
    for bead in issues() {
        recover_lost_agent(snapshot, now, bead, &mut out);
    }
    for bead in issues() {
        settle_finished_reviews(snapshot, now, bead, &mut out);
    }
    out.extend(breaker::notice(snapshot, breaker));
    out
}

/// Whether the bead belongs to a convoy that has not been started.
fn in_staged_convoy(snapshot: &Snapshot, bead: &Bead) -> bool {
    snapshot
        .tracks(&bead.bead_id)
        .any(|t| snapshot.convoy(&t.bead_id).is_some_and(|c| c.staged))
}

fn max_attempts_reason(bead: &Bead) -> String {
    format!(
        "max dispatch attempts exceeded ({})",
        bead.dispatch_attempts
    )
}

/// B1: an open, unassigned, unblocked issue of a rig (not a triage request, not in a staged
/// convoy) is dispatched to an agent resolved when applying. (The original's `labels NOT LIKE
/// '%"gt:triage-request"%'` is an exact match on the decoded label list here.) Checks in order: draining (before
/// max attempts, so nothing is failed during a drain), max attempts, backoff, breaker.
fn dispatch_unassigned(
    snapshot: &Snapshot,
    options: &Options,
    breaker: Breaker,
    now: Millis,
    bead: &Bead,
    out: &mut Vec<Action>,
) {
    let Some(rig_id) = &bead.rig_id else { return };
    if bead.status != BeadStatus::Open
        || bead.assignee_agent_bead_id.is_some()
        || bead.has_label(labels::TRIAGE_REQUEST)
        || snapshot.is_blocked(&bead.bead_id)
        || in_staged_convoy(snapshot, bead)
        || options.draining
    {
        return;
    }
    if out_of_attempts(bead) {
        out.push(transition(
            bead,
            Some(BeadStatus::Open),
            BeadStatus::Failed,
            max_attempts_reason(bead),
        ));
    } else if !cooling_down(bead, now) && !breaker.is_open() {
        out.push(Action::DispatchAgent {
            agent_id: None,
            bead_id: bead.bead_id.clone(),
            rig_id: rig_id.clone(),
        });
    }
}

/// B1b: an open issue of a rig whose assignee is not hooked to it loses the assignee, so B1
/// can dispatch it next tick. `system` assignees and triage requests are assigned but never
/// hooked on purpose.
fn clear_stale_assignee(snapshot: &Snapshot, bead: &Bead, out: &mut Vec<Action>) {
    let Some(assignee) = &bead.assignee_agent_bead_id else {
        return;
    };
    if bead.status != BeadStatus::Open
        || bead.rig_id.is_none()
        || assignee == SYSTEM_ASSIGNEE
        || bead.has_label(labels::TRIAGE_REQUEST)
        || snapshot
            .hooked_to(&bead.bead_id)
            .any(|a| &a.agent_id == assignee)
    {
        return;
    }
    out.push(Action::ClearBeadAssignee {
        bead_id: bead.bead_id.clone(),
    });
}

/// B2: an idle agent (not a refinery) hooked to an open bead is dispatched again. Checks in
/// order: max attempts (fail the bead and unhook), backoff, blockers, draining, breaker.
fn redispatch_idle_hooked(
    snapshot: &Snapshot,
    options: &Options,
    breaker: Breaker,
    now: Millis,
    agent: &Agent,
    out: &mut Vec<Action>,
) {
    if agent.status != AgentStatus::Idle || agent.role == AgentRole::Refinery {
        return;
    }
    let Some(bead) = agent
        .current_hook_bead_id
        .as_deref()
        .and_then(|h| snapshot.bead(h))
        .filter(|b| b.status == BeadStatus::Open)
    else {
        return;
    };
    if out_of_attempts(bead) {
        out.push(transition(
            bead,
            None,
            BeadStatus::Failed,
            max_attempts_reason(bead),
        ));
        out.push(Action::UnhookAgent {
            agent_id: agent.agent_id.clone(),
            reason: "max dispatch attempts".to_owned(),
        });
        return;
    }
    if cooling_down(bead, now)
        || snapshot.is_blocked(&bead.bead_id)
        || options.draining
        || breaker.is_open()
    {
        return;
    }
    out.push(Action::redispatch(agent, bead));
}

/// B3: an in-progress issue untouched for more than 5 minutes whose agents are neither
/// working, stalled nor heartbeating within 90 s (#1358) goes back to open, or to failed once
/// its attempts are used up, and loses its assignee.
fn recover_lost_agent(snapshot: &Snapshot, now: Millis, bead: &Bead, out: &mut Vec<Action>) {
    if bead.status != BeadStatus::InProgress
        || !is_stale(Some(&bead.updated_at), now, STALE_IN_PROGRESS_TIMEOUT_MS)
    {
        return;
    }
    let alive = snapshot.hooked_to(&bead.bead_id).any(|a| {
        matches!(a.status, AgentStatus::Working | AgentStatus::Stalled)
            || !is_stale(a.last_activity_at.as_deref(), now, HEARTBEAT_STALE_MS)
    });
    if alive {
        return;
    }
    let (to, reason) = if out_of_attempts(bead) {
        (
            BeadStatus::Failed,
            format!(
                "agent lost, max dispatch attempts exhausted ({})",
                bead.dispatch_attempts
            ),
        )
    } else {
        (BeadStatus::Open, "agent lost".to_owned())
    };
    out.push(transition(bead, Some(BeadStatus::InProgress), to, reason));
    out.push(Action::ClearBeadAssignee {
        bead_id: bead.bead_id.clone(),
    });
}

/// B4: an issue in review for more than 5 minutes whose merge requests have all finished is
/// closed when one merged, else reopened (and unassigned).
fn settle_finished_reviews(snapshot: &Snapshot, now: Millis, bead: &Bead, out: &mut Vec<Action>) {
    if bead.status != BeadStatus::InReview
        || !is_stale(Some(&bead.updated_at), now, ORPHANED_SOURCE_TIMEOUT_MS)
    {
        return;
    }
    let mut mrs = snapshot
        .tracked_by(&bead.bead_id)
        .filter(|b| b.bead_type == BeadType::MergeRequest)
        .peekable();
    if mrs.peek().is_none() {
        return;
    }
    let mut merged = false;
    for mr in mrs {
        match mr.status {
            BeadStatus::Closed => merged = true,
            BeadStatus::Failed => {}
            _ => return,
        }
    }
    let from = Some(BeadStatus::InReview);
    if merged {
        out.push(transition(
            bead,
            from,
            BeadStatus::Closed,
            "MR merged (reconciler safety net)".to_owned(),
        ));
    } else {
        out.push(transition(
            bead,
            from,
            BeadStatus::Open,
            "all reviews failed".to_owned(),
        ));
        out.push(Action::ClearBeadAssignee {
            bead_id: bead.bead_id.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconciler::snapshot::SnapshotBuilder;
    use crate::testing::snapshot::*;
    use crate::vocabulary::time::{MINUTE, SECOND};

    const SHUT: Breaker = Breaker { failures: 0 };
    const OPEN: Breaker = Breaker { failures: 20 };

    fn run(b: SnapshotBuilder, now: Millis) -> Vec<Action> {
        reconcile(&b.build(), &Options::default(), SHUT, now)
    }

    fn run_with(b: SnapshotBuilder, draining: bool, breaker: Breaker) -> Vec<Action> {
        let opts = Options {
            draining,
            ..Options::default()
        };
        reconcile(&b.build(), &opts, breaker, T0)
    }

    fn dispatch(agent: Option<&str>, bead: &str, rig: &str) -> Action {
        Action::DispatchAgent {
            agent_id: agent.map(str::to_owned),
            bead_id: bead.into(),
            rig_id: rig.into(),
        }
    }

    fn to(bead: &str, from: Option<BeadStatus>, to: BeadStatus, reason: &str) -> Action {
        Action::TransitionBead {
            bead_id: bead.into(),
            from,
            to,
            reason: reason.into(),
            actor: "system".into(),
        }
    }

    fn clear(bead: &str) -> Action {
        Action::ClearBeadAssignee {
            bead_id: bead.into(),
        }
    }

    fn one(b: impl Into<Bead>) -> SnapshotBuilder {
        SnapshotBuilder::new().bead(b)
    }

    // B1

    #[test]
    fn b1_dispatches_open_unassigned_issues_to_an_agent_found_later() {
        assert_eq!(run(one(issue("b", "r1")), T0), [dispatch(None, "b", "r1")]);
    }

    #[test]
    fn b1_skips_what_is_not_ready_work() {
        let skipped = [
            issue("b", "r").assignee("a").bead(),
            issue("b", "r").no_rig().bead(),
            issue("b", "r").status(BeadStatus::InProgress).bead(),
            bead("b", BeadType::Message).rig("r").bead(),
            issue("b", "r").label(labels::TRIAGE_REQUEST).bead(),
        ];
        for b in skipped {
            let town = one(b.clone());
            let out = run(town, T0);
            assert!(
                !out.iter()
                    .any(|a| matches!(a, Action::DispatchAgent { .. })),
                "{b:?}: {out:?}"
            );
        }
    }

    #[test]
    fn b1_waits_for_live_blockers_only() {
        let blocked = |status| {
            one(issue("b", "r"))
                .bead(issue("x", "r").status(status).created(T0 - 1))
                .blocks_on("b", "x")
        };
        for live in [
            BeadStatus::Open,
            BeadStatus::InProgress,
            BeadStatus::InReview,
        ] {
            assert!(!run(blocked(live), T0).contains(&dispatch(None, "b", "r")));
        }
        for done in [BeadStatus::Closed, BeadStatus::Failed] {
            assert!(run(blocked(done), T0).contains(&dispatch(None, "b", "r")));
        }
        let missing = one(issue("b", "r")).blocks_on("b", "gone");
        assert_eq!(run(missing, T0), [dispatch(None, "b", "r")]);
    }

    #[test]
    fn b1_holds_members_of_a_staged_convoy() {
        let town = |c: ConvoyFixture| {
            one(issue("b", "r"))
                .bead(convoy_bead("c").created(T0 - 1))
                .convoy(c)
                .tracks("b", "c")
        };
        assert_eq!(run(town(convoy("c").staged()), T0), []);
        assert_eq!(run(town(convoy("c")), T0), [dispatch(None, "b", "r")]);
    }

    #[test]
    fn b1_backs_off_per_attempt_count_from_the_last_attempt() {
        for (attempts, wait) in [(1, 2), (2, 2), (3, 5), (4, 10)] {
            let town = one(issue("b", "r").attempts(attempts).last_attempt(T0));
            assert_eq!(run(town.clone(), T0 + wait * MINUTE), [], "{attempts}");
            assert_eq!(
                run(town, T0 + wait * MINUTE + 1),
                [dispatch(None, "b", "r")],
                "{attempts}"
            );
        }
    }

    #[test]
    fn b1_fails_a_bead_after_five_attempts_even_in_backoff_or_with_the_breaker_open() {
        let town = one(issue("b", "r").attempts(5).last_attempt(T0));
        let failed = [to(
            "b",
            Some(BeadStatus::Open),
            BeadStatus::Failed,
            "max dispatch attempts exceeded (5)",
        )];
        assert_eq!(run_with(town.clone(), false, OPEN)[..1], failed);
        assert_eq!(run(town, T0 + 1), failed);
        let four = one(issue("b", "r").attempts(4));
        assert_eq!(run(four, T0), [dispatch(None, "b", "r")]);
    }

    #[test]
    fn b1_does_nothing_while_draining_not_even_failing() {
        let town = one(issue("b", "r")).bead(issue("spent", "r").attempts(5).created(T0 + 1));
        assert_eq!(run_with(town, true, SHUT), []);
    }

    #[test]
    fn b1_pauses_while_the_breaker_is_open() {
        let out = run_with(one(issue("b", "r")), false, OPEN);
        assert!(!out
            .iter()
            .any(|a| matches!(a, Action::DispatchAgent { .. })));
    }

    // B1b

    #[test]
    fn b1b_clears_an_assignee_that_is_not_hooked_to_the_bead() {
        let town = one(issue("b", "r").assignee("a"))
            .agent(polecat("a", "r").hook("other"))
            .agent(
                polecat("x", "r")
                    .status(AgentStatus::Working)
                    .hook("b")
                    .created(T0 + 1),
            );
        assert_eq!(run(town, T0), [clear("b")]);
        let hooked = one(issue("b", "r").assignee("a"))
            .agent(polecat("a", "r").status(AgentStatus::Working).hook("b"));
        assert_eq!(run(hooked, T0), []);
    }

    #[test]
    fn b1b_leaves_system_triage_rigless_and_non_open_beads() {
        for b in [
            issue("b", "r").assignee("system").bead(),
            issue("b", "r")
                .assignee("a")
                .label(labels::TRIAGE_REQUEST)
                .bead(),
            issue("b", "r").assignee("a").no_rig().bead(),
            issue("b", "r")
                .assignee("a")
                .status(BeadStatus::InReview)
                .bead(),
        ] {
            assert_eq!(run(one(b.clone()), T0), [], "{b:?}");
        }
    }

    // B2

    fn hooked(bead: BeadFixture) -> SnapshotBuilder {
        one(bead.assignee("a")).agent(polecat("a", "agent-rig").hook("b"))
    }

    #[test]
    fn b2_redispatches_an_idle_hooked_polecat_with_the_bead_rig_then_its_own() {
        assert_eq!(
            run(hooked(issue("b", "r")), T0),
            [dispatch(Some("a"), "b", "r")]
        );
        assert_eq!(
            run(hooked(issue("b", "r").no_rig()), T0),
            [dispatch(Some("a"), "b", "agent-rig")]
        );
        let nowhere = one(issue("b", "r").no_rig().assignee("a"))
            .agent(agent("a", AgentRole::Polecat, None).hook("b"));
        assert_eq!(run(nowhere, T0), [dispatch(Some("a"), "b", "")]);
    }

    #[test]
    fn b2_fails_and_unhooks_after_five_attempts_before_any_other_check() {
        let out = run_with(
            hooked(issue("b", "r").attempts(5).last_attempt(T0)),
            true,
            OPEN,
        );
        assert_eq!(
            out[..2],
            [
                to(
                    "b",
                    None,
                    BeadStatus::Failed,
                    "max dispatch attempts exceeded (5)"
                ),
                Action::UnhookAgent {
                    agent_id: "a".into(),
                    reason: "max dispatch attempts".into()
                },
            ]
        );
    }

    #[test]
    fn b2_skips_in_backoff_blocked_draining_breaker_refinery_and_non_open() {
        let backoff = hooked(issue("b", "r").attempts(3).last_attempt(T0));
        assert_eq!(run(backoff.clone(), T0 + 5 * MINUTE), []);
        assert_eq!(
            run(backoff, T0 + 5 * MINUTE + 1),
            [dispatch(Some("a"), "b", "r")]
        );
        let blocked = hooked(issue("b", "r"))
            .bead(issue("x", "r").created(T0 - 1).assignee("system"))
            .blocks_on("b", "x");
        assert_eq!(run(blocked, T0), []);
        assert_eq!(run_with(hooked(issue("b", "r")), true, SHUT), []);
        let breaker = run_with(hooked(issue("b", "r")), false, OPEN);
        assert!(!breaker
            .iter()
            .any(|a| matches!(a, Action::DispatchAgent { .. })));
        let refinery = one(issue("b", "r").assignee("a")).agent(refinery("a", "r").hook("b"));
        assert_eq!(run(refinery, T0), []);
        let working = one(issue("b", "r").assignee("a").status(BeadStatus::InProgress))
            .agent(polecat("a", "r").hook("b"));
        assert_eq!(run(working, T0), []);
    }

    // B3

    fn in_progress(updated: Millis) -> BeadFixture {
        issue("b", "r")
            .status(BeadStatus::InProgress)
            .assignee("a")
            .updated(updated)
    }

    #[test]
    fn b3_reopens_after_strictly_more_than_five_minutes_without_an_agent() {
        let at = |now| run(one(in_progress(T0)), now);
        assert_eq!(at(T0 + 5 * MINUTE), []);
        assert_eq!(
            at(T0 + 5 * MINUTE + 1),
            [
                to(
                    "b",
                    Some(BeadStatus::InProgress),
                    BeadStatus::Open,
                    "agent lost"
                ),
                clear("b")
            ]
        );
    }

    #[test]
    fn b3_fails_after_five_attempts() {
        let town = one(in_progress(T0).attempts(5));
        assert_eq!(
            run(town, T0 + 6 * MINUTE),
            [
                to(
                    "b",
                    Some(BeadStatus::InProgress),
                    BeadStatus::Failed,
                    "agent lost, max dispatch attempts exhausted (5)"
                ),
                clear("b")
            ]
        );
    }

    #[test]
    fn b3_spares_beads_whose_agent_works_is_stalled_or_heartbeated_within_90_seconds() {
        let now = T0 + 10 * MINUTE;
        for status in [AgentStatus::Working, AgentStatus::Stalled] {
            let town =
                one(in_progress(T0)).agent(polecat("a", "r").status(status).hook("b").active(T0));
            assert_eq!(run(town, now), [], "{status}");
        }
        let idle = |beat| one(in_progress(T0)).agent(polecat("a", "r").hook("b").active(beat));
        assert_eq!(run(idle(now - 90 * SECOND), now), []);
        assert_eq!(run(idle(now - 90 * SECOND - 1), now).len(), 2);
    }

    // B4

    fn in_review(mr_statuses: &[BeadStatus]) -> SnapshotBuilder {
        let mut town = one(issue("b", "r")
            .status(BeadStatus::InReview)
            .assignee("a")
            .updated(T0));
        for (i, s) in mr_statuses.iter().enumerate() {
            let id = format!("mr{i}");
            town = town
                .bead(
                    merge_request(&id, "r")
                        .status(*s)
                        .created(T0 + 1 + i as i64),
                )
                .tracks(&id, "b");
        }
        town
    }

    #[test]
    fn b4_closes_when_a_review_merged_after_strictly_more_than_five_minutes() {
        let town = in_review(&[BeadStatus::Failed, BeadStatus::Closed]);
        assert_eq!(run(town.clone(), T0 + 5 * MINUTE), []);
        assert_eq!(
            run(town, T0 + 5 * MINUTE + 1),
            [to(
                "b",
                Some(BeadStatus::InReview),
                BeadStatus::Closed,
                "MR merged (reconciler safety net)"
            )]
        );
    }

    #[test]
    fn b4_reopens_when_every_review_failed() {
        assert_eq!(
            run(in_review(&[BeadStatus::Failed]), T0 + 6 * MINUTE),
            [
                to(
                    "b",
                    Some(BeadStatus::InReview),
                    BeadStatus::Open,
                    "all reviews failed"
                ),
                clear("b")
            ]
        );
    }

    #[test]
    fn b4_waits_for_live_reviews_and_ignores_beads_without_any() {
        let now = T0 + 6 * MINUTE;
        assert_eq!(run(in_review(&[]), now), []);
        for live in [BeadStatus::Open, BeadStatus::InProgress] {
            assert_eq!(run(in_review(&[BeadStatus::Closed, live]), now), []);
        }
    }

    // The breaker notice

    #[test]
    fn the_breaker_notice_comes_after_every_bead_rule() {
        let mut town = SnapshotBuilder::new().bead(in_progress(T0 - 6 * MINUTE).created(T0 - 1));
        for i in 0..20 {
            let id = format!("f{i}");
            town = town
                .bead(issue(&id, "r").attempts(1).last_attempt(T0))
                .dispatch_failed(&id);
        }
        let snapshot = town.build();
        let breaker = breaker::evaluate(&snapshot, T0);
        let out = reconcile(&snapshot, &Options::default(), breaker, T0);
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(matches!(out[0], Action::TransitionBead { .. }));
        assert!(matches!(out[2], Action::NotifyMayor { .. }));
    }
}
