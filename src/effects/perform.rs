//! Running one tick's side effects in three steps: prepare (synchronous bookkeeping before a
//! call: dispatch counters and the start payload), call (concurrently, at most `concurrency` in
//! flight, none started after the deadline), settle (synchronous: what each answer means).
//!
//! Outcomes are truthful (the original counted almost everything as succeeded, 4.5): an effect
//! succeeded only when the remote accepted it; an effect that could not be prepared, was refused,
//! timed out, got a non-2xx or an unparsable answer, or was not started before the deadline
//! failed. Each failure is logged as structured JSON with its reason.

use super::container::{Container, ContainerTimeouts, StartAgent};
use super::credentials::{config_digest, Credentials};
use super::github::{GitHub, PrState};
use super::pull_requests::{self, MergeAttempt, Polled, Wanted};
use super::{dispatch, CallError};
use crate::concurrency::run_bounded;
use crate::domain::{agents, beads, mail, nudges, Ctx};
use crate::metrics::layout::blob;
use crate::metrics::writer::Analytics;
use crate::ports::{Clock, Http};
use crate::reconciler::gupp;
use crate::sql::atomically;
use crate::sql::SqlError;
use crate::store::rigs as rig_store;
use crate::store::town::{self, Town};
use crate::store::upkeep;
use crate::vocabulary::actions::{Effect, MayorNotice};
use crate::vocabulary::model::{AgentRole, AgentStatus, Rig};
use crate::vocabulary::time::Millis;

/// Where the remotes are and how to reach them.
#[derive(Debug, Clone, PartialEq)]
pub struct Remotes {
    /// The container's base URL (`http://container` for the town's Durable Object or the
    /// service binding).
    pub container_base: String,
    pub github_base: String,
    /// `GITHUB_TOKEN`, used when the town has no token of its own.
    pub github_token: String,
    /// `GASTOWN_JWT_SECRET`: signs the container and agent tokens ('' = unset: no starts).
    pub jwt_secret: String,
    /// `GASTOWN_API_URL`: this Worker's public base URL, where agents call back.
    pub gastown_api_url: String,
    pub container_timeouts: ContainerTimeouts,
    /// Side effects in flight at once.
    pub concurrency: usize,
    /// No side effect starts later than this after the tick began.
    pub deadline_ms: Millis,
    /// Most agents observed per tick (`TICK_OBSERVE_BUDGET`).
    pub observe_budget: usize,
    /// The observation phase's deadline from its start (`TICK_OBSERVE_DEADLINE_MS`).
    pub observe_deadline_ms: Millis,
    /// Remote calls per tick, all phases together (`TICK_SUBREQUEST_BUDGET`).
    pub subrequest_budget: usize,
}

impl Remotes {
    /// The client of the town's container, with the configured timeouts.
    pub fn container<'h, H: Http>(&self, http: &'h H) -> Container<'h, H> {
        Container::new(http, self.container_base.clone()).with_timeouts(self.container_timeouts)
    }
}

/// How the side effects of a tick went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub attempted: u64,
    pub succeeded: u64,
    pub failed: u64,
}

/// An effect ready to call.
enum Call {
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
    Message {
        agent_id: String,
        nudge_id: String,
        prompt: String,
    },
    Mail {
        agent_id: String,
        mail_ids: Vec<String>,
        prompt: String,
    },
    Mayor {
        mayor_id: String,
        message: String,
        heard: Heard,
        start: Box<StartAgent>,
    },
}

/// What the mayor hearing a message settles.
enum Heard {
    /// A notice recorded on the town.
    Notice(MayorNotice),
    /// Its mail, now delivered.
    Mail(Vec<String>),
}

/// What a call came back with.
enum Answer {
    Started(Result<(), CallError>),
    Stopped(Result<(), CallError>),
    Polled(Polled),
    Merge(MergeAttempt),
    Delivered(Result<(), CallError>),
    /// The mayor was messaged (`false`) or started (`true`).
    Mayor(Result<bool, CallError>),
    /// Not sent, and why (the tick's deadline passed; the container refused the token push).
    NotSent(String),
}

