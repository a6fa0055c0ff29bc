//! What a PR poll or a merge attempt means for the town (GASTOWN-DOMAIN.md 4.3-4.4): counting
//! failed polls, recording `pr_status_changed`, `pr_feedback_detected` and `pr_auto_merge`, and
//! the auto-merge grace timer.

use crate::domain::error::DomainError;
use crate::domain::{beads, object, reviews, Ctx, SYSTEM};
use crate::effects::github::{PrFeedback, PrState};
use crate::effects::pr_url::PrRef;
use crate::effects::CallError;
use crate::params;
use crate::store::{dependencies, events::Subject};
use crate::vocabulary::config::RefineryConfig;
use crate::vocabulary::events::{EventKind, PrAutoMerge, PrFeedbackDetected, PrStatusChanged};
use crate::vocabulary::model::{labels, BeadStatus, DependencyType, FailureReason};
use crate::vocabulary::time::{iso, parse_iso, MINUTE};
use serde_json::json;

/// Consecutive failed polls after which the merge request fails (`PR_POLL_NULL_THRESHOLD`).
pub const POLL_NULL_THRESHOLD: i64 = 10;

/// Which PR checks a poll of an open PR needs, from the town's refinery settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub auto_resolve: bool,
    /// Minutes of all-green before merging; `None` = no auto-merge timer.
    pub auto_merge_delay_minutes: Option<u32>,
}

impl Wanted {
    pub fn of(refinery: &RefineryConfig) -> Self {
        Self {
            auto_resolve: refinery.auto_resolve_pr_feedback,
            auto_merge_delay_minutes: refinery
                .auto_merge
                .then_some(refinery.auto_merge_delay_minutes)
                .flatten(),
        }
    }

    pub fn feedback(&self) -> bool {
        self.auto_resolve || self.auto_merge_delay_minutes.is_some()
    }
}

/// What a poll learnt.
#[derive(Debug, Clone, PartialEq)]
pub struct Polled {
    pub state: Result<PrState, CallError>,
    /// Asked only for an open PR when [`Wanted::feedback`].
    pub feedback: Option<Result<PrFeedback, CallError>>,
}

/// Applies a poll's result to the merge request.
pub fn settle_poll(
    ctx: &Ctx<'_>,
    mr_id: &str,
    pr_url: &str,
    wanted: Wanted,
    polled: &Polled,
) -> Result<(), DomainError> {
    let (mr, review) = reviews::get(ctx, mr_id)?;
    if mr.status.is_terminal() {
        return Ok(());
    }
    let state = match &polled.state {
        Err(e) => {
            let count = mr
                .metadata
                .get("poll_null_count")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0)
                + 1;
            beads::merge_metadata(ctx, mr_id, &object(json!({"poll_null_count": count})))?;
            if count >= POLL_NULL_THRESHOLD {
                let message = format!(
                    "{count} consecutive PR status checks failed (last: {e}); check the GitHub \
                     token and that the API is reachable"
                );
                beads::merge_metadata(
                    ctx,
                    mr_id,
                    &object(json!({"failureReason": "pr_poll_failed", "failureMessage": message})),
                )?;
                let reason = FailureReason::new("pr_poll_failed", message, "scheduler");
                beads::set_status(ctx, mr_id, BeadStatus::Failed, SYSTEM, Some(&reason))?;
            }
            return Ok(());
        }
        Ok(state) => *state,
    };
    beads::merge_metadata(ctx, mr_id, &object(json!({"poll_null_count": 0})))?;
    if state != PrState::Open {
        let kind = EventKind::PrStatusChanged(PrStatusChanged {
            pr_url: pr_url.to_owned(),
            pr_state: state.as_str().to_owned(),
        });
        ctx.record(&kind, &Subject::bead(mr_id))?;
        return Ok(());
    }
    let Some(Ok(feedback)) = &polled.feedback else {
        return Ok(());
    };
    if wanted.auto_resolve {
        let needs_work = feedback.has_unresolved_comments
            || feedback.has_failing_checks
            || feedback.has_unchecked_runs;
        if needs_work && !has_live_feedback_bead(ctx, mr_id)? {
            let pr = PrRef::parse(pr_url).ok();
            let kind = EventKind::PrFeedbackDetected(PrFeedbackDetected {
                mr_bead_id: mr_id.to_owned(),
                pr_url: pr_url.to_owned(),
                pr_number: pr.as_ref().map_or(0, |p| p.number),
                repo: pr.as_ref().map_or_else(String::new, PrRef::slug),
                branch: review.branch.clone(),
                has_unresolved_comments: feedback.has_unresolved_comments,
                has_failing_checks: feedback.has_failing_checks,
                has_unchecked_runs: feedback.has_unchecked_runs,
            });
            ctx.record(&kind, &Subject::bead(mr_id))?;
        }
        ctx.sql.execute(
            "UPDATE review_metadata SET last_feedback_check_at = ? WHERE bead_id = ?",
            &params![iso(ctx.now), mr_id],
        )?;
    }
    if let Some(delay) = wanted.auto_merge_delay_minutes {
        let green = !feedback.has_unresolved_comments
            && !feedback.has_failing_checks
            && feedback.all_checks_pass;
        match (
            green,
            review.auto_merge_ready_since.as_deref().and_then(parse_iso),
        ) {
            (false, _) => set_ready_since(ctx, mr_id, None)?,
            (true, None) => set_ready_since(ctx, mr_id, Some(&iso(ctx.now)))?,
            (true, Some(since)) if ctx.now - since >= i64::from(delay) * MINUTE => {
                let kind = EventKind::PrAutoMerge(PrAutoMerge {
                    mr_bead_id: mr_id.to_owned(),
                    pr_url: pr_url.to_owned(),
                });
                ctx.record(&kind, &Subject::bead(mr_id))?;
            }
            (true, Some(_)) => {}
        }
    }
    Ok(())
}

