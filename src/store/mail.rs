//! Queries of `mail`: messages from one agent to another.

use crate::params;
use crate::sql::{Row, Sql, SqlError};
use crate::vocabulary::model::Mail;
use crate::vocabulary::time::{iso, Millis};

const COLUMNS: &str =
    "mail_id, from_agent_id, to_agent_id, subject, body, created_at, delivered_at";

pub fn insert(sql: &dyn Sql, m: &Mail) -> Result<(), SqlError> {
    sql.execute(
        "INSERT INTO mail (mail_id, from_agent_id, to_agent_id, subject, body, created_at)
         VALUES (?, ?, ?, ?, ?, ?)",
        &params![
            m.mail_id.as_str(),
            m.from_agent_id.as_str(),
            m.to_agent_id.as_str(),
            m.subject.as_str(),
            m.body.as_str(),
            m.created_at.as_str()
        ],
    )?;
    Ok(())
}

/// The agent's undelivered mail, oldest first.
pub fn undelivered(sql: &dyn Sql, agent_id: &str) -> Result<Vec<Mail>, SqlError> {
    sql.query(
        &format!(
            "SELECT {COLUMNS} FROM mail WHERE to_agent_id = ? AND delivered_at IS NULL
             ORDER BY created_at, rowid"
        ),
        &params![agent_id],
    )?
    .into_iter()
    .map(|r| mail(&r))
    .collect()
}

/// Marks all of the agent's undelivered mail delivered.
pub fn mark_delivered(sql: &dyn Sql, agent_id: &str, now: Millis) -> Result<u64, SqlError> {
    sql.execute(
        "UPDATE mail SET delivered_at = ? WHERE to_agent_id = ? AND delivered_at IS NULL",
        &params![iso(now), agent_id],
    )
}

/// A message waiting to be pushed, and whether it is the mayor's.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub to_mayor: bool,
    pub mail: Mail,
}

/// Undelivered mail the housekeeping pushes (GASTOWN-DOMAIN.md 5.2 step 11): to working agents,
/// and to the mayor whatever its state (it is messaged when alive, else started), grouped by
/// recipient and oldest first; at most `limit` messages, the oldest recipients' first.
pub fn to_push(sql: &dyn Sql, limit: u32) -> Result<Vec<Pending>, SqlError> {
    sql.query(
        "SELECT m.mail_id, m.from_agent_id, m.to_agent_id, m.subject, m.body, m.created_at,
                m.delivered_at, a.role = 'mayor' AS to_mayor
         FROM mail m JOIN agent_metadata a ON a.bead_id = m.to_agent_id
         WHERE m.delivered_at IS NULL AND (a.status = 'working' OR a.role = 'mayor')
         ORDER BY m.created_at, m.rowid LIMIT ?",
        &params![limit],
    )?
    .into_iter()
    .map(|r| {
        Ok(Pending {
            to_mayor: r.bool("to_mayor")?,
            mail: mail(&r)?,
        })
    })
    .collect()
}

/// Marks these messages delivered (those still undelivered); returns how many.
pub fn mark_ids_delivered(sql: &dyn Sql, ids: &[&str], now: Millis) -> Result<u64, SqlError> {
    let mut marked = 0;
    for id in ids {
        marked += sql.execute(
            "UPDATE mail SET delivered_at = ? WHERE mail_id = ? AND delivered_at IS NULL",
            &params![iso(now), *id],
        )?;
    }
    Ok(marked)
}

fn mail(row: &Row) -> Result<Mail, SqlError> {
    Ok(Mail {
        mail_id: row.text("mail_id")?,
        from_agent_id: row.text("from_agent_id")?,
        to_agent_id: row.text("to_agent_id")?,
        subject: row.text("subject")?,
        body: row.text("body")?,
        created_at: row.text("created_at")?,
        delivered_at: row.opt_text("delivered_at")?,
    })
}
