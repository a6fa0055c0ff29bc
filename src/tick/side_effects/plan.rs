//! The plan: each effect of the tick made into the call that performs it, synchronously and
//! before anything is sent. Dispatches count their attempts and get their start bodies together
//! (one unit for them all); the mayor is registered when the town has none yet. An effect that
//! cannot be made into a call is already its outcome: a failure that says why.

use super::call::{Call, Heard, Outcome, Plan, Step, TokenPush};
use super::pull_requests::Wanted;
use crate::domain::dispatch;
use crate::domain::{agents, Ctx, DomainError};
use crate::effects::container::StartAgent;
use crate::effects::credentials::Credentials;
use crate::effects::remotes::Remotes;
use crate::effects::start;
use crate::reconciler::gupp::FORCE_STOP_REASON;
use crate::sql::{atomically, SqlError};
use crate::store::rigs as rig_store;
use crate::store::town::{self, Town};
use crate::vocabulary::actions::Effect;
use crate::vocabulary::model::{AgentRole, Rig};
use crate::vocabulary::time::Millis;

/// Makes the plan of `effects`.
pub fn plan(ctx: &Ctx<'_>, remotes: &Remotes, effects: &[Effect]) -> Plan {
    if effects.is_empty() {
        return Plan::default();
    }
    let starting = effects.iter().any(starts_agents);
    let town = read("town", town::get(ctx.sql)).flatten();
    let rigs = if starting {
        read("rigs", rig_store::list(ctx.sql)).unwrap_or_default()
    } else {
        Vec::new()
    };
    let creds = match (&town, starting) {
        (Some(town), true) => credentials(town, remotes, ctx.now),
        (None, true) => Err("the town row is missing".to_owned()),
        (_, false) => Err("no agent is started".to_owned()),
    };
    let mut steps: Vec<Step> = effects
        .iter()
        .map(|effect| {
            let not_prepared = || "not prepared".to_owned();
            Step::Call(match effect {
                // Prepared below: the dispatches together, then the mayor's calls.
                Effect::Dispatch {
                    agent_id, bead_id, ..
                } => {
                    return Step::NotPrepared(Outcome::not_started(
                        agent_id,
                        bead_id,
                        not_prepared(),
                    ))
                }
                Effect::NotifyMayor { notice, .. } => {
                    return Step::NotPrepared(Outcome::mayor_not_told(
                        Heard::Notice(*notice),
                        not_prepared(),
                    ))
                }
                Effect::MailMayor { mail_ids, .. } => {
                    return Step::NotPrepared(Outcome::mayor_not_told(
                        Heard::Mail(mail_ids.clone()),
                        not_prepared(),
                    ))
                }
                Effect::Stop { agent_id, reason } => Call::Stop {
                    agent_id: agent_id.clone(),
                    force: reason == FORCE_STOP_REASON,
                },
                Effect::PollPr { bead_id, pr_url } => Call::Poll {
                    bead_id: bead_id.clone(),
                    pr_url: pr_url.clone(),
                    token: github_token(town.as_ref(), remotes),
                    wanted: Wanted::of(
                        &town
                            .as_ref()
                            .map(|t| t.config.refinery.clone())
                            .unwrap_or_default(),
                    ),
                },
                Effect::MergePr { bead_id, pr_url } => Call::Merge {
                    bead_id: bead_id.clone(),
                    pr_url: pr_url.clone(),
                    token: github_token(town.as_ref(), remotes),
                },
                Effect::Nudge {
                    agent_id,
                    nudge_id,
                    message,
                } => Call::Nudge {
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
            })
        })
        .collect();
    let dispatches: Vec<(&mut Step, dispatch::Wanted<'_>)> = steps
        .iter_mut()
        .zip(effects)
        .filter_map(|(step, effect)| match effect {
            Effect::Dispatch {
                agent_id,
                bead_id,
                rig_id,
            } => Some((
                step,
                dispatch::Wanted {
                    agent_id,
                    bead_id,
                    rig_id,
                },
            )),
            _ => None,
        })
        .collect();
    let wanted: Vec<dispatch::Wanted<'_>> = dispatches.iter().map(|(_, w)| *w).collect();
    for ((step, w), prepared) in dispatches
        .into_iter()
        .zip(prepare_starts(ctx, &creds, &rigs, &wanted))
    {
        *step = match prepared {
            Ok(start) => Step::Call(Call::Start {
                agent_id: w.agent_id.to_owned(),
                bead_id: w.bead_id.to_owned(),
                start: Box::new(start),
            }),
            Err(why) => Step::NotPrepared(Outcome::not_started(w.agent_id, w.bead_id, why)),
        };
    }
    for (step, effect) in steps.iter_mut().zip(effects) {
        let (message, heard) = match effect {
            Effect::NotifyMayor { message, notice } => (message, Heard::Notice(*notice)),
            Effect::MailMayor { mail_ids, message } => (message, Heard::Mail(mail_ids.clone())),
            _ => continue,
        };
        *step = match mayor_call(ctx, &creds, &rigs, message, heard.clone()) {
            Ok(call) => Step::Call(call),
            Err(why) => Step::NotPrepared(Outcome::mayor_not_told(heard, why)),
        };
    }
    let (token, header) = match &creds {
        Ok(creds)
            if steps
                .iter()
                .any(|s| matches!(s, Step::Call(c) if c.starts())) =>
        {
            (
                Some(TokenPush {
                    token: creds.container_token().to_owned(),
                    town_id: creds.town().town_id.clone(),
                }),
                creds.town_config(),
            )
        }
        Ok(creds) => (None, creds.town_config()),
        Err(_) => (None, String::new()),
    };
    Plan {
        steps,
        token,
        header,
    }
}

/// A read the plan can do without: its failure is logged, and what needs it fails.
fn read<T>(what: &str, result: Result<T, SqlError>) -> Option<T> {
    result
        .map_err(|e| {
            crate::log::error(
                "side_effects_unread",
                &[("what", what), ("error", &e.to_string())],
            )
        })
        .ok()
}

/// The batch's tokens and credentials, or why there are none (logged once).
fn credentials<'t>(
    town: &'t Town,
    remotes: &'t Remotes,
    now: Millis,
) -> Result<Credentials<'t>, String> {
    Credentials::new(town, &remotes.jwt_secret, &remotes.gastown_api_url, now).map_err(|e| {
        let why = e.to_string();
        crate::log::error("container_starts_refused", &[("why", &why)]);
        why
    })
}

