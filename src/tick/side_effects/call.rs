//! A side effect as data: the [`Call`] the plan makes of it, and the [`Outcome`] the call comes
//! back as (the call's own data with the remote's answer).

use super::pull_requests::{MergeAttempt, Polled, Wanted};
use crate::effects::container::StartAgent;
use crate::effects::CallError;
use crate::vocabulary::actions::MayorNotice;

/// One remote exchange, with what its outcome settles.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Start {
        agent_id: String,
        bead_id: String,
        start: Box<StartAgent>,
    },
    Stop {
        agent_id: String,
        /// A GUPP force stop, re-issued by the next tick until the container confirms it.
        force: bool,
    },
    Poll {
        bead_id: String,
        pr_url: String,
        token: String,
        wanted: Wanted,
    },
    Merge {
        bead_id: String,
        pr_url: String,
        token: String,
    },
    Nudge {
        agent_id: String,
        nudge_id: String,
        prompt: String,
    },
    Mail {
        agent_id: String,
        mail_ids: Vec<String>,
        prompt: String,
    },
    /// Tell the mayor: messaged when alive, else started with `message` as its prompt.
    Mayor {
        mayor_id: String,
        message: String,
        heard: Heard,
        start: Box<StartAgent>,
    },
}

impl Call {
    /// Whether the call may start an agent (so the container token goes first).
    pub fn starts(&self) -> bool {
        matches!(self, Call::Start { .. } | Call::Mayor { .. })
    }
}

/// What the mayor hearing a message settles.
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    /// A notice recorded on the town.
    Notice(MayorNotice),
    /// Its mail, now delivered.
    Mail(Vec<String>),
}

/// The container token, pushed before the plan's starts (`POST /refresh-token`).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenPush {
    pub token: String,
    pub town_id: String,
}

/// What one effect became.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Call(Call),
    /// It could not be made into a call: its outcome, a failure that says why.
    NotPrepared(Outcome),
}

/// The tick's side effects as calls, in the order of the effects.
#[derive(Debug, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Pushed first when a call may start an agent.
    pub token: Option<TokenPush>,
    /// The town's `X-Town-Config` (empty without credentials: then nothing is started).
    pub header: String,
}

/// What one effect came to: the data of its call and the remote's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A start; `start` is `None` when no body could be made (then it was not sent).
    Start {
        agent_id: String,
        bead_id: String,
        start: Option<Box<StartAgent>>,
        result: Result<(), CallError>,
    },
    Stop {
        agent_id: String,
        force: bool,
        result: Result<(), CallError>,
    },
    Poll {
        bead_id: String,
        pr_url: String,
        wanted: Wanted,
        polled: Polled,
    },
    Merge {
        bead_id: String,
        pr_url: String,
        attempt: MergeAttempt,
    },
    Nudge {
        agent_id: String,
        nudge_id: String,
        result: Result<(), CallError>,
    },
    Mail {
        agent_id: String,
        mail_ids: Vec<String>,
        result: Result<(), CallError>,
    },
    /// The mayor was messaged (`Ok(false)`) or started (`Ok(true)`); `mayor_id` is `None` when
    /// no call could be made.
    Mayor {
        mayor_id: Option<String>,
        heard: Heard,
        result: Result<bool, CallError>,
    },
}

impl Outcome {
    /// The action type of the effect (logs and metrics).
    pub fn type_name(&self) -> &'static str {
        match self {
            Outcome::Start { .. } => "dispatch_agent",
            Outcome::Stop { .. } => "stop_agent",
            Outcome::Poll { .. } => "poll_pr",
            Outcome::Merge { .. } => "merge_pr",
            Outcome::Nudge { .. } => "send_nudge",
            Outcome::Mail { .. } => "deliver_mail",
            Outcome::Mayor {
                heard: Heard::Notice(_),
                ..
            } => "notify_mayor",
            Outcome::Mayor {
                heard: Heard::Mail(_),
                ..
            } => "mail_mayor",
        }
    }

    /// Whether the effect was made into a call (a start or a mayor's notification may not be).
    pub fn was_prepared(&self) -> bool {
        match self {
            Outcome::Start { start, .. } => start.is_some(),
            Outcome::Mayor { mayor_id, .. } => mayor_id.is_some(),
            Outcome::Stop { .. }
            | Outcome::Poll { .. }
            | Outcome::Merge { .. }
            | Outcome::Nudge { .. }
            | Outcome::Mail { .. } => true,
        }
    }

    /// Why the effect failed, or `None` when the remote accepted it.
    pub fn error(&self) -> Option<String> {
        let error = match self {
            Outcome::Start { result, .. }
            | Outcome::Stop { result, .. }
            | Outcome::Nudge { result, .. }
            | Outcome::Mail { result, .. } => result.as_ref().err(),
            Outcome::Mayor { result, .. } => result.as_ref().err(),
            Outcome::Poll { polled, .. } => match (&polled.state, &polled.feedback) {
                (Err(e), _) | (_, Some(Err(e))) => Some(e),
                _ => None,
            },
            Outcome::Merge { attempt, .. } => match attempt {
                MergeAttempt::Merged => None,
                MergeAttempt::NotGreen(why) => return Some(why.clone()),
                MergeAttempt::Failed(e) => Some(e),
            },
        };
        error.map(CallError::to_string)
    }

    /// The outcome of `call` when it was not sent, for `why`.
    pub(super) fn not_sent(call: Call, why: &str) -> Self {
        let error = CallError::NotSent(why.to_owned());
        match call {
            Call::Start {
                agent_id,
                bead_id,
                start,
            } => Outcome::Start {
                agent_id,
                bead_id,
                start: Some(start),
                result: Err(error),
            },
            Call::Stop { agent_id, force } => Outcome::Stop {
                agent_id,
                force,
                result: Err(error),
            },
            Call::Poll {
                bead_id,
                pr_url,
                wanted,
                ..
            } => Outcome::Poll {
                bead_id,
                pr_url,
                wanted,
                polled: Polled {
                    state: Err(error),
                    feedback: None,
                },
            },
            Call::Merge {
                bead_id, pr_url, ..
            } => Outcome::Merge {
                bead_id,
                pr_url,
                attempt: MergeAttempt::Failed(error),
            },
            Call::Nudge {
                agent_id, nudge_id, ..
            } => Outcome::Nudge {
                agent_id,
                nudge_id,
                result: Err(error),
            },
            Call::Mail {
                agent_id, mail_ids, ..
            } => Outcome::Mail {
                agent_id,
                mail_ids,
                result: Err(error),
            },
            Call::Mayor {
                mayor_id, heard, ..
            } => Outcome::Mayor {
                mayor_id: Some(mayor_id),
                heard,
                result: Err(error),
            },
        }
    }

    /// A dispatch that was never sent, and why.
    pub(super) fn not_started(agent_id: &str, bead_id: &str, why: String) -> Self {
        Outcome::Start {
            agent_id: agent_id.to_owned(),
            bead_id: bead_id.to_owned(),
            start: None,
            result: Err(CallError::NotSent(why)),
        }
    }

    /// A mayor notification that was never sent, and why.
    pub(super) fn mayor_not_told(heard: Heard, why: String) -> Self {
        Outcome::Mayor {
            mayor_id: None,
            heard,
            result: Err(CallError::NotSent(why)),
        }
    }
}
