//! What the town last pushed to its container: the container token's push time and the digest
//! of the town config the container accepted (`town.container_token_pushed_at`,
//! `town.container_config_digest`).

use crate::params;
use crate::sql::{Sql, SqlError};
use crate::vocabulary::time::Millis;

/// The last pushes, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pushed {
    pub token_at: Option<Millis>,
    pub config_digest: Option<String>,
}

pub fn pushed(sql: &dyn Sql) -> Result<Pushed, SqlError> {
    match sql.first(
        "SELECT container_token_pushed_at, container_config_digest FROM town WHERE singleton = 1",
        &[],
    )? {
        Some(row) => Ok(Pushed {
            token_at: row.opt_int("container_token_pushed_at")?,
            config_digest: row.opt_text("container_config_digest")?,
        }),
        None => Ok(Pushed::default()),
    }
}

pub fn token_pushed(sql: &dyn Sql, at: Millis) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE town SET container_token_pushed_at = ? WHERE singleton = 1",
        &params![at],
    )?;
    Ok(())
}

pub fn config_accepted(sql: &dyn Sql, digest: &str) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE town SET container_config_digest = ? WHERE singleton = 1",
        &params![digest],
    )?;
    Ok(())
}

/// Whether a mayor is working or stalled (its container session is live).
pub fn mayor_live(sql: &dyn Sql) -> Result<bool, SqlError> {
    Ok(sql
        .first(
            "SELECT 1 AS live FROM agent_metadata
             WHERE role = 'mayor' AND status IN ('working', 'stalled') LIMIT 1",
            &[],
        )?
        .is_some())
}
