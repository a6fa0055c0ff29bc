//! The Town domain (GASTOWN-DOMAIN.md sections 1-2): entities, their operations and how each
//! event changes them.
//!
//! Every operation takes a [`Ctx`] and returns [`error::Result`]; it reads and writes through the
//! store and never performs I/O of its own. Callers run it inside an atomic unit, so an `Err`
//! leaves nothing behind.

pub mod agent_events;
pub mod agents;
pub mod apply;
pub mod beads;
pub mod convoys;
pub mod dispatch;
pub mod done;
pub mod drain;
pub mod error;
pub mod escalations;
pub mod exits;
pub mod git;
pub mod mail;
pub mod nudges;
pub mod pr_feedback;
pub mod prime;
pub mod reports;
pub mod reviews;
pub mod rigs;
pub mod triage;
pub mod triage_resolution;

use crate::ports::Ids;
use crate::sql::{Sql, SqlError};
use crate::store::events::{self, Subject};
use crate::vocabulary::events::EventKind;
use crate::vocabulary::time::Millis;
use serde_json::{Map, Value as Json};

pub use error::DomainError;

/// The actor of changes the town makes by itself.
pub const SYSTEM: &str = "system";

/// The actor of changes a person makes through the town API.
pub const API: &str = "api";

/// What every domain operation runs with: the store, an id source and the tick's `now`.
pub struct Ctx<'a> {
    pub sql: &'a dyn Sql,
    pub ids: &'a dyn Ids,
    pub now: Millis,
}

impl Ctx<'_> {
    /// Records a fact in the town event log for the next tick; returns its id.
    pub fn record(&self, kind: &EventKind, subject: &Subject) -> Result<String, SqlError> {
        let event_id = self.ids.new_id();
        events::insert(self.sql, &event_id, kind, subject, self.now)?;
        Ok(event_id)
    }
}

/// The object inside a `json!({...})` literal (metadata patches).
pub(crate) fn object(v: Json) -> Map<String, Json> {
    match v {
        Json::Object(m) => m,
        _ => Map::new(),
    }
}
