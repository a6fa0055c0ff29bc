//! Running a plan's calls: the container token first when a call may start an agent, then every
//! call, at most `concurrency` in flight and none started after the tick's deadline. Each call
//! comes back as an [`Outcome`]: the call's own data with what the remote answered.
//!
//! The mayor's notification is the one call of several requests: its status first, then a
//! message when it is alive, else a start with the message as its prompt. A merge re-checks
//! the PR first and merges only a green PR at the head it checked.

use super::call::{Call, Outcome, Plan, Step};
use super::pull_requests::{MergeAttempt, Polled};
use crate::concurrency::run_bounded;
use crate::effects::container::{Container, StartAgent};
use crate::effects::github::{GitHub, PrState};
use crate::effects::remotes::Remotes;
use crate::effects::CallError;
use crate::ports::{Clock, Http};
use crate::vocabulary::time::Millis;

/// The plan's calls made: each step's outcome, in order, and the token push's answer (`None`
/// when no push was planned).
#[derive(Debug)]
pub struct Ran {
    pub outcomes: Vec<Outcome>,
    pub token: Option<Result<(), CallError>>,
}

/// Makes the calls of `plan`; none starts later than `deadline` by `clock`.
pub async fn run<H: Http>(
    http: &H,
    clock: &dyn Clock,
    remotes: &Remotes,
    plan: Plan,
    deadline: Millis,
) -> Ran {
    let container = remotes.container(http);
    let token = match &plan.token {
        Some(push) => Some(container.refresh_token(&push.token, &push.town_id).await),
        None => None,
    };
    // A container that refused the token gets no start this tick; one that could not be
    // reached (asleep, booting) takes the token with the starts instead, as the original
    // tolerates.
    let refused = match &token {
        Some(Err(e)) if answered(e) => Some(format!("the container refused the token push: {e}")),
        _ => None,
    };
    let (header, refused) = (plan.header.as_str(), refused.as_deref());
    let container = &container;
    let outcomes = run_bounded(
        plan.steps
            .into_iter()
            .map(|step| async move {
                let call = match step {
                    Step::Call(call) => call,
                    Step::NotPrepared(outcome) => return outcome,
                };
                if clock.now_ms() > deadline {
                    return Outcome::not_sent(call, "not started before the tick deadline");
                }
                match (call.starts(), refused) {
                    (true, Some(why)) => Outcome::not_sent(call, why),
                    _ => one(http, container, remotes, header, call).await,
                }
            })
            .collect(),
        remotes.concurrency,
    )
    .await;
    Ran { outcomes, token }
}

/// Whether the remote got the request and answered no (not: it was never reached or sent).
fn answered(error: &CallError) -> bool {
    match error {
        CallError::Status(_) | CallError::Answered { .. } | CallError::BadBody(_) => true,
        CallError::Timeout | CallError::Network(_) | CallError::Refused(_) => false,
        CallError::NotSent(_) => false,
    }
}

/// Makes one call; `header` is the town's `X-Town-Config`.
async fn one<H: Http>(
    http: &H,
    container: &Container<'_, H>,
    remotes: &Remotes,
    header: &str,
    call: Call,
) -> Outcome {
    match call {
        Call::Start {
            agent_id,
            bead_id,
            start,
        } => Outcome::Start {
            result: container.start(header, &start).await,
            agent_id,
            bead_id,
            start: Some(start),
        },
        Call::Stop { agent_id, force } => Outcome::Stop {
            result: container.stop(&agent_id).await,
            agent_id,
            force,
        },
        Call::Nudge {
            agent_id,
            nudge_id,
            prompt,
        } => Outcome::Nudge {
            result: container.message(&agent_id, &prompt).await,
            agent_id,
            nudge_id,
        },
        Call::Mail {
            agent_id,
            mail_ids,
            prompt,
        } => Outcome::Mail {
            result: container.message(&agent_id, &prompt).await,
            agent_id,
            mail_ids,
        },
        Call::Mayor {
            mayor_id,
            message,
            heard,
            start,
        } => Outcome::Mayor {
            result: tell_mayor(container, header, &mayor_id, &message, &start).await,
            mayor_id: Some(mayor_id),
            heard,
        },
        Call::Poll {
            bead_id,
            pr_url,
            token,
            wanted,
        } => {
            let github = GitHub::new(http, remotes.github_base.clone(), token);
            let state = github.pr_status(&pr_url).await;
            let feedback = match &state {
                Ok(PrState::Open) if wanted.feedback() => Some(github.feedback(&pr_url).await),
                _ => None,
            };
            Outcome::Poll {
                bead_id,
                pr_url,
                wanted,
                polled: Polled { state, feedback },
            }
        }
        Call::Merge {
            bead_id,
            pr_url,
            token,
        } => {
            let github = GitHub::new(http, remotes.github_base.clone(), token);
            Outcome::Merge {
                attempt: merge(&github, &pr_url).await,
                bead_id,
                pr_url,
            }
        }
    }
}

/// The mayor hears `message`: messaged when alive (`false`), else started with it (`true`).
async fn tell_mayor<H: Http>(
    container: &Container<'_, H>,
    header: &str,
    mayor_id: &str,
    message: &str,
    start: &StartAgent,
) -> Result<bool, CallError> {
    if container.status(mayor_id).await?.state.is_alive() {
        container.message(mayor_id, message).await.map(|()| false)
    } else {
        container.start(header, start).await.map(|()| true)
    }
}

/// Merges a PR at the head its re-check saw, only when that re-check is green; without a checked
/// head nothing is merged (the original merged unpinned when the re-check failed, 4.4).
async fn merge<H: Http>(github: &GitHub<'_, H>, pr_url: &str) -> MergeAttempt {
    let feedback = match github.feedback(pr_url).await {
        Ok(f) => f,
        Err(e) => return MergeAttempt::Failed(e),
    };
    if let Some(not_green) = MergeAttempt::not_green(&feedback) {
        return not_green;
    }
    match github.merge(pr_url, &feedback.head_sha).await {
        Ok(()) => MergeAttempt::Merged,
        Err(e) => MergeAttempt::Failed(e),
    }
}
