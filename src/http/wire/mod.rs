//! The container-facing routes of API.md revision 2: what the Gastown container and the agent
//! plugin inside it call, answered in the original's envelope `{success: true, data}` (errors
//! are rendered by [`super::town`] as `{success: false, error, code}`). Bodies are read
//! tolerantly: unknown keys are ignored, and an absent body is `{}`.

pub mod agent;
pub mod container;
pub mod rig;

use super::handler::{After, Outcome};
use super::{Request, Response};
use serde::de::DeserializeOwned;
use serde_json::{json, Value as Json};

/// 200 `{success: true, data}`.
fn data(data: Json) -> Outcome {
    Outcome::new(envelope(200, data), After::Nothing)
}

/// 200 `{success: true, data}` after recording something the next tick acts on.
fn data_for_tick(data: Json) -> Outcome {
    Outcome::new(envelope(200, data), After::ArmIfNeeded)
}

/// 201 `{success: true, data}`; new work may need the alarm.
fn created(data: Json) -> Outcome {
    Outcome::new(envelope(201, data), After::ArmIfNeeded)
}

fn envelope(status: u16, data: Json) -> Response {
    Response::json(status, &json!({"success": true, "data": data}))
}

/// The entity as JSON (model types serialize infallibly).
fn show<T: serde::Serialize>(entity: &T) -> Json {
    serde_json::to_value(entity).expect("model types serialize")
}

/// A body read the way the original reads best-effort bodies: anything that is not a JSON
/// object of the expected shape counts as absent.
fn lenient<T: DeserializeOwned + Default>(req: &Request) -> T {
    crate::json::from_slice(&req.body).unwrap_or_default()
}
