//! The `Town` Durable Object: one per town, SQLite-backed, driven by HTTP and its alarm. One
//! tick at a time (`super::ticking`), fenced off from a town deleted under it (`super::fence`);
//! facts that give the reconciler work pull the alarm forward (`crate::tick::wake`); every tick's
//! status goes to the live status sockets (`super::live`).

use super::adapters::{
    install_logging, is_development, remotes, tick_options, var, AeSink, PlatformClock, RandomIds,
};
use super::entry::{forwarded, respond};
use super::fence::Fenced;
use super::http::PlatformHttp;
use super::live;
use super::sql::DoSql;
use super::ticking::{Ticking, Turn};
use crate::domain::Ctx;
use crate::effects::teardown;
use crate::http::debug::{self, fault, status::AlarmView, DebugEnv};
use crate::http::debug::{page, status, ticket};
use crate::http::handler::After;
use crate::http::routes::{route, Credential, Route};
use crate::http::town::handle;
use crate::http::{self, ApiError};
use crate::ports::Clock;
use crate::sql::Sql;
use crate::store::{migrate, town};
use crate::tick::wake;
use crate::tick::{self, TickEnv, TickReport};
use crate::vocabulary::time::Millis;
use serde_json::Value as Json;
use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

#[durable_object]
pub struct Town {
    state: State,
    env: Env,
    // Interior mutability is unwind-safe here: a panic leaves at worst a counter or a flag that
    // is re-checked on the next request.
    sql: AssertUnwindSafe<DoSql>,
    /// Whether this instance has checked (and, for a new town, applied) the schema.
    schema_ready: AssertUnwindSafe<Cell<bool>>,
    ticking: AssertUnwindSafe<Ticking>,
}

/// The town's clock: the platform's, moved by the town's dev-only offset.
fn clock_of(row: Option<&town::Town>) -> PlatformClock {
    PlatformClock {
        offset_ms: row.map_or(0, |t| t.clock_offset_ms),
    }
}

/// The town's id ('' without a row).
fn id_of(row: Option<town::Town>) -> String {
    row.map(|t| t.town_id).unwrap_or_default()
}

/// `Date.now()`: the platform's time, which the alarm keeps (the town's dev-only clock offset
/// moves only what the town records).
fn platform_now() -> Millis {
    worker::js_sys::Date::now() as Millis
}

impl Town {
    /// Applies the migrations when the schema exists or `create` is set; returns whether a
    /// schema is there. A request to an unknown town never writes anything.
    fn ensure_schema(&self, create: bool) -> std::result::Result<bool, ApiError> {
        if self.schema_ready.get() {
            return Ok(true);
        }
        let exists = self
            .sql
            .first(
                "SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
                &[],
            )?
            .is_some();
        if !exists && !create {
            return Ok(false);
        }
        migrate::migrate(&*self.sql, platform_now())?;
        self.schema_ready.set(true);
        Ok(true)
    }

    /// The town's row (none when the town has none or it cannot be read).
    fn row(&self) -> Option<town::Town> {
        town::get(&*self.sql).ok().flatten()
    }

    fn clock(&self) -> PlatformClock {
        clock_of(self.row().as_ref())
    }

    /// The HTTP port of this town's outbound calls, its container's binding included.
    #[cfg(feature = "bench")]
    fn http(&self) -> PlatformHttp {
        PlatformHttp::for_town(&self.env, &id_of(self.row()))
    }

    /// Runs one tick in `turn`, its ports fenced by the town's incarnation at its start.
    async fn run_tick(&self, turn: &Turn<'_>) -> TickReport {
        // One read of the town row for both the tick's clock and its container.
        let row = self.row();
        let clock = clock_of(row.as_ref());
        let town_id = id_of(row);
        let fence = self.ticking.fence(turn.incarnation);
        let sql = Fenced {
            inner: &*self.sql,
            fence,
        };
        let sink = Fenced {
            inner: AeSink::from_env(&self.env),
            fence,
        };
        let http = Fenced {
            inner: PlatformHttp::for_town(&self.env, &town_id),
            fence,
        };
        let env = TickEnv {
            sql: &sql,
            ids: &RandomIds,
            clock: &clock,
            sink: &sink,
            http: &http,
            remotes: &remotes(&self.env),
            options: tick_options(&self.env),
            // A failure the fault suite armed (development only, see `debug::fault`).
            watch: &fault::Injected { town_id: &town_id },
        };
        let report = tick::run(&env).await;
        if !fence.holds() {
            crate::log::warn("tick_fenced_off", &[("reason", "the town was deleted")]);
        }
        report
    }

