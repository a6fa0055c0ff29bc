//! The town-scoped container routes, `/api/towns/{t}/…`: eviction and the drain handshake,
//! a fresh container token, and the mayor's id for the container's boot.

use super::{data, data_for_tick};
use crate::domain::{drain, Ctx};
use crate::http::auth::bearer;
use crate::http::handler::Outcome;
use crate::http::routes::ContainerCall;
use crate::http::{ApiError, Request, Response};
use crate::jwt::{self, Expiry};
use crate::store::{agents, town::Town};
use crate::vocabulary::model::AgentRole;
use serde_json::{json, Value as Json};

/// Serves one town-scoped container call for `town`.
pub fn serve(
    ctx: &Ctx<'_>,
    town: &Town,
    call: ContainerCall,
    req: &Request,
    jwt_secret: &str,
) -> Result<Outcome, ApiError> {
    match call {
        ContainerCall::Eviction => {
            let nonce = drain::evict(ctx)?;
            Ok(data_for_tick(
                json!({"acknowledged": true, "drainNonce": nonce}),
            ))
        }
        ContainerCall::Ready => {
            let nonce = serde_json::from_slice::<Json>(&req.body)
                .ok()
                .and_then(|b| b.get("nonce").and_then(Json::as_str).map(str::to_owned))
                .filter(|n| !n.is_empty())
                .ok_or_else(|| ApiError::invalid("nonce", "Missing required field: nonce"))?;
            let cleared = drain::container_ready(ctx, &nonce)?;
            Ok(data_for_tick(json!({"cleared": cleared})))
        }
        ContainerCall::RefreshToken => refresh_token(ctx, town, req, jwt_secret).map(data),
        ContainerCall::DrainStatus => {
            let nonce = drain::nonce(ctx)?;
            Ok(data(
                json!({"draining": nonce.is_some(), "drainNonce": nonce}),
            ))
        }
        ContainerCall::MayorId => mayor_id(ctx),
    }
}

/// A new container token for the town (`userId` = the owner); `expiredInbound` says whether the
/// token presented had expired (the API token never has).
fn refresh_token(
    ctx: &Ctx<'_>,
    town: &Town,
    req: &Request,
    jwt_secret: &str,
) -> Result<Json, ApiError> {
    if jwt_secret.is_empty() {
        return Err(ApiError::unavailable(
            "GASTOWN_JWT_SECRET is not set: no container token can be signed",
        ));
    }
    let expired_inbound = bearer(req.get_header("authorization"))
        .and_then(|t| jwt::verify(jwt_secret, t, ctx.now, Expiry::Tolerated).ok())
        .is_some_and(|v| v.expired);
    let user_id = match town.owner_user_id.as_str() {
        "" => town.town_id.as_str(),
        owner => owner,
    };
    let token = jwt::sign_container(jwt_secret, &town.town_id, user_id, ctx.now);
    Ok(json!({"token": token, "expiredInbound": expired_inbound}))
}

/// The mayor's agent id, or `null`. The container reads `agentId` at the top level of the
/// answer (as well as in `data`); the mayor's credentials are not handed out here, so the
/// container skips its prewarm.
fn mayor_id(ctx: &Ctx<'_>) -> Result<Outcome, ApiError> {
    let agent_id = agents::first_with_role(ctx.sql, AgentRole::Mayor, None)?.map(|a| a.agent_id);
    let body = json!({"success": true, "agentId": agent_id, "data": {"agentId": agent_id}});
    Ok(Outcome::new(
        Response::json(200, &body),
        crate::http::handler::After::Nothing,
    ))
}
