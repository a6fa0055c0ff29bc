//! Phase 3, the housekeeping (GASTOWN-DOMAIN.md 5.2 step 11), after the invariants and the
//! tick's point: re-escalation of unacknowledged escalations, the triage loop's next batch,
//! undelivered mail pushed to working agents and to the mayor, then the tick history, nudge
//! expiry and the event prune. Each part runs alone and logs its own failure, so none can skip
//! another or the re-arm. The mail takes only the calls the tick's budget has left.

use super::activity;
use super::side_effects::perform;
use super::TickEnv;
use crate::domain::{escalations, mail, nudges, triage, Ctx};
use crate::metrics::point::DataPoint;
use crate::metrics::writer::Analytics;
use crate::params;
use crate::ports::Http;
use crate::sql::{atomically, Sql, SqlError};
use crate::store::events;
use crate::store::mail::{to_push, Pending};
use crate::vocabulary::actions::Effect;
use crate::vocabulary::time::{iso, Millis};

/// Most undelivered messages read per tick (the oldest first).
pub const MAIL_PER_TICK: u32 = 200;

/// Calls a push to the mayor can take: its status, then a message or a start, and the token
/// push before a start.
const MAYOR_CALLS: usize = 3;

/// Runs the housekeeping; `started` is when the tick's measured part began (its deadline
/// applies), `calls_left` what remains of its budget of remote calls.
pub async fn run<H: Http>(
    env: &TickEnv<'_, H>,
    analytics: &Analytics<'_>,
    point: &DataPoint,
    started: Millis,
    calls_left: usize,
) {
    let now = env.clock.now_ms();
    let ctx = Ctx {
        sql: env.sql,
        ids: env.ids,
        now,
    };
    match atomically(ctx.sql, || escalations::re_escalate(&ctx)) {
        Ok(bumped) if !bumped.is_empty() => {
            crate::log::info("escalations_re_escalated", &[("ids", &bumped.join(","))])
        }
        Ok(_) => {}
        Err(e) => crate::log::error("re_escalation_failed", &[("error", &e.to_string())]),
    }
    let batched = activity::breaker_open(ctx.sql, now)
        .map_err(Into::into)
        .and_then(|open| atomically(ctx.sql, || triage::batch(&ctx, open)));
    match batched {
        Ok((_, Some(batch))) => {
            crate::log::info("triage_batch_created", &[("bead_id", &batch.bead_id)])
        }
        Ok((state, None)) if !matches!(state, triage::Batching::Nothing) => {
            crate::log::debug("triage_batch_not_created", &[("state", state.as_str())])
        }
        Ok(_) => {}
        Err(e) => crate::log::error("triage_batch_failed", &[("error", &e.to_string())]),
    }
    match to_push(ctx.sql, MAIL_PER_TICK) {
        Ok(pending) => {
            let effects = mail_effects(&pending, calls_left);
            if !effects.is_empty() {
                let tally = perform(
                    &ctx,
                    env.clock,
                    analytics,
                    env.http,
                    env.remotes,
                    &effects,
                    started,
                )
                .await;
                crate::log::info(
                    "mail_pushed",
                    &[
                        ("recipients", &tally.attempted.to_string()),
                        ("delivered", &tally.succeeded.to_string()),
                        ("failed", &tally.failed.to_string()),
                    ],
                );
            }
        }
        Err(e) => crate::log::error("mail_unread", &[("error", &e.to_string())]),
    }
    let finished = Ctx {
        now: env.clock.now_ms(),
        ..ctx
    };
    if let Err(e) = remember(env.sql, finished.now, point, env.options.metrics_keep) {
        crate::log::error("tick_history_failed", &[("error", &e.to_string())]);
    }
    if let Err(e) = nudges::expire(&finished) {
        crate::log::error("tick_nudge_expiry_failed", &[("error", &e.to_string())]);
    }
    if let Err(e) = events::prune(env.sql, finished.now) {
        crate::log::error("tick_prune_failed", &[("error", &e.to_string())]);
    }
}

/// One push per recipient, its messages oldest first, recipients in the order of their oldest
/// message, while the calls fit in `budget` (a recipient that does not fit waits for the next
/// tick).
pub fn mail_effects(pending: &[Pending], budget: usize) -> Vec<Effect> {
    let mut recipients: Vec<(&str, bool, Vec<&crate::vocabulary::model::Mail>)> = Vec::new();
    for p in pending {
        let to = p.mail.to_agent_id.as_str();
        match recipients.iter_mut().find(|(id, ..)| *id == to) {
            Some((.., letters)) => letters.push(&p.mail),
            None => recipients.push((to, p.to_mayor, vec![&p.mail])),
        }
    }
    let mut left = budget;
    let mut effects = Vec::new();
    for (agent_id, to_mayor, letters) in recipients {
        let cost = if to_mayor { MAYOR_CALLS } else { 1 };
        if cost > left {
            continue;
        }
        left -= cost;
        let mail_ids = letters.iter().map(|m| m.mail_id.clone()).collect();
        let prompt = mail::prompt(&letters);
        effects.push(if to_mayor {
            Effect::MailMayor {
                mail_ids,
                message: prompt,
            }
        } else {
            Effect::DeliverMail {
                agent_id: agent_id.to_owned(),
                mail_ids,
                prompt,
            }
        });
    }
    effects
}

/// Keeps the point in the bounded tick history.
fn remember(sql: &dyn Sql, now: Millis, point: &DataPoint, keep: u32) -> Result<(), SqlError> {
    let json = serde_json::to_string(point).expect("points serialize");
    sql.execute(
        "INSERT INTO tick_metrics (at, point) VALUES (?, ?)",
        &params![iso(now), json],
    )?;
    sql.execute(
        "DELETE FROM tick_metrics WHERE tick_id <= (SELECT MAX(tick_id) FROM tick_metrics) - ?",
        &params![keep],
    )?;
    Ok(())
}
