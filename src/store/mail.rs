//! Queries of `mail`: messages from one agent to another.

use crate::domain::model::Mail;
use crate::params;
use crate::sql::{Row, Sql, SqlError};
use crate::time::{iso, Millis};

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
