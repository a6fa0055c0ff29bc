//! reconcileReviewQueue (GASTOWN-DOMAIN.md 3.5): poll and merge pull requests, recover stuck
//! or abandoned reviews, feed each rig's refinery one direct review at a time, and stop a
//! refinery whose merge request already finished.
//!
//! The per-MR rules (R1-R4) read live merge requests (open or in progress) that have a review
//! row; one without is malformed and left alone, as the original's inner join did. Merge
//! requests without a rig never reach a refinery (R5); the original looked one up for a NULL
//! rig, found none and dispatched with no rig.

use super::breaker::Breaker;
use super::constants::{
    ABANDONED_MR_TIMEOUT_MS, ORPHANED_PR_REVIEW_TIMEOUT_MS, PR_POLL_INTERVAL_MS,
    STUCK_REVIEW_TIMEOUT_MS,
};
use super::snapshot::Snapshot;
use super::timing::{cooling_down, is_stale, out_of_attempts};
use super::{transition, Options};
use crate::vocabulary::actions::Action;
use crate::vocabulary::model::{Agent, AgentRole, AgentStatus, Bead, BeadStatus, BeadType, Review};
use crate::vocabulary::time::{parse_iso, Millis};
use serde_json::Value as Json;
use std::collections::HashMap;

/// A live merge request with its review row.
type Mr<'a> = (&'a Bead, &'a Review);

pub fn reconcile(
    snapshot: &Snapshot,
    options: &Options,
    breaker: Breaker,
    now: Millis,
) -> Vec<Action> {
    let mut out = Vec::new();
    let mrs: Vec<Mr<'_>> = snapshot
        .beads()
        .iter()
        .filter(|b| {
            b.bead_type == BeadType::MergeRequest
                && matches!(b.status, BeadStatus::Open | BeadStatus::InProgress)
        })
        .filter_map(|b| Some((b, snapshot.review(&b.bead_id)?)))
        .collect();
    for &(mr, review) in &mrs {
        match &review.pr_url {
            Some(pr_url) => {
                poll_and_merge(mr, pr_url, now, &mut out);
                if options.refinery_code_review {
                    fail_orphaned_pr_review(snapshot, mr, now, &mut out);
                }
            }
            None => recover_direct_review(snapshot, mr, now, &mut out),
        }
    }
    if options.refinery_code_review {
        pop_queue(snapshot, options, breaker, &mrs, &mut out);
        for agent in snapshot.agents() {
            redispatch_refinery(snapshot, options, breaker, now, agent, &mut out);
        }
    } else {
        skip_refinery(&mrs, &mut out);
    }
    for agent in snapshot.agents() {
        stop_refinery_of_finished_mr(snapshot, agent, &mut out);
    }
    out
}

fn someone_works_on(snapshot: &Snapshot, mr: &Bead) -> bool {
    snapshot
        .hooked_to(&mr.bead_id)
        .any(|a| matches!(a.status, AgentStatus::Working | AgentStatus::Stalled))
}

