//! Serving admitted requests inside a town's Durable Object.
//!
//! Every handler runs in one atomic unit: a request that is refused changes nothing, and an
//! accepted fact is durably recorded before the 2xx. A mutating request with an
//! `Idempotency-Key` header is answered from the stored answer when retried with the same key
//! (the same key with another request is a 422).

use super::handler::{body, After, Outcome};
use super::routes::{Route, Routed};
use super::{api, wire};
use super::{ApiError, Request, Response};
use crate::domain::Ctx;
use crate::effects::teardown;
use crate::params;
use crate::sql::atomically;
use crate::store::events;
use crate::store::town::{self, Put};
use crate::vocabulary::config::TownConfig;
use crate::vocabulary::time::{iso, Millis, HOUR};
use serde::Deserialize;
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};

/// Serves one admitted request for `town_id`; `jwt_secret` signs the container tokens it hands
/// out. Errors are answered in the route's shape.
pub fn handle(
    ctx: &Ctx<'_>,
    town_id: &str,
    routed: &Routed,
    req: &Request,
    jwt_secret: &str,
) -> Outcome {
    let refused = |e: ApiError| Outcome::new(e.response_in(routed.shape()), After::Nothing);
    let key = match idempotency_key(req, routed) {
        Ok(key) => key,
        Err(e) => return refused(e),
    };
    let fingerprint = key.as_ref().map(|_| fingerprint(req));
    if let (Some(key), Some(fp)) = (&key, &fingerprint) {
        if let Err(e) = forget_old_keys(ctx) {
            return refused(e);
        }
        match replay(ctx, key, fp) {
            Ok(Some(response)) => return Outcome::new(response, After::Nothing),
            Ok(None) => {}
            Err(e) => return refused(e),
        }
    }
    let result = atomically(ctx.sql, || -> Result<Outcome, ApiError> {
        let mut outcome = dispatch(ctx, town_id, routed, req, jwt_secret)?;
        if outcome.after == After::ArmIfNeeded && gives_work(&routed.route, &outcome.response) {
            outcome.after = After::Wake;
        }
        // A deleted town keeps nothing, not even the key of its DELETE: a town created again
        // under the same id starts with no answers to replay.
        let kept = routed.route != Route::DeleteTown;
        if let (Some(key), Some(fp), true) = (&key, &fingerprint, kept) {
            ctx.sql.execute(
                "INSERT INTO idempotency_keys (key, request, status, body, created_at)
                 VALUES (?, ?, ?, ?, ?)",
                &params![
                    key.as_str(),
                    fp.as_str(),
                    i64::from(outcome.response.status),
                    outcome.response.body.as_str(),
                    iso(ctx.now)
                ],
            )?;
        }
        Ok(outcome)
    });
    result.unwrap_or_else(refused)
}

/// Whether an accepted fact gives the reconciler something to do at once: a bead created or
/// cancelled (which may unblock others), a convoy created unstaged or started, an agent done or
/// completed (its bead moves on, its slot frees up). Routes of their own (a mayor message)
/// answer [`After::Wake`] themselves.
fn gives_work(route: &Route, response: &Response) -> bool {
    use super::routes::AgentCall;
    match route {
        Route::CreateBead | Route::PatchBead(_) | Route::StartConvoy(_) => true,
        Route::CreateConvoy => serde_json::from_slice::<Json>(response.body.as_bytes())
            .is_ok_and(|b| b["convoy"]["staged"] != Json::Bool(true)),
        Route::Agent { call, .. } => matches!(call, AgentCall::Done | AgentCall::Completed),
        _ => false,
    }
}

fn dispatch(
    ctx: &Ctx<'_>,
    town_id: &str,
    routed: &Routed,
    req: &Request,
    jwt_secret: &str,
) -> Result<Outcome, ApiError> {
    if routed.route == Route::PutTown {
        return put_town(ctx, town_id, req);
    }
    let Some(current) = town::get(ctx.sql)? else {
        return Err(ApiError::not_found(format_args!("town {town_id}")));
    };
    match &routed.route {
        Route::GetTown => Ok(Outcome::new(
            Response::json(200, &town_json(ctx, &current)?),
            After::Nothing,
        )),
        Route::PatchConfig => patch_config(ctx, &current, req),
        Route::DeleteTown => {
            let stop = teardown::running(&crate::store::agents::list(ctx.sql)?);
            town::delete(ctx.sql)?;
            Ok(Outcome::new(
                Response::no_content(),
                After::Deleted { stop },
            ))
        }
        Route::CreateRig => api::rigs::create(ctx, req),
        Route::ListRigs => api::rigs::list(ctx),
        Route::CreateBead => api::beads::create(ctx, req),
        Route::ListBeads => api::beads::list(ctx, req),
        Route::GetBead(b) => api::beads::get(ctx, b),
        Route::PatchBead(b) => api::beads::patch(ctx, b, req),
        Route::CreateConvoy => api::convoys::create(ctx, req),
        Route::StartConvoy(c) => api::convoys::start(ctx, c),
        Route::GetConvoy(c) => api::convoys::get(ctx, c),
        Route::ListAgents => api::agents::list(ctx, req),
        Route::ListReviews => api::reviews::list(ctx, req),
        Route::MayorMessage => api::mayor::message(ctx, req),
        Route::ListEscalations => api::escalations::list(ctx, req),
        Route::AcknowledgeEscalation(e) => api::escalations::acknowledge(ctx, e),
        Route::Agent { agent, call, .. } => wire::agent::serve(ctx, agent, *call, req),
        Route::Rig { rig, tool } => wire::rig::serve(ctx, rig, tool, req),
        Route::Container(call) => wire::container::serve(ctx, &current, *call, req, jwt_secret),
        _ => Err(ApiError::no_route()),
    }
}