impl Answer {
    fn error(&self) -> Option<String> {
        let e = match self {
            Answer::Started(Err(e)) | Answer::Stopped(Err(e)) | Answer::Delivered(Err(e)) => e,
            Answer::Mayor(Err(e)) | Answer::Merge(MergeAttempt::Failed(e)) => e,
            Answer::Polled(p) => match (&p.state, &p.feedback) {
                (Err(e), _) | (_, Some(Err(e))) => e,
                _ => return None,
            },
            Answer::NotSent(why) | Answer::Merge(MergeAttempt::NotGreen(why)) => {
                return Some(why.clone())
            }
            _ => return None,
        };
        Some(e.to_string())
    }
}

/// The GitHub token of this town: its own, its CLI PAT, else the Worker's secret.
fn github_token(town: Option<&Town>, remotes: &Remotes) -> String {
    town.and_then(|t| {
        t.config
            .git_auth
            .github_token
            .clone()
            .or_else(|| t.config.github_cli_pat.clone())
    })
    .unwrap_or_else(|| remotes.github_token.clone())
}

/// The town row and its rigs, read once for a batch of effects: the batch is prepared
/// synchronously, so nothing can change them in between.
struct Batch {
    town: Option<Town>,
    rigs: Vec<Rig>,
}

impl Batch {
    fn read(ctx: &Ctx<'_>, effects: &[Effect]) -> Self {
        let logged = |what: &str, e: SqlError| {
            crate::log::error(
                "side_effects_unread",
                &[("what", what), ("error", &e.to_string())],
            );
        };
        if effects.is_empty() {
            return Self {
                town: None,
                rigs: Vec::new(),
            };
        }
        let town = town::get(ctx.sql).unwrap_or_else(|e| {
            logged("town", e);
            None
        });
        let rigs = if effects.iter().any(starts_agents) {
            rig_store::list(ctx.sql).unwrap_or_else(|e| {
                logged("rigs", e);
                Vec::new()
            })
        } else {
            Vec::new()
        };
        Self { town, rigs }
    }

    /// The batch's tokens and credentials, or why there are none (logged once).
    fn credentials<'b>(
        &'b self,
        remotes: &'b Remotes,
        now: Millis,
    ) -> Result<Credentials<'b>, String> {
        let town = self
            .town
            .as_ref()
            .ok_or_else(|| "the town row is missing".to_owned())?;
        Credentials::new(town, &remotes.jwt_secret, &remotes.gastown_api_url, now).map_err(|e| {
            let why = e.to_string();
            crate::log::error("container_starts_refused", &[("why", &why)]);
            why
        })
    }
}

/// Whether an effect may start an agent (a dispatch, or a mayor that is not alive).
fn starts_agents(effect: &Effect) -> bool {
    matches!(
        effect,
        Effect::Dispatch { .. } | Effect::NotifyMayor { .. } | Effect::MailMayor { .. }
    )
}

/// Prepares the tick's dispatches together (`dispatch::prepare_all`), in one unit: a start
/// payload, or why there is none, for each `Effect::Dispatch` of `effects`, in order.
fn prepare_starts(
    ctx: &Ctx<'_>,
    creds: &Result<Credentials<'_>, String>,
    batch: &Batch,
    effects: &[Effect],
) -> Vec<Result<StartAgent, String>> {
    let wanted: Vec<dispatch::Wanted<'_>> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Dispatch {
                agent_id,
                bead_id,
                rig_id,
            } => Some(dispatch::Wanted {
                agent_id,
                bead_id,
                rig_id,
            }),
            _ => None,
        })
        .collect();
    let all_fail = |why: &str| wanted.iter().map(|_| Err(why.to_owned())).collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let creds = match creds {
        Ok(c) => c,
        Err(why) => return all_fail(why),
    };
    let prepared = atomically(ctx.sql, || {
        dispatch::prepare_all(ctx, creds, &batch.rigs, &wanted)
    });
    match prepared {
        Ok(starts) => starts
            .into_iter()
            .map(|s| s.map_err(|e| e.to_string()))
            .collect(),
        Err(e) => all_fail(&e.to_string()),
    }
}

