//! The town row: identity, owner, configuration, the dev clock offset and the drain flag.
//! A town exists while its row does; deleting a town wipes every table.

use crate::params;
use crate::sql::{Sql, SqlError};
use crate::vocabulary::config::TownConfig;
use crate::vocabulary::time::{iso, Millis};

/// The stored town.
#[derive(Debug, Clone, PartialEq)]
pub struct Town {
    pub town_id: String,
    pub owner_user_id: String,
    pub config: TownConfig,
    pub created_at: String,
    pub clock_offset_ms: Millis,
    pub drain: Option<Drain>,
}

/// The container is being evicted: dispatches pause until it reports ready.
#[derive(Debug, Clone, PartialEq)]
pub struct Drain {
    pub nonce: String,
    pub started_at: Millis,
}

/// Whether `put` made a new town or updated an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    Created,
    Updated,
}

/// Loads the town, or `None` when there is none.
pub fn get(sql: &dyn Sql) -> Result<Option<Town>, SqlError> {
    let Some(row) = sql.first(
        "SELECT town_id, owner_user_id, config, created_at, clock_offset_ms, draining,
                drain_nonce, drain_started_at
         FROM town WHERE singleton = 1",
        &[],
    )?
    else {
        return Ok(None);
    };
    let config_text = row.text("config")?;
    // Through `json`, as `TownConfig::from_json` reads: a second deserializer would be a second
    // copy of the config's Deserialize code in the Wasm (README "Wasm size").
    let config =
        crate::json::from_slice(config_text.as_bytes()).map_err(|misfit| SqlError::Decode {
            column: format!("config ({})", misfit.error),
            wanted: "a town config",
        })?;
    let drain = if row.bool("draining")? {
        Some(Drain {
            nonce: row.opt_text("drain_nonce")?.unwrap_or_default(),
            started_at: row.opt_int("drain_started_at")?.unwrap_or(0),
        })
    } else {
        None
    };
    Ok(Some(Town {
        town_id: row.text("town_id")?,
        owner_user_id: row.text("owner_user_id")?,
        config,
        created_at: row.text("created_at")?,
        clock_offset_ms: row.int("clock_offset_ms")?,
        drain,
    }))
}

/// Creates the town or updates its owner and configuration.
pub fn put(
    sql: &dyn Sql,
    town_id: &str,
    owner_user_id: &str,
    config: &TownConfig,
    now: Millis,
) -> Result<Put, SqlError> {
    let config = serde_json::to_string(config).expect("config serializes");
    let updated = sql.execute(
        "UPDATE town SET owner_user_id = ?, config = ?, updated_at = ? WHERE singleton = 1",
        &params![owner_user_id, config.as_str(), iso(now)],
    )?;
    if updated > 0 {
        return Ok(Put::Updated);
    }
    sql.execute(
        "INSERT INTO town (singleton, town_id, owner_user_id, config, created_at, updated_at)
         VALUES (1, ?, ?, ?, ?, ?)",
        &params![town_id, owner_user_id, config.as_str(), iso(now), iso(now)],
    )?;
    Ok(Put::Created)
}

/// Replaces the configuration.
pub fn set_config(sql: &dyn Sql, config: &TownConfig, now: Millis) -> Result<(), SqlError> {
    let config = serde_json::to_string(config).expect("config serializes");
    sql.execute(
        "UPDATE town SET config = ?, updated_at = ? WHERE singleton = 1",
        &params![config, iso(now)],
    )?;
    Ok(())
}

/// Moves the town's clock forward (development only; checked by the caller).
pub fn advance_clock(sql: &dyn Sql, by_ms: Millis) -> Result<Millis, SqlError> {
    sql.execute(
        "UPDATE town SET clock_offset_ms = clock_offset_ms + ? WHERE singleton = 1",
        &params![by_ms],
    )?;
    sql.one("SELECT clock_offset_ms FROM town WHERE singleton = 1", &[])?
        .int("clock_offset_ms")
}

/// Starts draining with a fresh nonce.
pub fn start_drain(sql: &dyn Sql, nonce: &str, now: Millis) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE town SET draining = 1, drain_nonce = ?, drain_started_at = ? WHERE singleton = 1",
        &params![nonce, now],
    )?;
    Ok(())
}

/// Ends draining.
pub fn clear_drain(sql: &dyn Sql) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE town SET draining = 0, drain_nonce = NULL, drain_started_at = NULL
         WHERE singleton = 1",
        &[],
    )?;
    Ok(())
}

/// Records when the mayor heard the breaker's opening (`None`: its closing).
pub fn set_breaker_notified(sql: &dyn Sql, at: Option<&str>) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE town SET breaker_notified_at = ? WHERE singleton = 1",
        &params![at],
    )?;
    Ok(())
}

/// Deletes the town and everything in it; the schema stays, so the name can be reused.
/// Tables are emptied newest first, so rows that reference others (the Durable Object enforces
/// foreign keys) go before the rows they reference.
pub fn delete(sql: &dyn Sql) -> Result<(), SqlError> {
    let tables = sql.query(
        "SELECT name FROM sqlite_master
         WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'
           AND name <> 'schema_migrations'
         ORDER BY rowid DESC",
        &[],
    )?;
    for row in tables {
        sql.execute(&format!("DELETE FROM \"{}\"", row.text("name")?), &[])?;
    }
    Ok(())
}
