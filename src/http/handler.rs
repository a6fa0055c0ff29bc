//! What every handler shares: the JSON body it reads ([`body`]) and what it answers
//! ([`Outcome`]: the response, and what the Durable Object does [`After`] it).

use super::{ApiError, Request, Response};
use crate::json::Misfit;
use serde::de::DeserializeOwned;
use serde_json::Value as Json;

/// What the Durable Object does after answering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum After {
    Nothing,
    /// Arm the alarm unless one is already set.
    ArmIfNeeded,
    /// The fact gives the reconciler work: pull the alarm forward to now, coalesced to at most
    /// one extra tick a second (`crate::tick::wake`).
    Wake,
    /// The town is gone: delete the alarm and stop these agents in its container.
    Deleted {
        stop: Vec<String>,
    },
}

/// An answer plus what to do with the alarm.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub response: Response,
    pub after: After,
}

impl Outcome {
    pub fn new(response: Response, after: After) -> Self {
        Self { response, after }
    }
}

/// Parses a JSON object body into `T`; the error names the offending field.
pub fn body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    crate::json::read(object(req)?).map_err(invalid)
}

/// The body as a JSON object (none reads as `{}`).
fn object(req: &Request) -> Result<Json, ApiError> {
    let raw = if req.body.is_empty() {
        b"{}".as_slice()
    } else {
        &req.body
    };
    let value: Json = serde_json::from_slice(raw)
        .map_err(|e| ApiError::malformed(format!("the body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::malformed("the body must be a JSON object"));
    }
    Ok(value)
}

/// A body that did not fit: the field is the misfit's path, or at the top level the field
/// serde's message names (`missing field `title``).
fn invalid(misfit: Misfit) -> ApiError {
    let inner = misfit.error.to_string();
    let field = match misfit.path.as_str() {
        "" => inner
            .split('`')
            .nth(1)
            .map_or_else(|| "body".to_owned(), str::to_owned),
        p => p.to_owned(),
    };
    ApiError::invalid(&field, inner)
}