/// Prepares one effect against what the batch read; a dispatch takes the next of `starts`.
fn prepare(
    ctx: &Ctx<'_>,
    remotes: &Remotes,
    creds: &Result<Credentials<'_>, String>,
    batch: &Batch,
    effect: &Effect,
    starts: &mut impl Iterator<Item = Result<StartAgent, String>>,
) -> Result<Call, String> {
    let town = batch.town.as_ref();
    Ok(match effect {
        Effect::Dispatch {
            agent_id, bead_id, ..
        } => Call::Start {
            agent_id: agent_id.clone(),
            bead_id: bead_id.clone(),
            start: Box::new(starts.next().expect("a start prepared for each dispatch")?),
        },
        Effect::Stop { agent_id, reason } => Call::Stop {
            agent_id: agent_id.clone(),
            force: reason == gupp::FORCE_STOP_REASON,
        },
        Effect::PollPr { bead_id, pr_url } => Call::Poll {
            bead_id: bead_id.clone(),
            pr_url: pr_url.clone(),
            token: github_token(town, remotes),
            wanted: Wanted::of(&town.map(|t| t.config.refinery.clone()).unwrap_or_default()),
        },
        Effect::MergePr { bead_id, pr_url } => Call::Merge {
            bead_id: bead_id.clone(),
            pr_url: pr_url.clone(),
            token: github_token(town, remotes),
        },
        Effect::Nudge {
            agent_id,
            nudge_id,
            message,
        } => Call::Message {
            agent_id: agent_id.clone(),
            nudge_id: nudge_id.clone(),
            prompt: message.clone(),
        },
        Effect::DeliverMail {
            agent_id,
            mail_ids,
            prompt,
        } => Call::Mail {
            agent_id: agent_id.clone(),
            mail_ids: mail_ids.clone(),
            prompt: prompt.clone(),
        },
        Effect::NotifyMayor { message, notice } => {
            mayor_call(ctx, creds, batch, message, Heard::Notice(*notice))?
        }
        Effect::MailMayor { mail_ids, message } => {
            mayor_call(ctx, creds, batch, message, Heard::Mail(mail_ids.clone()))?
        }
    })
}

/// The mayor-notification call: the mayor (registered if the town has none yet) and the start
/// that runs it with `message` as its prompt if it is not alive.
fn mayor_call(
    ctx: &Ctx<'_>,
    creds: &Result<Credentials<'_>, String>,
    batch: &Batch,
    message: &str,
    heard: Heard,
) -> Result<Call, String> {
    let creds = creds.as_ref().map_err(Clone::clone)?;
    let (mayor, start) = atomically(ctx.sql, || {
        let mayor = agents::get_or_create(ctx, AgentRole::Mayor, None)?;
        let start = dispatch::mayor_start(creds, &mayor, &batch.rigs, message);
        Ok::<_, crate::domain::DomainError>((mayor, start))
    })
    .map_err(|e| e.to_string())?;
    Ok(Call::Mayor {
        mayor_id: mayor.agent_id,
        message: message.to_owned(),
        heard,
        start: Box::new(start),
    })
}

