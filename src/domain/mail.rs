//! Mail between agents: sent to one agent, listed while undelivered (prime shows it), and
//! delivered all at once when the agent checks its mail. Each sending and each delivery is
//! logged in the history of the recipient's agent bead.

use super::beads::{self, event};
use super::error::Result;
use super::{agents, Ctx, DomainError};
use crate::store::beads::NewEvent;
use crate::store::mail as store;
use crate::vocabulary::model::Mail;
use crate::vocabulary::time::iso;
use serde_json::Map;

/// A message to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Letter<'a> {
    pub from_agent_id: &'a str,
    pub to_agent_id: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
}

/// Sends mail to an existing agent; the sender is named, not checked (it may be `system` or
/// the mayor before it is registered).
pub fn send(ctx: &Ctx<'_>, letter: &Letter<'_>) -> Result<Mail> {
    agents::get(ctx, letter.to_agent_id)?;
    for (field, value) in [
        ("subject", letter.subject),
        ("from_agent_id", letter.from_agent_id),
    ] {
        if value.trim().is_empty() {
            return Err(DomainError::invalid(field, "must not be empty"));
        }
    }
    let mail = Mail {
        mail_id: ctx.ids.new_id(),
        from_agent_id: letter.from_agent_id.to_owned(),
        to_agent_id: letter.to_agent_id.to_owned(),
        subject: letter.subject.to_owned(),
        body: letter.body.to_owned(),
        created_at: iso(ctx.now),
        delivered_at: None,
    };
    store::insert(ctx.sql, &mail)?;
    beads::log(
        ctx,
        &NewEvent {
            bead_id: letter.to_agent_id,
            agent_id: Some(letter.from_agent_id),
            event_type: event::MAIL_SENT,
            new_value: Some(&mail.mail_id),
            metadata: Map::new(),
            ..Default::default()
        },
    )?;
    Ok(mail)
}

/// The agent's undelivered mail, oldest first.
pub fn undelivered(ctx: &Ctx<'_>, agent_id: &str) -> Result<Vec<Mail>> {
    agents::get(ctx, agent_id)?;
    Ok(store::undelivered(ctx.sql, agent_id)?)
}

/// The agent checks its mail: the undelivered mail, now marked delivered.
pub fn check(ctx: &Ctx<'_>, agent_id: &str) -> Result<Vec<Mail>> {
    let mut mail = undelivered(ctx, agent_id)?;
    if mail.is_empty() {
        return Ok(mail);
    }
    store::mark_delivered(ctx.sql, agent_id, ctx.now)?;
    let ids: Vec<&str> = mail.iter().map(|m| m.mail_id.as_str()).collect();
    log_delivered(ctx, agent_id, &ids)?;
    for m in &mut mail {
        m.delivered_at = Some(iso(ctx.now));
    }
    Ok(mail)
}

/// The housekeeping pushed these messages to the agent and the container took them: they are
/// delivered (those not checked meanwhile), logged on the agent's bead.
pub fn pushed(ctx: &Ctx<'_>, agent_id: &str, mail_ids: &[String]) -> Result<u64> {
    let ids: Vec<&str> = mail_ids.iter().map(String::as_str).collect();
    let marked = store::mark_ids_delivered(ctx.sql, &ids, ctx.now)?;
    if marked > 0 {
        log_delivered(ctx, agent_id, &ids)?;
    }
    Ok(marked)
}

/// Logs the delivery of `ids` on the recipient's agent bead.
fn log_delivered(ctx: &Ctx<'_>, agent_id: &str, ids: &[&str]) -> Result<()> {
    beads::log(
        ctx,
        &NewEvent {
            bead_id: agent_id,
            agent_id: Some(agent_id),
            event_type: event::MAIL_DELIVERED,
            new_value: Some(&ids.join(",")),
            metadata: Map::new(),
            ..Default::default()
        },
    )?;
    Ok(())
}

/// One message carrying `mail` (oldest first) as a follow-up prompt.
pub fn prompt(mail: &[&Mail]) -> String {
    let letters: Vec<String> = mail
        .iter()
        .map(|m| format!("[MAIL from {}] {}\n{}", m.from_agent_id, m.subject, m.body))
        .collect();
    format!(
        "You have {} new mail message(s):\n\n{}",
        mail.len(),
        letters.join("\n\n---\n\n")
    )
}
