//! The `town_events` table (GASTOWN-DOMAIN.md 2.1): record, drain, mark, poison, prune.
//!
//! Changes from the original, on purpose: the drain is bounded (oldest first, `limit` rows), a
//! poisoned event keeps its error text and a `poisoned` flag instead of being only "processed",
//! and a failed event waits [`RETRY_SPACING_MS`] before its next try (`next_attempt_at`) instead
//! of being retried by the very next tick, which a backlog fires at once: three failures within
//! seconds would poison an event whose cause (a storage hiccup, a fact that arrives a moment
//! later) had no time to clear.

use crate::params;
use crate::sql::{Row, Sql, SqlError};
use crate::vocabulary::events::{EventKind, RecordedEvent};
use crate::vocabulary::time::{iso, parse_iso, Millis};

/// Failures after which an event is poisoned (`MAX_EVENT_RETRIES`).
pub const MAX_EVENT_RETRIES: i64 = 3;

/// How long a failed event waits before its next try, after its first and its second failure
/// (the third poisons it): a quick retry for a race between facts, then a longer one that
/// outlasts a brief outage.
pub const RETRY_SPACING_MS: [Millis; 2] = [
    5 * crate::vocabulary::time::SECOND,
    2 * crate::vocabulary::time::MINUTE,
];

/// Processed events older than this are pruned.
pub const RETENTION_MS: Millis = 7 * 24 * crate::vocabulary::time::HOUR;

/// Where an event attaches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Subject {
    pub agent_id: Option<String>,
    pub bead_id: Option<String>,
}

impl Subject {
    pub fn agent(id: &str) -> Self {
        Self {
            agent_id: Some(id.to_owned()),
            bead_id: None,
        }
    }

    pub fn bead(id: &str) -> Self {
        Self {
            agent_id: None,
            bead_id: Some(id.to_owned()),
        }
    }

    pub fn town() -> Self {
        Self::default()
    }
}

/// Records a new pending event.
pub fn insert(
    sql: &dyn Sql,
    event_id: &str,
    kind: &EventKind,
    subject: &Subject,
    now: Millis,
) -> Result<(), SqlError> {
    sql.execute(
        "INSERT INTO town_events (event_id, event_type, agent_id, bead_id, payload, created_at)
         VALUES (?, ?, ?, ?, ?, ?)",
        &params![
            event_id,
            kind.type_name(),
            subject.agent_id.as_deref(),
            subject.bead_id.as_deref(),
            kind.payload().to_string(),
            iso(now)
        ],
    )?;
    Ok(())
}

/// What [`upsert_container_status`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upsert {
    /// `running` is the steady state and is never stored.
    Skipped,
    /// A pending event with the same status existed; its `created_at` was bumped.
    Bumped,
    Inserted,
}

/// Records a container status observation: skips `running`, bumps a pending twin.
pub fn upsert_container_status(
    sql: &dyn Sql,
    event_id: &str,
    agent_id: &str,
    status: &crate::vocabulary::events::ContainerStatus,
    now: Millis,
) -> Result<Upsert, SqlError> {
    if status.status == "running" {
        return Ok(Upsert::Skipped);
    }
    let bumped = sql.execute(
        "UPDATE town_events SET created_at = ?
         WHERE event_id = (
           SELECT event_id FROM town_events
           WHERE processed_at IS NULL AND event_type = 'container_status' AND agent_id = ?
             AND json_extract(payload, '$.status') = ?
           LIMIT 1)",
        &params![iso(now), agent_id, status.status.as_str()],
    )?;
    if bumped > 0 {
        return Ok(Upsert::Bumped);
    }
    insert(
        sql,
        event_id,
        &EventKind::ContainerStatus(status.clone()),
        &Subject::agent(agent_id),
        now,
    )?;
    Ok(Upsert::Inserted)
}

fn from_row(row: &Row) -> Result<RecordedEvent, SqlError> {
    let event_type = row.text("event_type")?;
    let payload = row.text("payload")?;
    Ok(RecordedEvent {
        event_id: row.text("event_id")?,
        agent_id: row.opt_text("agent_id")?,
        bead_id: row.opt_text("bead_id")?,
        created_at: row.text("created_at")?,
        retry_count: row.int("retry_count")?,
        kind: EventKind::parse(&event_type, &payload),
    })
}

const COLUMNS: &str = "event_id, event_type, agent_id, bead_id, payload, created_at, retry_count";

/// Up to `limit` pending events due at `now` (not waiting for a retry), oldest first.
pub fn pending(sql: &dyn Sql, limit: u32, now: Millis) -> Result<Vec<RecordedEvent>, SqlError> {
    sql.query(
        &format!(
            "SELECT {COLUMNS} FROM town_events
             WHERE processed_at IS NULL AND (next_attempt_at IS NULL OR next_attempt_at <= ?)
             ORDER BY created_at ASC, rowid ASC LIMIT ?"
        ),
        &params![now, limit],
    )?
    .into_iter()
    .map(|r| from_row(&r))
    .collect()
}

/// Every event created in `[from, to]`, processed or not, oldest first (replay).
pub fn created_between(
    sql: &dyn Sql,
    from: Millis,
    to: Millis,
) -> Result<Vec<RecordedEvent>, SqlError> {
    sql.query(
        &format!(
            "SELECT {COLUMNS} FROM town_events WHERE created_at >= ? AND created_at <= ?
             ORDER BY created_at ASC, rowid ASC"
        ),
        &params![iso(from), iso(to)],
    )?
    .into_iter()
    .map(|r| from_row(&r))
    .collect()
}