    /// The alarm and the tick lock as the status shows them.
    async fn alarm_view(&self, sql: &dyn Sql) -> Result<AlarmView> {
        let options = tick_options(&self.env);
        let active = crate::tick::activity::is_active(sql, self.clock().now_ms());
        Ok(AlarmView {
            next_fire_at: self.state.storage().get_alarm().await?,
            interval_ms: if active {
                options.active_interval_ms
            } else {
                options.idle_interval_ms
            },
            active,
            tick: self.ticking.view(),
        })
    }

    /// Sends the status snapshot to the live status sockets, if any are open.
    async fn broadcast_status(&self) -> Result<()> {
        if !live::watched(&self.state) {
            return Ok(());
        }
        let Some(town) = self.row() else {
            return Ok(());
        };
        let alarm = self.alarm_view(&*self.sql).await?;
        match status::status(&*self.sql, &town, alarm, clock_of(Some(&town)).now_ms()) {
            Ok(snapshot) => live::broadcast(&self.state, &snapshot),
            Err(e) => crate::log::error("status_snapshot_failed", &[("error", &e.to_string())]),
        }
        Ok(())
    }

    /// Pulls the alarm forward for an accepted fact that gives the reconciler work: to now, or
    /// a second after the last tick started (`crate::tick::wake`), and only when that is sooner than
    /// the armed alarm. `ALARM_WAKE_ON_FACTS=false` leaves the alarm to its schedule.
    async fn wake(&self) -> Result<()> {
        if var(&self.env, "ALARM_WAKE_ON_FACTS") == "false" {
            return self.arm_if_needed().await;
        }
        let now = platform_now();
        let at = self.ticking.wake_at(now);
        let storage = self.state.storage();
        if wake::moves(storage.get_alarm().await?, at) {
            storage.set_alarm(at - now).await?;
        }
        Ok(())
    }

    async fn arm_if_needed(&self) -> Result<()> {
        let storage = self.state.storage();
        let now = platform_now();
        match storage.get_alarm().await? {
            Some(at) if at > now => Ok(()),
            _ => {
                let delay = tick_options(&self.env).active_interval_ms;
                storage.set_alarm(delay).await
            }
        }
    }

    async fn serve(&self, ours: &http::Request) -> Result<http::Response> {
        let routed = match route(ours) {
            Ok(r) => r,
            Err(e) => return Ok(e.response()),
        };
        let town_id = routed.town_id.clone().unwrap_or_default();
        match self.ensure_schema(routed.route == Route::PutTown) {
            Ok(true) => {}
            Ok(false) => {
                let e = ApiError::not_found(format_args!("town {town_id}"));
                return Ok(e.response_in(routed.shape()));
            }
            Err(e) => return Ok(e.response_in(routed.shape())),
        }
        let clock = self.clock();
        let ctx = Ctx {
            sql: &*self.sql,
            ids: &RandomIds,
            now: clock.now_ms(),
        };
        if routed.credential() == Credential::Debug {
            return self.serve_debug(&ctx, &routed.route, ours).await;
        }
        let jwt_secret = super::adapters::secret(&self.env, "GASTOWN_JWT_SECRET");
        let outcome = handle(&ctx, &town_id, &routed, ours, &jwt_secret);
        if matches!(outcome.after, After::Deleted { .. }) {
            // Before any await: a tick suspended on I/O resumes fenced off.
            self.ticking.town_deleted();
        }
        match outcome.after {
            After::Nothing => {}
            After::ArmIfNeeded => self.arm_if_needed().await?,
            After::Wake => self.wake().await?,
            After::Deleted { stop } => {
                self.state.storage().delete_alarm().await?;
                let http = PlatformHttp::for_town(&self.env, &town_id);
                teardown::stop_all(&http, &remotes(&self.env), &stop).await;
            }
        }
        Ok(outcome.response)
    }
}

impl Town {
    async fn serve_debug(
        &self,
        ctx: &Ctx<'_>,
        route: &Route,
        req: &http::Request,
    ) -> Result<http::Response> {
        let options = tick_options(&self.env);
        let env = DebugEnv {
            alarm: self.alarm_view(ctx.sql).await?,
            development: is_development(&self.env),
            drain_limit: options.drain_limit,
        };
        if *route == Route::DebugStatus && debug::wants_html(req) {
            return Ok(self.status_page(ctx, &env).unwrap_or_else(|e| e.response()));
        }
        if let Some(response) = debug::handle(ctx, &env, route, req) {
            return Ok(response);
        }
        match route {
            Route::DebugTick => {
                if let Err(e) = debug::existing_town(ctx) {
                    return Ok(e.response());
                }
                let turn = self.ticking.turn(platform_now).await;
                let report = self.run_tick(&turn).await;
                if !self.ticking.fence(turn.incarnation).holds() {
                    return Ok(ApiError::conflict(
                        "the town was deleted while this tick ran; nothing the tick did after \
                         that was kept",
                    )
                    .response());
                }
                let waited = turn.waited;
                drop(turn);
                self.broadcast_status().await?;
                Ok(http::Response::json(
                    200,
                    &serde_json::json!({
                        "metrics": report.metrics,
                        "point": report.point,
                        "rearm_ms": report.rearm.delay_ms(),
                        "waited_for_running_tick": waited,
                    }),
                ))
            }
            #[cfg(feature = "bench")]
            Route::DebugBenchCalls => {
                let remotes = remotes(&self.env);
                let answer = debug::bench::calls(ctx, &env, req, &self.http(), &remotes).await;
                Ok(answer.unwrap_or_else(|e| e.response()))
            }
            _ => Ok(ApiError::no_route().response()),
        }
    }

