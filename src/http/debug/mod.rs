//! The debug routes of API.md (debug token checked at the edge): read-only views of a town, the
//! dev-only clock, panic and injected tick failure, the dev-only benchmark routes (`bench`, left
//! out of the production Wasm), and the inputs of the rehearsals. A debug route never creates a
//! town.

#[cfg(any(feature = "bench", not(target_arch = "wasm32")))]
pub mod bench;
pub mod fault;
pub mod page;
pub mod rehearse;
pub mod status;
pub mod ticket;

use super::routes::Route;
use super::{ApiError, Request, Response};
use crate::domain::Ctx;
use crate::params;
use crate::store::{rows, town};
use crate::vocabulary::time::{iso, parse_iso, Millis, HOUR};
use serde::Deserialize;
use serde_json::{json, Value as Json};
use status::AlarmView;

/// What the runtime tells the debug routes about the platform.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DebugEnv {
    pub alarm: AlarmView,
    /// `ENVIRONMENT=development`.
    pub development: bool,
    /// Most events a dry run drains, as the tick would.
    pub drain_limit: u32,
}

/// Longest single clock advance accepted (a month).
pub const MAX_ADVANCE_MS: Millis = 31 * 24 * HOUR;

/// Serves the debug routes but the tick (`None`), which the runtime runs itself.
pub fn handle(ctx: &Ctx<'_>, env: &DebugEnv, route: &Route, req: &Request) -> Option<Response> {
    let result = match route {
        Route::DebugStatus => status_route(ctx, env, req),
        Route::DebugMetrics => metrics(ctx, req),
        Route::DebugDrainStatus => drain_status(ctx),
        Route::DebugNudges => nudges(ctx),
        Route::DebugBead(bead_id) => bead(ctx, bead_id),
        Route::DebugClock => clock(ctx, env, req),
        Route::DebugPanic => existing_town(ctx).and_then(|_| panic_on_purpose(env)),
        Route::DebugFault => fault::arm(ctx, env, req),
        Route::DebugDryRun => existing_town(ctx).and_then(|_| {
            Ok(Response::json(
                200,
                &rehearse::dry_run(ctx, env.drain_limit)?,
            ))
        }),
        Route::DebugReplay => replay(ctx, req),
        #[cfg(any(feature = "bench", not(target_arch = "wasm32")))]
        Route::DebugBenchSeed => bench::seed(ctx, env, req),
        #[cfg(any(feature = "bench", not(target_arch = "wasm32")))]
        Route::DebugBenchFloor => bench::floor(ctx, env, req),
        #[cfg(any(feature = "bench", not(target_arch = "wasm32")))]
        Route::DebugBenchStatements => bench::statements(ctx, env, req),
        #[cfg(any(feature = "bench", not(target_arch = "wasm32")))]
        Route::DebugBenchCounters => bench::counters(ctx, env),
        _ => return None,
    };
    Some(result.unwrap_or_else(|e| e.response()))
}

/// Dev only: panics, so that a test sees the stack a real panic logs (`scripts/symbolize`
/// names its frames) and that the panic fails only its request. 403 elsewhere.
fn panic_on_purpose(env: &DebugEnv) -> Result<Response, ApiError> {
    if !env.development {
        return Err(ApiError::forbidden(
            "the panic route exists only when ENVIRONMENT=development",
        ));
    }
    deliberate_panic()
}

/// Never inlined, so that it is a frame of its own in the logged stack.
#[inline(never)]
fn deliberate_panic() -> ! {
    panic!("deliberate panic (POST /debug/towns/{{t}}/panic)")
}

/// The town, or 404.
pub fn existing_town(ctx: &Ctx<'_>) -> Result<town::Town, ApiError> {
    town::get(ctx.sql)?.ok_or_else(|| ApiError::not_found("town"))
}

/// Whether the caller asked for a page (the browser's `Accept`).
pub fn wants_html(req: &Request) -> bool {
    req.get_header("accept").is_some_and(|a| {
        a.split(',')
            .next()
            .is_some_and(|m| m.trim().starts_with("text/html"))
    })
}

fn status_route(ctx: &Ctx<'_>, env: &DebugEnv, req: &Request) -> Result<Response, ApiError> {
    let t = existing_town(ctx)?;
    let doc = status::status(ctx.sql, &t, env.alarm, ctx.now)?;
    if wants_html(req) {
        let ticks = status::recent_ticks(ctx.sql, page::CHARTED_TICKS as u32)?;
        return Ok(Response::html(page::render(&doc, &ticks, None)));
    }
    Ok(Response::json(200, &doc))
}

fn metrics(ctx: &Ctx<'_>, req: &Request) -> Result<Response, ApiError> {
    existing_town(ctx)?;
    let limit = match req.query_param("limit") {
        None => 100,
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::invalid("limit", "must be an integer from 1 to 1000"))?,
    };
    let ticks = status::recent_ticks(ctx.sql, limit)?;
    Ok(Response::json(
        200,
        &json!({"count": ticks.len(), "ticks": ticks}),
    ))
}

fn drain_status(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    let t = existing_town(ctx)?;
    Ok(Response::json(
        200,
        &json!({
            "draining": t.drain.is_some(),
            "drain_nonce": t.drain.as_ref().map(|d| d.nonce.clone()),
            "started_at": t.drain.as_ref().map(|d| iso(d.started_at)),
        }),
    ))
}