/// Makes one call; `header` is the town's `X-Town-Config`.
async fn call<H: Http>(http: &H, remotes: &Remotes, header: &str, c: &Call) -> Answer {
    let container = remotes.container(http);
    match c {
        Call::Start { start, .. } => Answer::Started(container.start(header, start).await),
        Call::Stop { agent_id, .. } => Answer::Stopped(container.stop(agent_id).await),
        Call::Message {
            agent_id, prompt, ..
        }
        | Call::Mail {
            agent_id, prompt, ..
        } => Answer::Delivered(container.message(agent_id, prompt).await),
        Call::Mayor {
            mayor_id,
            message,
            start,
            ..
        } => Answer::Mayor(match container.status(mayor_id).await {
            Ok(p) if p.state.is_alive() => {
                container.message(mayor_id, message).await.map(|()| false)
            }
            Ok(_) => container.start(header, start).await.map(|()| true),
            Err(e) => Err(e),
        }),
        Call::Poll {
            pr_url,
            token,
            wanted,
            ..
        } => {
            let github = GitHub::new(http, remotes.github_base.clone(), token.clone());
            let state = github.pr_status(pr_url).await;
            let feedback = match &state {
                Ok(PrState::Open) if wanted.feedback() => Some(github.feedback(pr_url).await),
                _ => None,
            };
            Answer::Polled(Polled { state, feedback })
        }
        Call::Merge { pr_url, token, .. } => {
            let github = GitHub::new(http, remotes.github_base.clone(), token.clone());
            // The merge pins the head the re-check saw; without a checked head nothing is
            // merged (the original merged unpinned when the re-check failed, 4.4).
            let feedback = match github.feedback(pr_url).await {
                Ok(f) => f,
                Err(e) => return Answer::Merge(MergeAttempt::Failed(e)),
            };
            if let Some(not_green) = MergeAttempt::not_green(&feedback) {
                return Answer::Merge(not_green);
            }
            Answer::Merge(match github.merge(pr_url, &feedback.head_sha).await {
                Ok(()) => MergeAttempt::Merged,
                Err(e) => MergeAttempt::Failed(e),
            })
        }
    }
}

