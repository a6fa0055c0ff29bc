//! Keeping the town's container in step before a tick (UPSTREAM-WIRE.md section 1): a health
//! ping when the town needs its container (with the drain headers once a drain is old), the
//! town config pushed once after it changed (`POST /sync-config`), and the container token
//! pushed hourly while there is work or a live mayor (`POST /refresh-token`). What was pushed is
//! remembered on the town row. Failures here are logged and never stop the tick; a push that
//! failed is simply due again next tick.

use crate::domain::Ctx;
use crate::effects::container::DrainHeaders;
use crate::effects::credentials::{config_digest, Credentials};
use crate::effects::remotes::Remotes;
use crate::ports::Http;
use crate::sql::{Sql, SqlError};
use crate::store::town::Town;
use crate::store::upkeep;
use crate::vocabulary::time::{iso, Millis, HOUR, MINUTE};

/// The container token is pushed again after this long (it is valid 8 hours).
pub const TOKEN_PUSH_EVERY_MS: Millis = HOUR;
/// A drain older than this sends its nonce with the health ping, so the container reports ready.
pub const DRAIN_HEADERS_AFTER_MS: Millis = 11 * MINUTE;

/// What the container is due this tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Due {
    /// The town has rigs and active work, is draining, or got a rig in the last 5 minutes.
    pub ping: bool,
    /// The town has rigs and its config is not the one the container last accepted.
    pub sync_config: bool,
    /// Work on the town's rigs or a live mayor, and no token pushed for
    /// [`TOKEN_PUSH_EVERY_MS`].
    pub push_token: bool,
}

/// What is due, given whether the town has active work and its config's digest.
pub fn due(
    sql: &dyn Sql,
    town: &Town,
    active: bool,
    digest: &str,
    now: Millis,
) -> Result<Due, SqlError> {
    let row = sql.one(
        "SELECT COUNT(*) AS rigs, COALESCE(MAX(created_at), '') AS newest FROM rigs",
        &[],
    )?;
    let rigs = row.int("rigs")? > 0;
    let pushed = upkeep::pushed(sql)?;
    let fresh_rig = row.text("newest")? > iso(now - 5 * MINUTE);
    let token_stale = pushed
        .token_at
        .is_none_or(|at| now - at >= TOKEN_PUSH_EVERY_MS);
    Ok(Due {
        ping: rigs && (active || town.drain.is_some() || fresh_rig),
        sync_config: rigs && pushed.config_digest.as_deref() != Some(digest),
        push_token: token_stale && ((rigs && active) || upkeep::mayor_live(sql)?),
    })
}

/// The drain headers of the health ping: only once the drain is older than
/// [`DRAIN_HEADERS_AFTER_MS`].
pub fn drain_headers(town: &Town, now: Millis) -> Option<DrainHeaders<'_>> {
    town.drain
        .as_ref()
        .filter(|d| now - d.started_at > DRAIN_HEADERS_AFTER_MS)
        .map(|d| DrainHeaders {
            nonce: &d.nonce,
            town_id: &town.town_id,
        })
}

/// Whether any upkeep call is due (the tick then lends it one call in flight).
pub fn any(due: Due) -> bool {
    calls(due) > 0
}

/// How many calls the upkeep makes.
pub fn calls(due: Due) -> usize {
    [due.ping, due.sync_config, due.push_token]
        .into_iter()
        .filter(|d| *d)
        .count()
}

/// Makes the calls `due` asks for, one after the other, with `header` as the town config, and
/// remembers what the container took.
pub async fn run<H: Http>(
    ctx: &Ctx<'_>,
    http: &H,
    remotes: &Remotes,
    town: &Town,
    header: &str,
    due: Due,
) {
    let container = remotes.container(http);
    if due.ping {
        if let Ok(status) = container.health(header, drain_headers(town, ctx.now)).await {
            crate::log::debug("container_health", &[("status", &status)]);
        }
    }
    if due.sync_config && container.sync_config(header).await.is_ok() {
        remember(
            "config",
            upkeep::config_accepted(ctx.sql, &config_digest(header)),
        );
    }
    if due.push_token {
        match Credentials::new(town, &remotes.jwt_secret, &remotes.gastown_api_url, ctx.now) {
            Ok(creds) => {
                let pushed = container
                    .refresh_token(creds.container_token(), &town.town_id)
                    .await;
                if pushed.is_ok() {
                    remember("token", upkeep::token_pushed(ctx.sql, ctx.now));
                }
            }
            Err(e) => crate::log::warn("container_token_not_pushed", &[("why", &e.to_string())]),
        }
    }
}

fn remember(what: &str, written: Result<(), SqlError>) {
    if let Err(e) = written {
        crate::log::error(
            "container_upkeep_unrecorded",
            &[("what", what), ("error", &e.to_string())],
        );
    }
}
