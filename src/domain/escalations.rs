//! Escalations an agent raises (the plugin's `gt_escalate`): an `escalation` bead with its
//! `escalation_metadata` row (severity = the priority, category `agent`); acknowledged by a
//! person, and re-escalated by the housekeeping while nobody does (GASTOWN-DOMAIN.md 5.2 step
//! 11): one severity level up per 4 hours of age, at most 3 times, the mayor told by mail
//! (pushed to it through the mayor-notification path, retried until it is heard; the original
//! sent it once and only logged a failure).

use super::beads::{self, event};
use super::error::Result;
use super::mail::{self, Letter};
use super::{agents, Ctx, DomainError, SYSTEM};
use crate::store::beads::NewBead;
use crate::store::beads::NewEvent;
use crate::store::escalations::{self, Escalation};
use crate::vocabulary::model::{labels, AgentRole, Bead, BeadType, Priority};
use crate::vocabulary::time::{parse_iso, Millis, HOUR};
use serde_json::{Map, Value as Json};

/// Age per re-escalation level: the n-th bump is due once the escalation is n x 4 h old.
pub const STALE_AFTER_MS: Millis = 4 * HOUR;

/// Most re-escalations of one escalation.
pub const MAX_BUMPS: i64 = 3;

/// What an agent escalates.
#[derive(Debug, Clone, PartialEq)]
pub struct Raise<'a> {
    pub rig_id: &'a str,
    pub agent_id: Option<&'a str>,
    pub title: &'a str,
    pub body: Option<&'a str>,
    pub priority: Priority,
    pub metadata: Map<String, Json>,
}

pub fn raise(ctx: &Ctx<'_>, r: &Raise<'_>) -> Result<Bead> {
    if r.title.trim().is_empty() {
        return Err(DomainError::invalid("title", "must not be empty"));
    }
    let mut bead = NewBead::new(&ctx.ids.new_id(), BeadType::Escalation, r.title);
    bead.body = r.body.map(str::to_owned);
    bead.rig_id = Some(r.rig_id.to_owned());
    bead.priority = r.priority;
    bead.labels = vec![
        labels::ESCALATION.to_owned(),
        format!("severity:{}", r.priority.as_str()),
    ];
    bead.metadata = r.metadata.clone();
    bead.created_by = r.agent_id.map(str::to_owned);
    let escalation = beads::create(ctx, &bead)?;
    escalations::insert(ctx.sql, &escalation.bead_id, r.priority.as_str(), "agent")?;
    Ok(escalation)
}

/// The severity one bump raises `severity` to, if `escalation` is due for one at `now`: it is
/// unacknowledged, bumped fewer than [`MAX_BUMPS`] times, at least (bumps + 1) x 4 h old, and
/// below `critical`.
pub fn due_bump(escalation: &Escalation, now: Millis) -> Option<Priority> {
    if escalation.acknowledged || escalation.re_escalation_count >= MAX_BUMPS {
        return None;
    }
    let created = parse_iso(&escalation.created_at)?;
    if now - created < (escalation.re_escalation_count + 1) * STALE_AFTER_MS {
        return None;
    }
    let at = Priority::ALL
        .iter()
        .position(|p| p.as_str() == escalation.severity)?;
    Priority::ALL.get(at + 1).copied()
}

/// Re-escalates every escalation due at `ctx.now`: the severity goes one level up, the bump is
/// logged on its bead, and the mayor (created if the town has none yet) gets a mail saying so
/// for every severity above low. Returns the escalations bumped.
pub fn re_escalate(ctx: &Ctx<'_>) -> Result<Vec<String>> {
    let mut bumped = Vec::new();
    for e in escalations::unacknowledged(ctx.sql, MAX_BUMPS)? {
        let Some(severity) = due_bump(&e, ctx.now) else {
            continue;
        };
        escalations::bump(ctx.sql, &e.bead_id, severity.as_str())?;
        beads::log(
            ctx,
            &NewEvent {
                bead_id: &e.bead_id,
                event_type: event::RE_ESCALATED,
                old_value: Some(&e.severity),
                new_value: Some(severity.as_str()),
                metadata: Map::new(),
                ..Default::default()
            },
        )?;
        if severity != Priority::Low {
            let mayor = agents::get_or_create(ctx, AgentRole::Mayor, None)?;
            mail::send(
                ctx,
                &Letter {
                    from_agent_id: SYSTEM,
                    to_agent_id: &mayor.agent_id,
                    subject: &format!(
                        "[Re-Escalation:{severity}] rig={rig} {title}",
                        rig = e.rig_id.as_deref().unwrap_or("-"),
                        title = e.title,
                    ),
                    body: &format!(
                        "Escalation {id} has not been acknowledged after {bumps} x 4 hours.\n{body}",
                        id = e.bead_id,
                        bumps = e.re_escalation_count + 1,
                        body = e.body.as_deref().unwrap_or_default(),
                    ),
                },
            )?;
        }
        bumped.push(e.bead_id);
    }
    Ok(bumped)
}

/// A person acknowledged the escalation: it is never re-escalated again. Acknowledging twice
/// keeps the first time.
pub fn acknowledge(ctx: &Ctx<'_>, bead_id: &str, actor: &str) -> Result<Escalation> {
    let e = get(ctx, bead_id)?;
    if !e.acknowledged {
        escalations::acknowledge(ctx.sql, bead_id, ctx.now)?;
        beads::log(
            ctx,
            &NewEvent {
                bead_id,
                agent_id: Some(actor),
                event_type: event::ACKNOWLEDGED,
                metadata: Map::new(),
                ..Default::default()
            },
        )?;
    }
    get(ctx, bead_id)
}

/// One escalation, or `not_found`.
pub fn get(ctx: &Ctx<'_>, bead_id: &str) -> Result<Escalation> {
    escalations::get(ctx.sql, bead_id)?.ok_or_else(|| DomainError::not_found("escalation", bead_id))
}
