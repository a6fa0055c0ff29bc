//! The Town domain (GASTOWN-DOMAIN.md sections 1-2): entities, their operations and how each
//! event changes them.

pub mod apply;
pub mod config;
pub mod model;

use crate::ports::Ids;
use crate::sql::Sql;
use crate::time::Millis;

/// What every domain operation runs with: the store, an id source and the tick's `now`.
pub struct Ctx<'a> {
    pub sql: &'a dyn Sql,
    pub ids: &'a dyn Ids,
    pub now: Millis,
}