/// Validates a partial configuration (a JSON merge patch) against the whole and stores it.
fn patch_config(ctx: &Ctx<'_>, current: &town::Town, req: &Request) -> Result<Outcome, ApiError> {
    let patch: Json = body(req)?;
    let config = current
        .config
        .patched(&patch)
        .map_err(|e| ApiError::invalid(&e.field, e.message))?;
    town::set_config(ctx.sql, &config, ctx.now)?;
    let updated = town::get(ctx.sql)?.expect("the town exists");
    Ok(Outcome::new(
        Response::json(200, &town_json(ctx, &updated)?),
        After::ArmIfNeeded,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutTownBody {
    owner_user_id: String,
    #[serde(default)]
    config: Option<Json>,
}

fn put_town(ctx: &Ctx<'_>, town_id: &str, req: &Request) -> Result<Outcome, ApiError> {
    let b: PutTownBody = body(req)?;
    if b.owner_user_id.trim().is_empty() {
        return Err(ApiError::invalid("owner_user_id", "must not be empty"));
    }
    let existing = town::get(ctx.sql)?;
    let config = match (&b.config, &existing) {
        (Some(patch), Some(t)) => t.config.patched(patch),
        (Some(c), None) => TownConfig::from_json(c),
        (None, Some(t)) => Ok(t.config.clone()),
        (None, None) => Ok(TownConfig::default()),
    }
    .map_err(|e| ApiError::invalid(&format!("config.{}", e.field), e.message))?;
    let put = town::put(ctx.sql, town_id, &b.owner_user_id, &config, ctx.now)?;
    let current = town::get(ctx.sql)?.expect("town was just written");
    let status = if put == Put::Created { 201 } else { 200 };
    Ok(Outcome::new(
        Response::json(status, &town_json(ctx, &current)?),
        After::ArmIfNeeded,
    ))
}

fn town_json(ctx: &Ctx<'_>, t: &town::Town) -> Result<Json, ApiError> {
    let backlog = events::backlog(ctx.sql, ctx.now)?;
    Ok(json!({
        "town_id": t.town_id,
        "owner_user_id": t.owner_user_id,
        "created_at": t.created_at,
        "config": t.config.redacted(),
        "draining": t.drain.is_some(),
        "counts": {
            "pending_events": backlog.count,
            "rigs": crate::store::rigs::list(ctx.sql)?.len(),
            "agents": crate::store::agents::list(ctx.sql)?.len(),
            "beads": crate::store::beads::count_by_status(ctx.sql)?,
        },
    }))
}

fn idempotency_key(req: &Request, routed: &Routed) -> Result<Option<String>, ApiError> {
    let Some(key) = req.get_header("idempotency-key") else {
        return Ok(None);
    };
    if !routed.mutates() {
        return Ok(None);
    }
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::invalid(
            "Idempotency-Key",
            "must be 1-255 visible ASCII characters",
        ));
    }
    Ok(Some(key.to_owned()))
}

/// How long an answer to an `Idempotency-Key` is kept.
pub const KEY_TTL: Millis = 24 * HOUR;

/// Forgets the answers older than [`KEY_TTL`].
fn forget_old_keys(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    ctx.sql.execute(
        "DELETE FROM idempotency_keys WHERE created_at < ?",
        &params![iso(ctx.now - KEY_TTL)],
    )?;
    Ok(())
}

/// The request as a key is bound to it: method, path and the body as parsed JSON (serde_json's
/// map is ordered by key, so the same JSON sent with other spacing or key order is the same
/// request; `tests/http_idempotency.rs` fails if that ever changes); a body that is not JSON
/// counts byte for byte.
fn fingerprint(req: &Request) -> String {
    let mut h = Sha256::new();
    h.update(req.method.as_bytes());
    h.update(b" ");
    h.update(req.path.as_bytes());
    h.update(b"\n");
    match serde_json::from_slice::<Json>(&req.body) {
        Ok(parsed) => h.update(parsed.to_string().as_bytes()),
        Err(_) => h.update(&req.body),
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn replay(ctx: &Ctx<'_>, key: &str, fp: &str) -> Result<Option<Response>, ApiError> {
    let Some(row) = ctx.sql.first(
        "SELECT request, status, body FROM idempotency_keys WHERE key = ?",
        &params![key],
    )?
    else {
        return Ok(None);
    };
    if row.text("request")? != fp {
        return Err(ApiError::unprocessable(
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different request",
        ));
    }
    let status = u16::try_from(row.int("status")?).unwrap_or(200);
    let body = row.text("body")?;
    Ok(Some(Response {
        status,
        content_type: "application/json",
        body,
    }))
}
