//! How a recorded event changes the town (GASTOWN-DOMAIN.md 2.2).

use super::Ctx;
use crate::events::RecordedEvent;
use std::fmt;

/// Why an event could not be applied (the tick retries it, then poisons it).
#[derive(Debug, Clone, PartialEq)]
pub enum ApplyError {
    /// The stored payload no longer parses as its type.
    BadPayload(String),
    Sql(crate::sql::SqlError),
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::BadPayload(m) => write!(f, "bad payload: {m}"),
            ApplyError::Sql(e) => e.fmt(f),
        }
    }
}

impl From<crate::sql::SqlError> for ApplyError {
    fn from(e: crate::sql::SqlError) -> Self {
        ApplyError::Sql(e)
    }
}

/// Applies one event.
pub fn apply_event(_ctx: &Ctx<'_>, event: &RecordedEvent) -> Result<(), ApplyError> {
    let _kind = event
        .kind
        .as_ref()
        .map_err(|e| ApplyError::BadPayload(e.to_string()))?;
    Ok(())
}