    /// The status page, with a ticket for its live socket.
    fn status_page(
        &self,
        ctx: &Ctx<'_>,
        env: &DebugEnv,
    ) -> std::result::Result<http::Response, ApiError> {
        let t = debug::existing_town(ctx)?;
        let doc: Json = status::status(ctx.sql, &t, env.alarm, ctx.now)?;
        let ticks = status::recent_ticks(ctx.sql, page::CHARTED_TICKS as u32)?;
        let debug_token = super::adapters::secret(&self.env, "GASTOWN_DEBUG_TOKEN");
        let ticket = ticket::issue(&debug_token, &t.town_id, platform_now());
        Ok(http::Response::html(page::render(
            &doc,
            &ticks,
            Some(&ticket),
        )))
    }

    /// `GET /debug/towns/{t}/status/ws` (admitted at the edge with the debug token or a ticket).
    fn open_status_socket(&self, town_id: &str, req: &http::Request) -> Result<Response> {
        let exists = self.ensure_schema(false).unwrap_or(false)
            && town::get(&*self.sql).ok().flatten().is_some();
        if !exists {
            return respond(&ApiError::not_found(format_args!("town {town_id}")).response());
        }
        let upgrade = req
            .get_header("upgrade")
            .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
        if !upgrade {
            return respond(
                &ApiError::malformed("this route takes a WebSocket upgrade (Upgrade: websocket)")
                    .response(),
            );
        }
        live::accept(&self.state, req)
    }
}

impl DurableObject for Town {
    fn new(state: State, env: Env) -> Self {
        console_error_panic_hook::set_once();
        install_logging(&env);
        let sql = DoSql::new(&state.storage());
        Self {
            state,
            env,
            sql: AssertUnwindSafe(sql),
            schema_ready: AssertUnwindSafe(Cell::new(false)),
            ticking: AssertUnwindSafe(Ticking::default()),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let ours = forwarded(&mut req).await?;
        if let Ok(routed) = route(&ours) {
            if routed.route == Route::DebugStatusSocket {
                let town_id = routed.town_id.unwrap_or_default();
                return self.open_status_socket(&town_id, &ours);
            }
        }
        respond(&self.serve(&ours).await?)
    }

    async fn alarm(&self) -> Result<Response> {
        if !self.ensure_schema(false).unwrap_or(false) {
            return Response::ok("no town");
        }
        let turn = self.ticking.turn(platform_now).await;
        let report = self.run_tick(&turn).await;
        if !self.ticking.fence(turn.incarnation).holds() {
            // The delete removed the alarm (and a town created since armed its own).
            return Response::ok("the town was deleted during the tick");
        }
        let now = platform_now();
        let rearm_at = report.rearm.delay_ms().map(|delay| now + delay);
        let storage = self.state.storage();
        match wake::after_tick(rearm_at, self.ticking.take_woken()) {
            Some(at) => storage.set_alarm((at - now).max(0)).await?,
            None => storage.delete_alarm().await?,
        }
        drop(turn);
        self.broadcast_status().await?;
        Response::ok("ticked")
    }

    async fn websocket_message(
        &self,
        _ws: worker::WebSocket,
        _message: worker::WebSocketIncomingMessage,
    ) -> Result<()> {
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: worker::WebSocket,
        code: usize,
        _reason: String,
        _was_clean: bool,
    ) -> Result<()> {
        // Complete the closing handshake; 1005 and 1006 are not codes one may send.
        let code = u16::try_from(code)
            .ok()
            .filter(|c| !matches!(c, 1005 | 1006));
        let _ = ws.close(code.or(Some(1000)), Some("closed"));
        Ok(())
    }

    async fn websocket_error(&self, ws: worker::WebSocket, _error: worker::Error) -> Result<()> {
        let _ = ws.close(Some(1011), Some("error"));
        Ok(())
    }
}