fn settle(ctx: &Ctx<'_>, analytics: &Analytics<'_>, c: &Call, answer: &Answer) {
    let result = atomically(ctx.sql, || -> Result<(), crate::domain::DomainError> {
        match (c, answer) {
            // Accepted starts are settled together (`settle_started`).
            (Call::Start { .. }, Answer::Started(Ok(()))) => {}
            (
                Call::Start {
                    agent_id,
                    bead_id,
                    start,
                },
                failure,
            ) => {
                let reason = failure.error().unwrap_or_default();
                dispatch::failed(ctx, agent_id, bead_id, &reason)?;
                let mut p = analytics.internal("agent.dispatch_failed");
                p.set_blob(blob::AGENT_ID, agent_id)
                    .set_blob(blob::BEAD_ID, bead_id)
                    .set_blob(blob::RIG_ID, &start.rig_id)
                    .set_blob(blob::ROLE, start.role.as_str())
                    .set_blob(blob::LABEL, &reason);
                analytics.write(p);
            }
            (
                Call::Poll {
                    bead_id,
                    pr_url,
                    wanted,
                    ..
                },
                Answer::Polled(polled),
            ) => {
                pull_requests::settle_poll(ctx, bead_id, pr_url, *wanted, polled)?;
            }
            (
                Call::Poll {
                    bead_id,
                    pr_url,
                    wanted,
                    ..
                },
                _,
            ) => {
                let late = Polled {
                    state: Err(CallError::Timeout),
                    feedback: None,
                };
                pull_requests::settle_poll(ctx, bead_id, pr_url, *wanted, &late)?;
            }
            (
                Call::Merge {
                    bead_id, pr_url, ..
                },
                Answer::Merge(attempt),
            ) => {
                pull_requests::settle_merge(ctx, bead_id, pr_url, attempt)?;
            }
            (Call::Stop { force: true, .. }, Answer::Stopped(Ok(()))) => {}
            (Call::Stop { agent_id, .. }, Answer::Stopped(Ok(()))) => {
                // R7's stop of a refinery whose review finished, confirmed: only now is it
                // unhooked (a stop that failed leaves it hooked, and R7 stops it again).
                let agent = match agents::get(ctx, agent_id) {
                    Err(e) if e.is_not_found() => return Ok(()),
                    found => found?,
                };
                let finished = match agent.current_hook_bead_id.as_deref() {
                    None => false,
                    Some(hook) => match beads::get(ctx, hook) {
                        Err(e) if e.is_not_found() => true,
                        found => found?.status.is_terminal(),
                    },
                };
                if finished {
                    agents::unhook_of(ctx, agent)?;
                }
            }
            (
                Call::Stop {
                    agent_id,
                    force: true,
                },
                failure,
            ) => {
                // Not confirmed: the agent may still run. Working again, it is force-stopped
                // again by the next tick's GUPP pass (which sees it silent for over 2 hours).
                let agent = match agents::get(ctx, agent_id) {
                    Err(e) if e.is_not_found() => return Ok(()),
                    found => found?,
                };
                if agent.status == AgentStatus::Stalled {
                    agents::set_status_of(ctx, agent, AgentStatus::Working)?;
                    crate::log::warn(
                        "gupp_stop_unconfirmed",
                        &[
                            ("agent_id", agent_id),
                            ("error", &failure.error().unwrap_or_default()),
                        ],
                    );
                }
            }
            (
                Call::Message {
                    agent_id, nudge_id, ..
                },
                Answer::Delivered(Ok(())),
            ) => {
                nudges::mark_delivered(ctx, agent_id, nudge_id)?;
            }
            (
                Call::Mail {
                    agent_id, mail_ids, ..
                },
                Answer::Delivered(Ok(())),
            ) => {
                mail::pushed(ctx, agent_id, mail_ids)?;
            }
            (
                Call::Mayor {
                    mayor_id, heard, ..
                },
                Answer::Mayor(Ok(started)),
            ) => {
                if *started {
                    agents::set_status(ctx, mayor_id, AgentStatus::Working)?;
                }
                match heard {
                    Heard::Notice(notice) => record_notice(ctx, *notice)?,
                    Heard::Mail(mail_ids) => {
                        mail::pushed(ctx, mayor_id, mail_ids)?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    });
    if let Err(e) = result {
        crate::log::error("side_effect_settle_failed", &[("error", &e.to_string())]);
    }
}

/// The starts the container accepted (agent, bead, start), settled in one unit: a busy tick
/// accepts hundreds, and settling each alone cost two statements and a transaction apiece.
fn settle_started(ctx: &Ctx<'_>, analytics: &Analytics<'_>, starts: &[(&str, &str, &StartAgent)]) {
    if starts.is_empty() {
        return;
    }
    let ids: Vec<(&str, &str)> = starts.iter().map(|(a, b, _)| (*a, *b)).collect();
    if let Err(e) = atomically(ctx.sql, || dispatch::started(ctx, &ids)) {
        crate::log::error("side_effect_settle_failed", &[("error", &e.to_string())]);
        return;
    }
    for (agent_id, bead_id, start) in starts {
        let mut p = analytics.internal("agent.spawned");
        p.set_blob(blob::AGENT_ID, agent_id)
            .set_blob(blob::BEAD_ID, bead_id)
            .set_blob(blob::RIG_ID, &start.rig_id)
            .set_blob(blob::ROLE, start.role.as_str());
        analytics.write(p);
    }
}

/// The mayor heard the breaker notice: record it on the town, so it is sent once per opening
/// (and retried by the next tick's reconcile while it has not been heard).
fn record_notice(ctx: &Ctx<'_>, notice: MayorNotice) -> Result<(), crate::domain::DomainError> {
    let at = match notice {
        MayorNotice::BreakerOpened => Some(crate::vocabulary::time::iso(ctx.now)),
        MayorNotice::BreakerClosed => None,
    };
    ctx.sql.execute(
        "UPDATE town SET breaker_notified_at = ? WHERE singleton = 1",
        &crate::params![at],
    )?;
    Ok(())
}

/// Runs the effects and returns their tally.
pub async fn perform<H: Http>(
    ctx: &Ctx<'_>,
    clock: &dyn Clock,
    analytics: &Analytics<'_>,
    http: &H,
    remotes: &Remotes,
    effects: &[Effect],
    started_at: Millis,
) -> Tally {
    let mut tally = Tally {
        attempted: effects.len() as u64,
        ..Tally::default()
    };
    let mut calls = Vec::with_capacity(effects.len());
    let batch = Batch::read(ctx, effects);
    let creds = if effects.iter().any(starts_agents) {
        batch.credentials(remotes, ctx.now)
    } else {
        Err("no agent is started".to_owned())
    };
    let mut starts = prepare_starts(ctx, &creds, &batch, effects).into_iter();
    for effect in effects {
        match prepare(ctx, remotes, &creds, &batch, effect, &mut starts) {
            Ok(c) => calls.push((effect, c)),
            Err(reason) => {
                tally.failed += 1;
                crate::log::warn(
                    "side_effect_failed",
                    &[
                        ("type", effect.type_name()),
                        ("stage", "prepare"),
                        ("error", &reason),
                    ],
                );
                if let Effect::Dispatch {
                    agent_id, bead_id, ..
                } = effect
                {
                    // Never sent: release the agent and the bead as a refused start would.
                    let released = atomically(ctx.sql, || {
                        dispatch::failed(ctx, agent_id, bead_id, &reason)
                    });
                    if let Err(e) = released {
                        crate::log::error("dispatch_release_failed", &[("error", &e.to_string())]);
                    }
                }
            }
        }
    }
    let header = creds.as_ref().map(Credentials::town_config).ok();
    let starting = calls
        .iter()
        .any(|(_, c)| matches!(c, Call::Start { .. } | Call::Mayor { .. }));
    let refused = match (&creds, starting) {
        (Ok(creds), true) => push_token(ctx, http, remotes, creds).await,
        _ => None,
    };
    let deadline = started_at + remotes.deadline_ms;
    let (config, refused) = (header.as_deref(), refused.as_deref());
    let answers = run_bounded(
        calls
            .iter()
            .map(|(_, c)| async move {
                if clock.now_ms() > deadline {
                    return Answer::NotSent("not started before the tick deadline".into());
                }
                if let (Call::Start { .. } | Call::Mayor { .. }, Some(why)) = (c, refused) {
                    return Answer::NotSent(why.to_owned());
                }
                call(http, remotes, config.unwrap_or_default(), c).await
            })
            .collect(),
        remotes.concurrency,
    )
    .await;
    let settle_ctx = Ctx {
        sql: ctx.sql,
        ids: ctx.ids,
        now: clock.now_ms().max(ctx.now),
    };
    let mut accepted = Vec::new();
    for ((effect, c), answer) in calls.iter().zip(&answers) {
        match answer.error() {
            None => tally.succeeded += 1,
            Some(reason) => {
                tally.failed += 1;
                crate::log::warn(
                    "side_effect_failed",
                    &[
                        ("type", effect.type_name()),
                        ("stage", "call"),
                        ("error", &reason),
                    ],
                );
            }
        }
        match (c, answer) {
            (
                Call::Start {
                    agent_id,
                    bead_id,
                    start,
                },
                Answer::Started(Ok(())),
            ) => accepted.push((agent_id.as_str(), bead_id.as_str(), &**start)),
            _ => settle(&settle_ctx, analytics, c, answer),
        }
    }
    if !accepted.is_empty() {
        // The starts carried the town config: the container has it.
        let digest = config_digest(header.as_deref().unwrap_or_default());
        if let Err(e) = upkeep::config_accepted(ctx.sql, &digest) {
            crate::log::error("container_config_unrecorded", &[("error", &e.to_string())]);
        }
    }
    settle_started(&settle_ctx, analytics, &accepted);
    tally
}

/// Pushes the batch's container token before its starts (`POST /refresh-token`), as the
/// original does before every start, and remembers when. A container that answers with a
/// refusal gets no start this tick (the reason is returned); one that cannot be reached
/// (asleep, booting) takes the token with the starts instead, as the original tolerates.
async fn push_token<H: Http>(
    ctx: &Ctx<'_>,
    http: &H,
    remotes: &Remotes,
    creds: &Credentials<'_>,
) -> Option<String> {
    let container = remotes.container(http);
    match container
        .refresh_token(creds.container_token(), &creds.town().town_id)
        .await
    {
        Ok(()) => {
            if let Err(e) = upkeep::token_pushed(ctx.sql, ctx.now) {
                crate::log::error("container_token_unrecorded", &[("error", &e.to_string())]);
            }
            None
        }
        // Not reached, or not sent at all (each start then reports its own outcome).
        Err(CallError::Timeout | CallError::Network(_) | CallError::Refused(_)) => None,
        Err(e) => Some(format!("the container refused the token push: {e}")),
    }
}