/// When the PR was last polled: `metadata.last_poll_at` as ISO text or epoch milliseconds.
fn last_poll(mr: &Bead) -> Option<Millis> {
    match mr.metadata.get("last_poll_at")? {
        Json::String(s) => parse_iso(s),
        Json::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// R1: a PR under review is polled at most every 60 s (#1632); one whose auto-merge is pending
/// is merged (every tick while pending; `merge_pr` clears the flag when it fails).
fn poll_and_merge(mr: &Bead, pr_url: &str, now: Millis, out: &mut Vec<Action>) {
    if mr.status != BeadStatus::InProgress {
        return;
    }
    if last_poll(mr).is_none_or(|t| now - t >= PR_POLL_INTERVAL_MS) {
        out.push(Action::PollPr {
            bead_id: mr.bead_id.clone(),
            pr_url: pr_url.to_owned(),
        });
    }
    if mr.flag("auto_merge_pending") {
        out.push(Action::MergePr {
            bead_id: mr.bead_id.clone(),
            pr_url: pr_url.to_owned(),
        });
    }
}

/// R2 and R3, for a direct review (no PR) in progress. Untouched for more than 2 minutes while
/// waiting for a live rework blocker: normal, nothing to do. R2: untouched for more than 30
/// minutes with no working or stalled agent: back to open, unhooking one idle agent still
/// hooked. R3: untouched for more than 2 minutes with no agent hooked at all: back to open.
/// Where the original emitted both R2's and R3's identical transition for one MR, R3 here only
/// fires when R2 did not (the second was a no-op that inflated `actions_emitted`).
fn recover_direct_review(snapshot: &Snapshot, mr: &Bead, now: Millis, out: &mut Vec<Action>) {
    let from = Some(BeadStatus::InProgress);
    if mr.status != BeadStatus::InProgress
        || !is_stale(Some(&mr.updated_at), now, ABANDONED_MR_TIMEOUT_MS)
        || snapshot.is_blocked(&mr.bead_id)
    {
        return;
    }
    if is_stale(Some(&mr.updated_at), now, STUCK_REVIEW_TIMEOUT_MS)
        && !someone_works_on(snapshot, mr)
    {
        out.push(transition(
            mr,
            from,
            BeadStatus::Open,
            "stuck review, no working agent".to_owned(),
        ));
        if let Some(idle) = snapshot
            .hooked_to(&mr.bead_id)
            .find(|a| a.status == AgentStatus::Idle)
        {
            out.push(Action::UnhookAgent {
                agent_id: idle.agent_id.clone(),
                reason: "stuck review cleanup".to_owned(),
            });
        }
    } else if snapshot.hooked_to(&mr.bead_id).next().is_none() {
        out.push(transition(
            mr,
            from,
            BeadStatus::Open,
            "abandoned, no agent hooked".to_owned(),
        ));
    }
}

/// R4 (only with refinery code review): a PR review in progress untouched for more than 30
/// minutes (polling refreshes it) with no working or stalled agent has failed.
///
/// "Untouched" is judged as of the town's previous tick: only polls the town could have made
/// count against the review. After an outage (the town not ticking), the review's age is the
/// one its last look saw, and this tick's poll refreshes it; the original failed every PR
/// review in progress after any outage over 30 minutes. While ticking, this delays R4 by one
/// tick interval at most.
fn fail_orphaned_pr_review(snapshot: &Snapshot, mr: &Bead, now: Millis, out: &mut Vec<Action>) {
    let watched_until = snapshot
        .town()
        .previous_tick_at
        .as_deref()
        .and_then(parse_iso)
        .map_or(now, |t| t.min(now));
    if mr.status == BeadStatus::InProgress
        && is_stale(
            Some(&mr.updated_at),
            watched_until,
            ORPHANED_PR_REVIEW_TIMEOUT_MS,
        )
        && !someone_works_on(snapshot, mr)
    {
        out.push(transition(
            mr,
            Some(BeadStatus::InProgress),
            BeadStatus::Failed,
            "PR review orphaned".to_owned(),
        ));
    }
}

/// With refinery code review off, open PR reviews go straight to polling; direct reviews wait.
fn skip_refinery(mrs: &[Mr<'_>], out: &mut Vec<Action>) {
    for &(mr, review) in mrs {
        if mr.status == BeadStatus::Open && review.pr_url.is_some() {
            out.push(transition(
                mr,
                Some(BeadStatus::Open),
                BeadStatus::InProgress,
                "refinery code review disabled — skip to poll_pr".to_owned(),
            ));
        }
    }
}

/// One rig's review queue.
#[derive(Default)]
struct RigQueue<'a> {
    /// A direct review is in progress: the refinery is busy (PR reviews do not serialize it).
    busy: bool,
    oldest_open: Option<&'a Bead>,
}

/// R5: for each rig with open reviews and no direct review in progress, the oldest open review
/// goes to the rig's refinery: hooked and dispatched when the refinery is idle and unhooked,
/// dispatched to a refinery made when applying when the rig has none. Draining and the breaker
/// hold the queue.
fn pop_queue(
    snapshot: &Snapshot,
    options: &Options,
    breaker: Breaker,
    mrs: &[Mr<'_>],
    out: &mut Vec<Action>,
) {
    let mut order: Vec<&str> = Vec::new();
    let mut queues: HashMap<&str, RigQueue<'_>> = HashMap::new();
    for &(mr, review) in mrs {
        let Some(rig) = mr.rig_id.as_deref() else {
            continue;
        };
        let queue = queues.entry(rig).or_insert_with(|| {
            order.push(rig);
            RigQueue::default()
        });
        match mr.status {
            BeadStatus::InProgress if review.pr_url.is_none() => queue.busy = true,
            BeadStatus::Open if queue.oldest_open.is_none() => queue.oldest_open = Some(mr),
            _ => {}
        }
    }
    let mut refineries: HashMap<&str, &Agent> = HashMap::new();
    for agent in snapshot.agents() {
        if let (AgentRole::Refinery, Some(rig)) = (agent.role, agent.rig_id.as_deref()) {
            refineries.entry(rig).or_insert(agent);
        }
    }
    for rig in order {
        let queue = &queues[rig];
        let Some(mr) = queue.oldest_open else {
            continue;
        };
        if queue.busy || options.draining || breaker.is_open() {
            continue;
        }
        let pop = |reason: &str| {
            transition(
                mr,
                Some(BeadStatus::Open),
                BeadStatus::InProgress,
                reason.to_owned(),
            )
        };
        match refineries.get(rig) {
            None => {
                out.push(pop("popped for review (creating refinery)"));
                out.push(Action::DispatchAgent {
                    agent_id: None,
                    bead_id: mr.bead_id.clone(),
                    rig_id: rig.to_owned(),
                });
            }
            Some(r) if r.status != AgentStatus::Idle || r.current_hook_bead_id.is_some() => {}
            Some(r) => {
                out.push(pop("popped for review"));
                out.push(Action::HookAgent {
                    agent_id: r.agent_id.clone(),
                    bead_id: mr.bead_id.clone(),
                });
                out.push(Action::DispatchAgent {
                    agent_id: Some(r.agent_id.clone()),
                    bead_id: mr.bead_id.clone(),
                    rig_id: rig.to_owned(),
                });
            }
        }
    }
}

/// R6: an idle refinery hooked to a review in progress is dispatched again. Checks in order:
/// draining, max attempts (fail the review and unhook, before the backoff so an exhausted
/// review fails at once), backoff, breaker.
fn redispatch_refinery(
    snapshot: &Snapshot,
    options: &Options,
    breaker: Breaker,
    now: Millis,
    agent: &Agent,
    out: &mut Vec<Action>,
) {
    if agent.role != AgentRole::Refinery || agent.status != AgentStatus::Idle {
        return;
    }
    let Some(mr) = agent
        .current_hook_bead_id
        .as_deref()
        .and_then(|h| snapshot.bead(h))
        .filter(|b| b.bead_type == BeadType::MergeRequest && b.status == BeadStatus::InProgress)
    else {
        return;
    };
    if options.draining {
        return;
    }
    if out_of_attempts(mr) {
        out.push(transition(
            mr,
            None,
            BeadStatus::Failed,
            format!(
                "refinery max dispatch attempts exceeded ({})",
                mr.dispatch_attempts
            ),
        ));
        out.push(Action::UnhookAgent {
            agent_id: agent.agent_id.clone(),
            reason: "max dispatch attempts".to_owned(),
        });
        return;
    }
    if cooling_down(mr, now) || breaker.is_open() {
        return;
    }
    out.push(Action::redispatch(agent, mr));
}

/// R7: a working or stalled refinery whose review already finished is stopped (so it does not
/// comment on a PR that auto-merge already merged). It stays hooked until the container confirms
/// the stop, when the settle unhooks it (`tick::side_effects::settle`): a stop that failed or was deferred
/// leaves the refinery as it was, so the next tick stops it again. Unhooked in the same pass, as
/// the original did, a lost stop call was never retried and the refinery kept running.
fn stop_refinery_of_finished_mr(snapshot: &Snapshot, agent: &Agent, out: &mut Vec<Action>) {
    if agent.role != AgentRole::Refinery
        || !matches!(agent.status, AgentStatus::Working | AgentStatus::Stalled)
    {
        return;
    }
    let Some(mr) = agent
        .current_hook_bead_id
        .as_deref()
        .and_then(|h| snapshot.bead(h))
        .filter(|b| b.status.is_terminal())
    else {
        return;
    };
    out.push(Action::StopAgent {
        agent_id: agent.agent_id.clone(),
        reason: format!("MR bead {} is {}", mr.bead_id, mr.status),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconciler::snapshot::{SnapshotBuilder, TownState};
    use crate::testing::snapshot::*;
    use crate::vocabulary::time::{iso, HOUR, MINUTE, SECOND};

    const SHUT: Breaker = Breaker { failures: 0 };
    const OPEN: Breaker = Breaker { failures: 20 };
    const PR: &str = "https://github.com/gastown/r/pull/7";
    /// Beyond every review timeout.
    const PAST_AN_HOUR: Millis = 61 * MINUTE;

    fn run(b: SnapshotBuilder, now: Millis) -> Vec<Action> {
        reconcile(&b.build(), &Options::default(), SHUT, now)
    }

    fn run_with(b: SnapshotBuilder, options: Options, breaker: Breaker) -> Vec<Action> {
        reconcile(&b.build(), &options, breaker, T0)
    }

    fn draining() -> Options {
        Options {
            draining: true,
            ..Options::default()
        }
    }

    fn no_code_review() -> Options {
        Options {
            refinery_code_review: false,
            ..Options::default()
        }
    }

    /// A town with one merge request `m` (and its review row, with a PR when `pr`).
    fn with_mr(mr: BeadFixture, pr: bool) -> SnapshotBuilder {
        let mr: Bead = mr.into();
        let row = review(&mr.bead_id);
        let row = if pr { row.pr(PR) } else { row };
        SnapshotBuilder::new().bead(mr).review(row)
    }

    fn mr(id: &str, status: BeadStatus) -> BeadFixture {
        merge_request(id, "r").status(status)
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

    fn poll(bead: &str) -> Action {
        Action::PollPr {
            bead_id: bead.into(),
            pr_url: PR.into(),
        }
    }

    fn dispatch(agent: Option<&str>, bead: &str, rig: &str) -> Action {
        Action::DispatchAgent {
            agent_id: agent.map(str::to_owned),
            bead_id: bead.into(),
            rig_id: rig.into(),
        }
    }

    fn unhook(agent: &str, reason: &str) -> Action {
        Action::UnhookAgent {
            agent_id: agent.into(),
            reason: reason.into(),
        }
    }

    // R1

    #[test]
    fn r1_polls_a_pr_never_polled_or_polled_at_least_60_seconds_ago() {
        let fresh = |now| mr("m", BeadStatus::InProgress).updated(now);
        assert_eq!(run(with_mr(fresh(T0), true), T0), [poll("m")]);
        for last in [json_iso(T0), serde_json::json!(T0)] {
            let town = with_mr(fresh(T0).meta("last_poll_at", last.clone()), true);
            assert_eq!(run(town.clone(), T0 + 60 * SECOND - 1), [], "{last}");
            assert_eq!(run(town, T0 + 60 * SECOND), [poll("m")], "{last}");
        }
        let open = run(with_mr(mr("m", BeadStatus::Open), true), T0);
        assert!(!open.iter().any(|a| matches!(a, Action::PollPr { .. })));
    }

    fn json_iso(at: Millis) -> serde_json::Value {
        iso(at).into()
    }

    #[test]
    fn r1_merges_while_auto_merge_is_pending_whatever_the_poll_schedule() {
        let town = with_mr(
            mr("m", BeadStatus::InProgress)
                .meta("last_poll_at", json_iso(T0))
                .meta("auto_merge_pending", 1),
            true,
        );
        assert_eq!(
            run(town, T0),
            [Action::MergePr {
                bead_id: "m".into(),
                pr_url: PR.into()
            }]
        );
        let off = with_mr(
            mr("m", BeadStatus::InProgress)
                .meta("last_poll_at", json_iso(T0))
                .meta("auto_merge_pending", 0),
            true,
        );
        assert_eq!(run(off, T0), []);
    }

    // R2 and R3

    fn direct(updated: Millis) -> BeadFixture {
        mr("m", BeadStatus::InProgress).updated(updated)
    }

    #[test]
    fn r2_reopens_a_direct_review_stuck_over_30_minutes_and_unhooks_its_idle_agent() {
        // Its last dispatch is recent enough that R6 does not re-dispatch it.
        let town = with_mr(direct(T0).attempts(1).last_attempt(T0 + 30 * MINUTE), false)
            .agent(refinery("a", "r").hook("m"));
        assert_eq!(run(town.clone(), T0 + 30 * MINUTE), []);
        assert_eq!(
            run(town, T0 + 30 * MINUTE + 1),
            [
                to(
                    "m",
                    Some(BeadStatus::InProgress),
                    BeadStatus::Open,
                    "stuck review, no working agent"
                ),
                unhook("a", "stuck review cleanup"),
            ]
        );
    }

    #[test]
    fn r2_spares_a_review_with_a_working_or_stalled_agent() {
        for status in [AgentStatus::Working, AgentStatus::Stalled] {
            let town = with_mr(direct(T0), false).agent(
                refinery("a", "r")
                    .status(status)
                    .hook("m")
                    .active(T0 + PAST_AN_HOUR),
            );
            assert_eq!(run(town, T0 + PAST_AN_HOUR), [], "{status}");
        }
    }

    #[test]
    fn r3_reopens_a_direct_review_with_no_agent_after_strictly_more_than_2_minutes() {
        let town = with_mr(direct(T0), false);
        assert_eq!(run(town.clone(), T0 + 2 * MINUTE), []);
        let abandoned = [to(
            "m",
            Some(BeadStatus::InProgress),
            BeadStatus::Open,
            "abandoned, no agent hooked",
        )];
        assert_eq!(run(town.clone(), T0 + 2 * MINUTE + 1), abandoned);
        // Past 30 minutes R2 reopens it; R3 does not repeat the same transition.
        let once = run(town, T0 + PAST_AN_HOUR);
        assert_eq!(
            once,
            [to(
                "m",
                Some(BeadStatus::InProgress),
                BeadStatus::Open,
                "stuck review, no working agent"
            )]
        );
    }

    #[test]
    fn r2_and_r3_wait_for_a_live_rework_blocker() {
        let blocked = |status| {
            with_mr(direct(T0), false)
                .bead(
                    issue("fix", "r")
                        .status(status)
                        .assignee("system")
                        .created(T0 - 1),
                )
                .blocks_on("m", "fix")
        };
        assert_eq!(run(blocked(BeadStatus::InProgress), T0 + PAST_AN_HOUR), []);
        assert_eq!(run(blocked(BeadStatus::Closed), T0 + PAST_AN_HOUR).len(), 1);
    }

    // R4

    fn polled_pr(updated: Millis, now: Millis) -> BeadFixture {
        mr("m", BeadStatus::InProgress)
            .updated(updated)
            .meta("last_poll_at", json_iso(now))
    }

    #[test]
    fn r4_fails_a_pr_review_orphaned_over_30_minutes() {
        let at = |now| run(with_mr(polled_pr(T0, now), true), now);
        assert_eq!(at(T0 + 30 * MINUTE), []);
        assert_eq!(
            at(T0 + 30 * MINUTE + 1),
            [to(
                "m",
                Some(BeadStatus::InProgress),
                BeadStatus::Failed,
                "PR review orphaned"
            )]
        );
    }

    #[test]
    fn r4_does_not_fail_a_review_for_the_time_the_town_was_not_ticking() {
        let orphaned = [to(
            "m",
            Some(BeadStatus::InProgress),
            BeadStatus::Failed,
            "PR review orphaned",
        )];
        let ticked_at = |previous: Millis, now: Millis| {
            let town = TownState {
                previous_tick_at: Some(iso(previous)),
                ..TownState::default()
            };
            run(with_mr(polled_pr(T0, now), true).town(town), now)
        };
        // Touched at T0, then the town was down for two hours: the first tick back spares it.
        assert_eq!(ticked_at(T0 + 5 * SECOND, T0 + 2 * HOUR), []);
        // Ticking all along: stale as of the previous tick fails it.
        assert_eq!(
            ticked_at(T0 + 30 * MINUTE + 1, T0 + 30 * MINUTE + 5 * SECOND),
            orphaned
        );
        assert_eq!(
            ticked_at(T0 + 30 * MINUTE, T0 + 30 * MINUTE + 5 * SECOND),
            []
        );
    }

    #[test]
    fn r4_spares_worked_on_reviews_and_is_off_without_code_review() {
        let now = T0 + PAST_AN_HOUR;
        let worked = with_mr(polled_pr(T0, now), true).agent(
            refinery("a", "r")
                .status(AgentStatus::Working)
                .hook("m")
                .active(now),
        );
        assert_eq!(run(worked, now), []);
        let town = with_mr(polled_pr(T0, now), true).build();
        assert_eq!(reconcile(&town, &no_code_review(), SHUT, now), []);
    }

    // Code review disabled

    #[test]
    fn without_code_review_open_pr_reviews_skip_the_refinery_and_direct_ones_wait() {
        let town = with_mr(mr("pr", BeadStatus::Open), true)
            .bead(mr("direct", BeadStatus::Open).created(T0 + 1))
            .review(review("direct"))
            .agent(refinery("idle", "r"))
            .bead(mr("hooked", BeadStatus::InProgress).created(T0 + 2))
            .review(review("hooked"))
            .agent(refinery("busy", "r").hook("hooked").created(T0 + 1));
        assert_eq!(
            run_with(town, no_code_review(), SHUT),
            [to(
                "pr",
                Some(BeadStatus::Open),
                BeadStatus::InProgress,
                "refinery code review disabled — skip to poll_pr"
            )]
        );
    }

    // R5

    fn popped(mr: &str, agent: &str) -> [Action; 3] {
        [
            to(
                mr,
                Some(BeadStatus::Open),
                BeadStatus::InProgress,
                "popped for review",
            ),
            Action::HookAgent {
                agent_id: agent.into(),
                bead_id: mr.into(),
            },
            dispatch(Some(agent), mr, "r"),
        ]
    }

    fn queue() -> SnapshotBuilder {
        with_mr(mr("newer", BeadStatus::Open).created(T0 + 5), false)
            .bead(mr("older", BeadStatus::Open))
            .review(review("older"))
    }

    #[test]
    fn r5_gives_the_oldest_open_review_to_the_idle_refinery() {
        let town = queue().agent(refinery("ref", "r"));
        assert_eq!(run(town, T0), popped("older", "ref"));
    }

    #[test]
    fn r5_creates_the_refinery_when_the_rig_has_none() {
        let town = queue().agent(refinery("elsewhere", "other-rig"));
        assert_eq!(
            run(town, T0),
            [
                to(
                    "older",
                    Some(BeadStatus::Open),
                    BeadStatus::InProgress,
                    "popped for review (creating refinery)"
                ),
                dispatch(None, "older", "r"),
            ]
        );
    }

    #[test]
    fn r5_serializes_direct_reviews_only() {
        // A review in progress (just touched, no agent on it yet), and an idle refinery.
        let busy = |pr: bool| {
            let running: Bead = mr("running", BeadStatus::InProgress)
                .updated(T0)
                .meta("last_poll_at", json_iso(T0))
                .created(T0 - 1)
                .into();
            let row = if pr {
                review("running").pr(PR)
            } else {
                review("running")
            };
            queue()
                .bead(running)
                .review(row)
                .agent(refinery("ref", "r"))
        };
        assert_eq!(run(busy(false), T0), []);
        assert_eq!(run(busy(true), T0), popped("older", "ref"));
    }

    #[test]
    fn r5_waits_for_a_busy_refinery_a_drain_and_the_breaker() {
        let working = queue().agent(refinery("ref", "r").status(AgentStatus::Working).active(T0));
        assert_eq!(run(working, T0), []);
        let hooked = queue().agent(refinery("ref", "r").hook("elsewhere")).bead(
            issue("elsewhere", "r")
                .status(BeadStatus::InProgress)
                .assignee("ref"),
        );
        assert_eq!(run(hooked, T0), []);
        let idle = queue().agent(refinery("ref", "r"));
        assert_eq!(run_with(idle.clone(), draining(), SHUT), []);
        assert_eq!(run_with(idle, Options::default(), OPEN), []);
    }

    #[test]
    fn r5_serves_every_rig_and_skips_reviews_without_a_rig() {
        let town = queue()
            .agent(refinery("ref", "r"))
            .bead(merge_request("r2-mr", "r2").created(T0 + 1))
            .review(review("r2-mr"))
            .agent(refinery("ref2", "r2").created(T0 + 1))
            .bead(merge_request("nowhere", "r").no_rig().created(T0 - 5))
            .review(review("nowhere"));
        let out = run(town, T0);
        let mut expected = popped("older", "ref").to_vec();
        expected.extend([
            to(
                "r2-mr",
                Some(BeadStatus::Open),
                BeadStatus::InProgress,
                "popped for review",
            ),
            Action::HookAgent {
                agent_id: "ref2".into(),
                bead_id: "r2-mr".into(),
            },
            dispatch(Some("ref2"), "r2-mr", "r2"),
        ]);
        assert_eq!(out, expected);
    }

    // R6

    fn hooked_refinery(mr: BeadFixture) -> SnapshotBuilder {
        with_mr(mr.updated(T0), false).agent(refinery("ref", "ref-rig").hook("m"))
    }

    #[test]
    fn r6_redispatches_an_idle_refinery_to_its_review_with_the_review_rig_then_its_own() {
        let town = hooked_refinery(mr("m", BeadStatus::InProgress));
        assert_eq!(run(town, T0), [dispatch(Some("ref"), "m", "r")]);
        let rigless = hooked_refinery(mr("m", BeadStatus::InProgress).no_rig());
        assert_eq!(run(rigless, T0), [dispatch(Some("ref"), "m", "ref-rig")]);
    }

    #[test]
    fn r6_backs_off_between_attempts() {
        let town = hooked_refinery(
            mr("m", BeadStatus::InProgress)
                .attempts(4)
                .last_attempt(T0 - 10 * MINUTE),
        );
        assert_eq!(run(town.clone(), T0), []);
        assert_eq!(run(town, T0 + 1), [dispatch(Some("ref"), "m", "r")]);
    }

    #[test]
    fn r6_fails_an_exhausted_review_at_once_but_never_while_draining() {
        let town = hooked_refinery(mr("m", BeadStatus::InProgress).attempts(5).last_attempt(T0));
        let failed = [
            to(
                "m",
                None,
                BeadStatus::Failed,
                "refinery max dispatch attempts exceeded (5)",
            ),
            unhook("ref", "max dispatch attempts"),
        ];
        assert_eq!(run_with(town.clone(), Options::default(), OPEN), failed);
        assert_eq!(run_with(town, draining(), SHUT), []);
    }

    #[test]
    fn r6_skips_other_hooks_and_the_open_breaker() {
        let open_mr = hooked_refinery(mr("m", BeadStatus::Open));
        assert!(!run(open_mr, T0).iter().any(|a| matches!(
            a,
            Action::DispatchAgent {
                agent_id: Some(_),
                ..
            }
        )));
        let issue_hook = SnapshotBuilder::new()
            .bead(issue("m", "r").status(BeadStatus::InProgress).updated(T0))
            .agent(refinery("ref", "r").hook("m"));
        assert_eq!(run(issue_hook, T0), []);
        let town = hooked_refinery(mr("m", BeadStatus::InProgress));
        assert_eq!(run_with(town, Options::default(), OPEN), []);
    }

    // R7

    #[test]
    fn r7_stops_a_working_or_stalled_refinery_whose_review_finished() {
        for (agent_status, mr_status) in [
            (AgentStatus::Working, BeadStatus::Closed),
            (AgentStatus::Stalled, BeadStatus::Failed),
        ] {
            let town = SnapshotBuilder::new().bead(mr("m", mr_status)).agent(
                refinery("ref", "r")
                    .status(agent_status)
                    .hook("m")
                    .active(T0),
            );
            assert_eq!(
                run_with(town, draining(), SHUT),
                [Action::StopAgent {
                    agent_id: "ref".into(),
                    reason: format!("MR bead m is {mr_status}"),
                },]
            );
        }
        let live = with_mr(mr("m", BeadStatus::InProgress).updated(T0), false).agent(
            refinery("ref", "r")
                .status(AgentStatus::Working)
                .hook("m")
                .active(T0),
        );
        assert_eq!(run(live, T0), []);
    }
}
