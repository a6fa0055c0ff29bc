//! The `Town` Durable Object: one per town, SQLite-backed, driven by HTTP and its alarm.

use super::adapters::{
    install_logging, is_development, remotes, tick_options, AeSink, PlatformClock, RandomIds,
};
use super::entry::{forwarded, respond};
use super::http::PlatformHttp;
use super::sql::DoSql;
use crate::domain::Ctx;
use crate::effects::teardown;
use crate::http::debug::{self, fault, status::AlarmView, DebugEnv};
use crate::http::routes::{route, Credential, Route};
use crate::http::town::{handle, After};
use crate::http::{self, ApiError};
use crate::ports::Clock;
use crate::sql::Sql;
use crate::store::activity::has_active_work;
use crate::store::{migrate, town};
use crate::tick::{self, TickEnv, TickReport};
use crate::time::Millis;
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
        migrate::migrate(&*self.sql, worker::js_sys::Date::now() as Millis)?;
        self.schema_ready.set(true);
        Ok(true)
    }

    fn clock(&self) -> PlatformClock {
        let offset_ms = town::get(&*self.sql)
            .ok()
            .flatten()
            .map_or(0, |t| t.clock_offset_ms);
        PlatformClock { offset_ms }
    }

    /// The HTTP port of this town's outbound calls, its container's binding included.
    #[cfg(feature = "bench")]
    fn http(&self) -> PlatformHttp {
        let town_id = town::get(&*self.sql)
            .ok()
            .flatten()
            .map(|t| t.town_id)
            .unwrap_or_default();
        PlatformHttp::for_town(&self.env, &town_id)
    }

    async fn run_tick(&self) -> Result<TickReport> {
        let clock = self.clock();
        let sink = AeSink::from_env(&self.env);
        let town_id = town::get(&*self.sql)
            .ok()
            .flatten()
            .map(|t| t.town_id)
            .unwrap_or_default();
        let env = TickEnv {
            sql: &*self.sql,
            ids: &RandomIds,
            clock: &clock,
            sink: &sink,
            http: &PlatformHttp::for_town(&self.env, &town_id),
            remotes: &remotes(&self.env),
            options: tick_options(&self.env),
            // A failure the fault suite armed (development only, see `debug::fault`).
            watch: &fault::Injected { town_id: &town_id },
        };
        Ok(tick::run(&env).await)
    }

    async fn arm_if_needed(&self) -> Result<()> {
        let storage = self.state.storage();
        let now = worker::js_sys::Date::now() as Millis;
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
        match outcome.after {
            After::Nothing => {}
            After::ArmIfNeeded => self.arm_if_needed().await?,
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
        let active = has_active_work(ctx.sql).unwrap_or(true);
        let env = DebugEnv {
            alarm: AlarmView {
                next_fire_at: self.state.storage().get_alarm().await?,
                interval_ms: if active {
                    options.active_interval_ms
                } else {
                    options.idle_interval_ms
                },
                active,
            },
            development: is_development(&self.env),
            drain_limit: options.drain_limit,
        };
        if let Some(response) = debug::handle(ctx, &env, route, req) {
            return Ok(response);
        }
        match route {
            Route::DebugTick => {
                if let Err(e) = debug::existing_town(ctx) {
                    return Ok(e.response());
                }
                let report = self.run_tick().await?;
                Ok(http::Response::json(
                    200,
                    &serde_json::json!({
                        "metrics": report.metrics,
                        "point": report.point,
                        "rearm_ms": report.rearm.delay_ms(),
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
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let ours = forwarded(&mut req).await?;
        respond(&self.serve(&ours).await?)
    }

    async fn alarm(&self) -> Result<Response> {
        if !self.ensure_schema(false).unwrap_or(false) {
            return Response::ok("no town");
        }
        let report = self.run_tick().await?;
        let storage = self.state.storage();
        match report.rearm.delay_ms() {
            Some(delay) => storage.set_alarm(delay).await?,
            None => storage.delete_alarm().await?,
        }
        Response::ok("ticked")
    }
}