/// Marks an event applied.
pub fn mark_processed(sql: &dyn Sql, event_id: &str, now: Millis) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE town_events SET processed_at = ? WHERE event_id = ? AND processed_at IS NULL",
        &params![iso(now), event_id],
    )?;
    Ok(())
}

/// Marks a batch of events applied in one statement (their ids bound as one JSON array, so the
/// batch is not limited by the bound-parameter cap).
pub fn mark_all_processed(sql: &dyn Sql, event_ids: &[&str], now: Millis) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE town_events SET processed_at = ?
         WHERE processed_at IS NULL AND event_id IN (SELECT value FROM json_each(?))",
        &[iso(now).into(), crate::sql::id_list(event_ids)],
    )?;
    Ok(())
}

/// What became of an event whose application failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// It stays pending and is retried by the first tick at or after `at` (epoch ms).
    WillRetry { at: Millis },
    /// It failed [`MAX_EVENT_RETRIES`] times and is kept, processed, as poisoned.
    Poisoned,
}

/// Counts a failed application, keeping the error text, and spaces the next try by
/// [`RETRY_SPACING_MS`]; poisons at the third failure.
pub fn record_failure(
    sql: &dyn Sql,
    event_id: &str,
    error: &str,
    now: Millis,
) -> Result<Failure, SqlError> {
    // One statement, so an interrupted tick never leaves a failure counted but not spaced.
    let [first, then] = RETRY_SPACING_MS;
    let row = sql.one(
        "UPDATE town_events SET retry_count = retry_count + 1, last_error = ?,
           next_attempt_at = ? + CASE WHEN retry_count = 0 THEN ? ELSE ? END
         WHERE event_id = ? RETURNING retry_count, next_attempt_at",
        &params![error, now, first, then, event_id],
    )?;
    if row.int("retry_count")? < MAX_EVENT_RETRIES {
        return Ok(Failure::WillRetry {
            at: row.int("next_attempt_at")?,
        });
    }
    poison(sql, event_id, error, now)?;
    Ok(Failure::Poisoned)
}

/// Marks an event processed as poisoned, with its error text.
pub fn poison(sql: &dyn Sql, event_id: &str, error: &str, now: Millis) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE town_events SET processed_at = ?, poisoned = 1, last_error = ?, next_attempt_at = NULL
         WHERE event_id = ?",
        &params![iso(now), error, event_id],
    )?;
    Ok(())
}

/// Deletes processed events older than the retention.
pub fn prune(sql: &dyn Sql, now: Millis) -> Result<u64, SqlError> {
    sql.execute(
        "DELETE FROM town_events WHERE processed_at IS NOT NULL AND created_at < ?",
        &params![iso(now - RETENTION_MS)],
    )
}

/// The pending backlog: how many, how many of them are due now, the age of the oldest, and
/// when the earliest retry that is not yet due falls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    pub count: u64,
    /// Pending and not waiting for a retry at `now`.
    pub due: u64,
    pub oldest_age_ms: Millis,
    /// The earliest `next_attempt_at` still in the future (epoch ms), if any.
    pub next_retry_at: Option<Millis>,
}

/// Counts pending events and measures the oldest one's age at `now`.
pub fn backlog(sql: &dyn Sql, now: Millis) -> Result<Backlog, SqlError> {
    let row = sql.one(
        "SELECT COUNT(*) AS n, MIN(created_at) AS oldest,
                COALESCE(SUM(next_attempt_at IS NULL OR next_attempt_at <= ?), 0) AS due,
                MIN(CASE WHEN next_attempt_at > ? THEN next_attempt_at END) AS next_retry
         FROM town_events WHERE processed_at IS NULL",
        &params![now, now],
    )?;
    let oldest_age_ms = row
        .opt_text("oldest")?
        .and_then(|t| parse_iso(&t))
        .map_or(0, |t| (now - t).max(0));
    Ok(Backlog {
        count: row.int("n")? as u64,
        due: row.int("due")? as u64,
        oldest_age_ms,
        next_retry_at: row.opt_int("next_retry")?,
    })
}

/// A failed event waiting for its next try (the debug status shows them).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WaitingRetry {
    pub event_id: String,
    pub event_type: String,
    /// Failures so far.
    pub retry_count: i64,
    /// Epoch ms of the next try.
    pub next_attempt_at: Millis,
    pub last_error: Option<String>,
}

/// Up to `limit` events waiting for a retry at `now`, the soonest first.
pub fn waiting_retries(
    sql: &dyn Sql,
    now: Millis,
    limit: u32,
) -> Result<Vec<WaitingRetry>, SqlError> {
    sql.query(
        "SELECT event_id, event_type, retry_count, next_attempt_at, last_error FROM town_events
         WHERE processed_at IS NULL AND next_attempt_at > ?
         ORDER BY next_attempt_at ASC, rowid ASC LIMIT ?",
        &params![now, limit],
    )?
    .into_iter()
    .map(|r| {
        Ok(WaitingRetry {
            event_id: r.text("event_id")?,
            event_type: r.text("event_type")?,
            retry_count: r.int("retry_count")?,
            next_attempt_at: r.int("next_attempt_at")?,
            last_error: r.opt_text("last_error")?,
        })
    })
    .collect()
}