fn nudges(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    existing_town(ctx)?;
    let list: Vec<Json> = ctx
        .sql
        .query(
            &format!(
                "SELECT {} FROM agent_nudges n WHERE n.delivered_at IS NULL
                 ORDER BY n.created_at DESC, n.rowid DESC LIMIT 20",
                rows::NUDGE_COLUMNS
            ),
            &[],
        )?
        .into_iter()
        .map(|r| rows::nudge(&r).map(|n| serde_json::to_value(n).expect("nudges serialize")))
        .collect::<Result<_, _>>()?;
    Ok(Response::json(200, &json!({"nudges": list})))
}

/// How many of an agent's reported events its bead view shows (newest first).
const AGENT_EVENTS_SHOWN: i64 = 50;

fn bead(ctx: &Ctx<'_>, bead_id: &str) -> Result<Response, ApiError> {
    existing_town(ctx)?;
    let sql = ctx.sql;
    let Some(row) = sql.first(
        &format!(
            "SELECT {} FROM beads b WHERE b.bead_id = ?",
            rows::BEAD_COLUMNS
        ),
        &params![bead_id],
    )?
    else {
        return Err(ApiError::not_found(format_args!("bead {bead_id}")));
    };
    let bead = rows::bead(&row)?;
    let review = sql
        .first(
            &format!(
                "SELECT {} FROM review_metadata r WHERE r.bead_id = ?",
                rows::REVIEW_COLUMNS
            ),
            &params![bead_id],
        )?
        .map(|r| rows::review(&r))
        .transpose()?;
    let convoy = sql
        .first(
            &format!(
                "SELECT {} FROM convoy_metadata c WHERE c.bead_id = ?",
                rows::CONVOY_COLUMNS
            ),
            &params![bead_id],
        )?
        .map(|r| rows::convoy(&r))
        .transpose()?;
    let edges = |column: &str| -> Result<Vec<Json>, ApiError> {
        Ok(sql
            .query(
                &format!(
                    "SELECT {cols}, o.status AS other_status FROM bead_dependencies d
                     LEFT JOIN beads o ON o.bead_id = d.{other}
                     WHERE d.{column} = ? ORDER BY d.rowid",
                    cols = rows::DEPENDENCY_COLUMNS,
                    other = if column == "bead_id" {
                        "depends_on_bead_id"
                    } else {
                        "bead_id"
                    },
                ),
                &params![bead_id],
            )?
            .into_iter()
            .map(|r| {
                let mut v = serde_json::to_value(rows::dependency(&r)?).expect("serializes");
                v["other_status"] = r.opt_text("other_status")?.into();
                Ok(v)
            })
            .collect::<Result<_, crate::sql::SqlError>>()?)
    };
    let hooked: Vec<Json> = sql
        .query(
            &format!(
                "SELECT {} FROM {} WHERE a.current_hook_bead_id = ?",
                rows::AGENT_COLUMNS,
                rows::AGENT_FROM
            ),
            &params![bead_id],
        )?
        .into_iter()
        .map(|r| rows::agent(&r).map(|a| serde_json::to_value(a).expect("serializes")))
        .collect::<Result<_, _>>()?;
    let history: Vec<Json> = sql
        .query(
            "SELECT agent_id, event_type, old_value, new_value, metadata, created_at
             FROM bead_events WHERE bead_id = ? ORDER BY created_at, rowid",
            &params![bead_id],
        )?
        .into_iter()
        .map(|r| r.to_json())
        .collect();
    Ok(Response::json(
        200,
        &json!({
            "bead": bead,
            "review": review,
            "convoy": convoy,
            "depends_on": edges("bead_id")?,
            "dependents": edges("depends_on_bead_id")?,
            "hooked_agents": hooked,
            "events": history,
            "agent_events": crate::store::agent_events::newest(sql, bead_id, AGENT_EVENTS_SHOWN)?,
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    from: String,
    to: String,
}

fn replay(ctx: &Ctx<'_>, req: &Request) -> Result<Response, ApiError> {
    existing_town(ctx)?;
    let body: ReplayBody = super::handler::body(req)?;
    let time = |field: &str, v: &str| {
        parse_iso(v).ok_or_else(|| ApiError::invalid(field, "must be an ISO-8601 UTC time"))
    };
    let (from, to) = (time("from", &body.from)?, time("to", &body.to)?);
    if from > to {
        return Err(ApiError::invalid("from", "must not be after to"));
    }
    Ok(Response::json(200, &rehearse::replay(ctx, from, to)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    advance_ms: i64,
}

fn clock(ctx: &Ctx<'_>, env: &DebugEnv, req: &Request) -> Result<Response, ApiError> {
    if !env.development {
        return Err(ApiError::forbidden(
            "the test clock exists only when ENVIRONMENT=development",
        ));
    }
    existing_town(ctx)?;
    let body: ClockBody = super::handler::body(req)?;
    if !(1..=MAX_ADVANCE_MS).contains(&body.advance_ms) {
        return Err(ApiError::invalid(
            "advance_ms",
            format_args!("must be from 1 to {MAX_ADVANCE_MS}"),
        ));
    }
    let offset = town::advance_clock(ctx.sql, body.advance_ms)?;
    Ok(Response::json(
        200,
        &json!({"offset_ms": offset, "now": iso(ctx.now + body.advance_ms)}),
    ))
}
