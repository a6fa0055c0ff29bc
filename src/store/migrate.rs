//! Versioned schema migrations, applied once when the Durable Object starts.
//!
//! Each migration runs atomically together with its row in `schema_migrations`, so a migration
//! is either fully applied and recorded or not at all; running [`migrate`] again is a no-op.

use crate::sql::{atomically, Sql, SqlError};
use crate::vocabulary::time::{iso, Millis};

/// One schema step (`migrations/NNNN_name.sql`).
#[derive(Debug)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

const LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at TEXT NOT NULL
)";

/// Applies every migration not yet recorded; returns the versions applied now.
pub fn migrate(sql: &dyn Sql, now: Millis) -> Result<Vec<i64>, SqlError> {
    sql.batch(LEDGER)?;
    let current = sql
        .one(
            "SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations",
            &[],
        )?
        .int("v")?;
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        atomically(sql, || {
            sql.batch(m.sql)?;
            sql.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                &crate::params![m.version, m.name, iso(now)],
            )
        })?;
        applied.push(m.version);
    }
    Ok(applied)
}

/// The newest schema version this build knows.
pub fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}
