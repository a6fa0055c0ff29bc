//! The handlers of API.md's people routes, one module per entity. Each runs
//! inside the town's atomic unit (see [`super::town`]): it parses its body, calls one domain
//! operation and shows the result as JSON.

pub mod agents;
pub mod beads;
pub mod convoys;
pub mod escalations;
pub mod mayor;
pub mod page;
pub mod reviews;
pub mod rigs;

use super::handler::{After, Outcome};
use super::{ApiError, Response};
use crate::domain::DomainError;
use serde_json::Value as Json;

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::NotFound { what, id } => ApiError::not_found(format_args!("{what} {id}")),
            DomainError::Conflict(m) => ApiError::conflict(m),
            DomainError::Invalid { field, message } => ApiError::invalid(&field, message),
            DomainError::Cycle(m) => {
                ApiError::unprocessable("dependency_cycle", format!("dependency cycle: {m}"))
            }
            DomainError::Sql(e) => e.into(),
        }
    }
}

/// 200 with `body`.
fn ok(body: Json) -> Outcome {
    Outcome::new(Response::json(200, &body), After::Nothing)
}

/// 201 with `body`; new work may need the alarm.
fn created(body: Json) -> Outcome {
    Outcome::new(Response::json(201, &body), After::ArmIfNeeded)
}

/// The entity as JSON (model types serialize infallibly).
fn show<T: serde::Serialize>(entity: &T) -> Json {
    serde_json::to_value(entity).expect("model types serialize")
}