fn has_live_feedback_bead(ctx: &Ctx<'_>, mr_id: &str) -> Result<bool, DomainError> {
    Ok(
        dependencies::targets(ctx.sql, mr_id, DependencyType::Blocks, None)?
            .into_iter()
            .any(|b| b.has_label(labels::PR_FEEDBACK) && !b.status.is_terminal()),
    )
}

fn set_ready_since(ctx: &Ctx<'_>, mr_id: &str, at: Option<&str>) -> Result<(), DomainError> {
    ctx.sql.execute(
        "UPDATE review_metadata SET auto_merge_ready_since = ? WHERE bead_id = ?",
        &params![at, mr_id],
    )?;
    Ok(())
}

/// What a merge attempt did.
#[derive(Debug, Clone, PartialEq)]
pub enum MergeAttempt {
    /// The re-check found the PR not green (why): nothing was merged, and the merge failed.
    NotGreen(String),
    Merged,
    /// The re-check or the merge call failed (a refused merge: 405, or 409 for a head pushed
    /// after the check).
    Failed(CallError),
}

impl MergeAttempt {
    /// The attempt for a PR whose re-check said `feedback`: not green, with what is wrong, or
    /// `None` when it may be merged at its checked head.
    pub fn not_green(feedback: &PrFeedback) -> Option<Self> {
        let wrong: Vec<&str> = [
            (
                feedback.has_unresolved_comments,
                "unresolved review threads",
            ),
            (feedback.has_failing_checks, "failing checks"),
            (
                !feedback.has_failing_checks && !feedback.all_checks_pass,
                "checks not all passed",
            ),
        ]
        .into_iter()
        .filter_map(|(wrong, what)| wrong.then_some(what))
        .collect();
        (!wrong.is_empty()).then(|| Self::NotGreen(format!("not green: {}", wrong.join(", "))))
    }
}

/// Applies a merge attempt: merged -> `pr_status_changed`; otherwise the pending flag and the
/// grace timer are cleared, so a new all-green period must pass first.
pub fn settle_merge(
    ctx: &Ctx<'_>,
    mr_id: &str,
    pr_url: &str,
    attempt: &MergeAttempt,
) -> Result<(), DomainError> {
    if let MergeAttempt::Merged = attempt {
        let kind = EventKind::PrStatusChanged(PrStatusChanged {
            pr_url: pr_url.to_owned(),
            pr_state: PrState::Merged.as_str().to_owned(),
        });
        ctx.record(&kind, &Subject::bead(mr_id))?;
        return Ok(());
    }
    beads::merge_metadata(ctx, mr_id, &object(json!({"auto_merge_pending": null})))?;
    set_ready_since(ctx, mr_id, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feedback(unresolved: bool, failing: bool, pass: bool) -> PrFeedback {
        PrFeedback {
            head_sha: "abc".into(),
            has_unresolved_comments: unresolved,
            has_failing_checks: failing,
            all_checks_pass: pass,
            has_unchecked_runs: false,
        }
    }

    #[test]
    fn only_a_green_pr_may_be_merged_and_a_red_one_says_why() {
        assert_eq!(MergeAttempt::not_green(&feedback(false, false, true)), None);
        let why = |f| match MergeAttempt::not_green(&f) {
            Some(MergeAttempt::NotGreen(why)) => why,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            why(feedback(true, true, false)),
            "not green: unresolved review threads, failing checks"
        );
        assert_eq!(
            why(feedback(false, false, false)),
            "not green: checks not all passed"
        );
    }
}
