//! `POST /mayor/message`: a person's message to the town's mayor. It is kept as mail to the
//! mayor (registered if the town has none yet) and pushed by the tick it wakes (within a
//! second) through the mayor-notification path: messaged when alive, else started with it as
//! its prompt; retried by later ticks until the container took it. Hence 202: accepted, not yet
//! heard.

use crate::domain::mail::{self, Letter};
use crate::domain::{agents, Ctx, API};
use crate::http::handler::{body, After, Outcome};
use crate::http::{ApiError, Request, Response};
use crate::vocabulary::model::AgentRole;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MayorMessage {
    message: String,
}

pub fn message(ctx: &Ctx<'_>, req: &Request) -> Result<Outcome, ApiError> {
    let m: MayorMessage = body(req)?;
    if m.message.trim().is_empty() {
        return Err(ApiError::invalid("message", "must not be empty"));
    }
    let mayor = agents::get_or_create(ctx, AgentRole::Mayor, None)?;
    let sent = mail::send(
        ctx,
        &Letter {
            from_agent_id: API,
            to_agent_id: &mayor.agent_id,
            subject: "Message from the town's owner",
            body: &m.message,
        },
    )?;
    Ok(Outcome::new(
        Response::json(
            202,
            &json!({
                "queued": true,
                "mayor_agent_id": mayor.agent_id,
                "mail_id": sent.mail_id,
            }),
        ),
        After::Wake,
    ))
}