/// Whether an effect may start an agent (a dispatch, or a mayor that is not alive).
fn starts_agents(effect: &Effect) -> bool {
    matches!(
        effect,
        Effect::Dispatch { .. } | Effect::NotifyMayor { .. } | Effect::MailMayor { .. }
    )
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

/// The start bodies of `wanted`, made together in one unit, in order: each one's body, or why
/// there is none (the agent's role is not one the container starts; its agent, bead, rig or
/// review is missing; no credentials; the unit failed).
fn prepare_starts(
    ctx: &Ctx<'_>,
    creds: &Result<Credentials<'_>, String>,
    rigs: &[Rig],
    wanted: &[dispatch::Wanted<'_>],
) -> Vec<Result<StartAgent, String>> {
    let all_fail = |why: &str| wanted.iter().map(|_| Err(why.to_owned())).collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let creds = match creds {
        Ok(c) => c,
        Err(why) => return all_fail(why),
    };
    let prepared = atomically(ctx.sql, || {
        let mut starts: Vec<Result<StartAgent, String>> = Vec::with_capacity(wanted.len());
        let (mut ready, mut found) = (Vec::new(), Vec::new());
        for f in dispatch::find(ctx, rigs, wanted)? {
            let startable =
                f.map_err(|e| e.to_string())
                    .and_then(|f| match start::role(f.agent.role) {
                        Some(role) => Ok((f, role)),
                        None => Err(DomainError::conflict(format!(
                            "{} is a {} agent, a role the container does not start",
                            f.agent.agent_id, f.agent.role
                        ))
                        .to_string()),
                    });
            match startable {
                Ok((f, role)) => {
                    ready.push((starts.len(), role));
                    found.push(f);
                    starts.push(Err("not begun".to_owned()));
                }
                Err(why) => starts.push(Err(why)),
            }
        }
        // `begin` returns each of `found`, in order.
        for ((slot, role), begun) in ready.into_iter().zip(dispatch::begin(ctx, found)?) {
            starts[slot] = Ok(start::rig_agent(creds, &begun, role));
        }
        Ok::<_, DomainError>(starts)
    });
    prepared.unwrap_or_else(|e| all_fail(&e.to_string()))
}

/// The mayor-notification call: the mayor (registered if the town has none yet) and the start
/// that runs it with `message` as its prompt if it is not alive.
fn mayor_call(
    ctx: &Ctx<'_>,
    creds: &Result<Credentials<'_>, String>,
    rigs: &[Rig],
    message: &str,
    heard: Heard,
) -> Result<Call, String> {
    let creds = creds.as_ref().map_err(Clone::clone)?;
    let mayor = atomically(ctx.sql, || {
        agents::get_or_create(ctx, AgentRole::Mayor, None)
    })
    .map_err(|e| e.to_string())?;
    Ok(Call::Mayor {
        start: Box::new(start::mayor(creds, &mayor, rigs, message)),
        mayor_id: mayor.agent_id,
        message: message.to_owned(),
        heard,
    })
}
