//! The benchmarks' routes (`scripts/bench`), development only (403 otherwise) and only in Wasm
//! builds with the `bench` feature (404 in the production Worker), so that a workload is seeded
//! and the floor is run inside the town's Durable Object itself:
//! - `POST /debug/towns/{t}/bench/seed` `{kind, beads, events, seed}`: replaces the town's
//!   contents with that [`workload`] (`kind` `backlog`, the default, or `steady`) and answers the
//!   rows written per table;
//! - `POST /debug/towns/{t}/bench/floor` `{reads, writes}`: runs the raw-SQL [`floor`] and
//!   answers the rows it moved, plus the port's counters over the script;
//! - `POST /debug/towns/{t}/bench/statements` `{count}`: runs [`floor::statements`] (`count`
//!   point reads, at most 100,000), the cost of a statement whatever it does;
//! - `POST /debug/towns/{t}/bench/calls` `{count}`: runs [`floor::calls`] (`count` bare calls
//!   to the container, at most 10,000), the floor of a tick's remote calls; served by the
//!   runtime, which holds the HTTP port;
//! - `GET /debug/towns/{t}/bench/counters`: the SQL port's row counters since this instance of
//!   the town started (a driver reads them around a tick to count the tick's rows).

use super::{existing_town, DebugEnv};
use crate::bench::{floor, workload};
use crate::domain::Ctx;
use crate::effects::remotes::Remotes;
use crate::http::{ApiError, Request, Response};
use crate::ports::Http;
use crate::sql::IoCounters;
use serde_json::json;

fn development_only(env: &DebugEnv) -> Result<(), ApiError> {
    if env.development {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "the benchmark routes exist only when ENVIRONMENT=development",
        ))
    }
}

fn counters_json(c: IoCounters) -> serde_json::Value {
    json!({"rows_read": c.rows_read, "rows_written": c.rows_written})
}

/// The body of `POST .../bench/seed`: a [`workload::Spec`] and its kind.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedBody {
    #[serde(default)]
    kind: workload::Kind,
    beads: u32,
    events: u32,
    seed: u64,
}

pub fn seed(ctx: &Ctx<'_>, env: &DebugEnv, req: &Request) -> Result<Response, ApiError> {
    development_only(env)?;
    existing_town(ctx)?;
    let body: SeedBody = crate::http::handler::body(req)?;
    let spec = workload::Spec {
        beads: body.beads,
        events: body.events,
        seed: body.seed,
    };
    let seeded = workload::seed_kind(ctx.sql, body.kind, &spec, ctx.now).map_err(|e| match e {
        workload::SeedError::Spec(e) => ApiError::invalid("beads/events", e.0),
        workload::SeedError::Sql(e) => e.into(),
    })?;
    Ok(Response::json(
        200,
        &json!({"kind": body.kind, "spec": spec, "rows": seeded.rows}),
    ))
}

pub fn floor(ctx: &Ctx<'_>, env: &DebugEnv, req: &Request) -> Result<Response, ApiError> {
    development_only(env)?;
    existing_town(ctx)?;
    let target: floor::Rows = crate::http::handler::body(req)?;
    let before = ctx.sql.counters();
    let done = floor::run(ctx.sql, target, ctx.now)?;
    let after = ctx.sql.counters();
    Ok(Response::json(
        200,
        &json!({
            "reads": done.reads,
            "writes": done.writes,
            "counters": counters_json(IoCounters {
                rows_read: after.rows_read - before.rows_read,
                rows_written: after.rows_written - before.rows_written,
            }),
        }),
    ))
}

/// The body of `POST .../bench/statements` and `.../bench/calls`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Count {
    count: u64,
}

impl Count {
    /// The count of `req` in a development town, at most `max`.
    fn of(ctx: &Ctx<'_>, env: &DebugEnv, req: &Request, max: u64) -> Result<u64, ApiError> {
        development_only(env)?;
        existing_town(ctx)?;
        let Count { count } = crate::http::handler::body(req)?;
        if count > max {
            return Err(ApiError::invalid("count", format!("at most {max}")));
        }
        Ok(count)
    }
}

/// Most statements one request runs.
const MAX_STATEMENTS: u64 = 100_000;

/// Most calls one request makes.
const MAX_CALLS: u64 = 10_000;

pub fn statements(ctx: &Ctx<'_>, env: &DebugEnv, req: &Request) -> Result<Response, ApiError> {
    let count = Count::of(ctx, env, req, MAX_STATEMENTS)?;
    let ran = floor::statements(ctx.sql, count)?;
    Ok(Response::json(200, &json!({ "count": ran })))
}

pub async fn calls<H: Http>(
    ctx: &Ctx<'_>,
    env: &DebugEnv,
    req: &Request,
    http: &H,
    remotes: &Remotes,
) -> Result<Response, ApiError> {
    let count = Count::of(ctx, env, req, MAX_CALLS)?;
    let answered = floor::calls(http, remotes, count).await;
    Ok(Response::json(
        200,
        &json!({ "count": count, "answered": answered }),
    ))
}

pub fn counters(ctx: &Ctx<'_>, env: &DebugEnv) -> Result<Response, ApiError> {
    development_only(env)?;
    existing_town(ctx)?;
    Ok(Response::json(200, &counters_json(ctx.sql.counters())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::debug::{handle, status::AlarmView};
    use crate::http::routes::Route;
    use crate::sql::native::NativeSql;
    use crate::sql::Sql;
    use crate::store::{migrate, town};
    use crate::testing::ports::SequentialIds;
    use crate::vocabulary::config::TownConfig;

    const NOW: i64 = 1_795_920_000_000;

    fn env(development: bool) -> DebugEnv {
        DebugEnv {
            alarm: AlarmView {
                next_fire_at: None,
                interval_ms: 5_000,
                active: false,
                tick: Default::default(),
            },
            development,
            drain_limit: 500,
        }
    }

    fn call(db: &NativeSql, development: bool, route: Route, body: serde_json::Value) -> Response {
        let ids = SequentialIds::new("t");
        let ctx = Ctx {
            sql: db,
            ids: &ids,
            now: NOW,
        };
        let req = Request::new("POST", "/").json(&body);
        handle(&ctx, &env(development), &route, &req).expect("a debug route")
    }

    fn schema() -> NativeSql {
        let db = NativeSql::in_memory();
        migrate::migrate(&db, NOW).unwrap();
        db
    }

    #[test]
    fn seeds_runs_the_floor_and_counts_in_development() {
        let db = schema();
        town::put(&db, "t", "owner", &TownConfig::default(), NOW).unwrap();
        let seeded = call(
            &db,
            true,
            Route::DebugBenchSeed,
            json!({"beads": 100, "events": 10, "seed": 9}),
        );
        assert_eq!(seeded.status, 200, "{}", seeded.body);
        assert_eq!(seeded.body_json()["rows"]["beads"], 100);
        assert_eq!(seeded.body_json()["rows"]["town_events"], 110);

        let before = call(&db, true, Route::DebugBenchCounters, json!({})).body_json();
        let floor = call(
            &db,
            true,
            Route::DebugBenchFloor,
            json!({"reads": 120, "writes": 30}),
        )
        .body_json();
        assert_eq!(
            (floor["reads"].as_u64(), floor["writes"].as_u64()),
            (Some(120), Some(30))
        );
        assert_eq!(floor["counters"]["rows_read"], 120);
        let after = call(&db, true, Route::DebugBenchCounters, json!({})).body_json();
        let read = |v: &serde_json::Value| v["rows_read"].as_u64().unwrap();
        // The floor's rows plus the town row that the floor and the counters route each read.
        assert_eq!(read(&after) - read(&before), 120 + 2);

        let ran = call(&db, true, Route::DebugBenchStatements, json!({"count": 25}));
        assert_eq!(ran.body_json()["count"], 25);
        let last = call(&db, true, Route::DebugBenchCounters, json!({})).body_json();
        // 25 point reads of the town row, plus the town row read by each of the two routes.
        assert_eq!(read(&last) - read(&after), 25 + 2);
        for bad in [json!({"count": 100_001}), json!({"count": -1}), json!({})] {
            let res = call(&db, true, Route::DebugBenchStatements, bad);
            assert_eq!(res.status, 400, "{}", res.body);
        }
    }

    #[test]
    fn outside_development_every_bench_route_is_refused_and_changes_nothing() {
        let db = schema();
        town::put(&db, "t", "owner", &TownConfig::default(), NOW).unwrap();
        let body = json!({"beads": 100, "events": 0, "seed": 1});
        for route in [
            Route::DebugBenchSeed,
            Route::DebugBenchFloor,
            Route::DebugBenchStatements,
            Route::DebugBenchCounters,
        ] {
            let res = call(&db, false, route, body.clone());
            assert_eq!(res.status, 403, "{}", res.body);
        }
        let beads = db.one("SELECT COUNT(*) AS n FROM beads", &[]).unwrap();
        assert_eq!(beads.int("n").unwrap(), 0);
    }

    #[test]
    fn the_routes_need_the_debug_token_and_only_counting_is_read_only() {
        use crate::http::routes::{route, Credential};
        for (method, path, expected) in [
            ("POST", "seed", Route::DebugBenchSeed),
            ("POST", "floor", Route::DebugBenchFloor),
            ("POST", "statements", Route::DebugBenchStatements),
            ("POST", "calls", Route::DebugBenchCalls),
            ("GET", "counters", Route::DebugBenchCounters),
        ] {
            let routed = route(&Request::new(
                method,
                &format!("/debug/towns/t/bench/{path}"),
            ));
            let routed = routed.unwrap();
            assert_eq!(routed.route, expected);
            assert_eq!(routed.credential(), Credential::Debug);
            assert_eq!(routed.mutates(), method == "POST");
        }
        let wrong = route(&Request::new("GET", "/debug/towns/t/bench/seed"));
        assert_eq!(wrong.unwrap_err().status, 405);
    }

    #[test]
    fn calls_are_made_in_development_only_and_bounded() {
        use crate::testing::http::{block_on, remotes, FakeHttp, Reply};
        let db = schema();
        town::put(&db, "t", "owner", &TownConfig::default(), NOW).unwrap();
        let remotes = remotes();
        let http = FakeHttp::new();
        http.always("GET", "/health", Reply::ok(json!({"status": "running"})));
        let ids = SequentialIds::new("t");
        let ctx = Ctx {
            sql: &db,
            ids: &ids,
            now: NOW,
        };
        let ask = |development: bool, body: serde_json::Value| {
            let req = Request::new("POST", "/").json(&body);
            block_on(calls(&ctx, &env(development), &req, &http, &remotes))
                .unwrap_or_else(|e| e.response())
        };
        let made = ask(true, json!({"count": 7}));
        assert_eq!(made.status, 200, "{}", made.body);
        assert_eq!(made.body_json(), json!({"count": 7, "answered": 7}));
        assert_eq!(ask(false, json!({"count": 7})).status, 403);
        for bad in [json!({"count": 10_001}), json!({"count": -1}), json!({})] {
            assert_eq!(ask(true, bad).status, 400);
        }
        assert_eq!(http.requests().len(), 7, "refused requests make no call");
    }

    #[test]
    fn seeds_a_steady_town_and_refuses_it_a_backlog() {
        let db = schema();
        town::put(&db, "t", "owner", &TownConfig::default(), NOW).unwrap();
        let body = json!({"kind": "steady", "beads": 100, "events": 0, "seed": 9});
        let seeded = call(&db, true, Route::DebugBenchSeed, body);
        assert_eq!(seeded.status, 200, "{}", seeded.body);
        assert_eq!(seeded.body_json()["kind"], "steady");
        assert_eq!(seeded.body_json()["rows"]["beads"], 100);
        let pending = db
            .one(
                "SELECT COUNT(*) AS n FROM town_events WHERE processed_at IS NULL",
                &[],
            )
            .unwrap();
        assert_eq!(pending.int("n").unwrap(), 0);
        for bad in [
            json!({"kind": "steady", "beads": 100, "events": 1, "seed": 9}),
            json!({"kind": "idle", "beads": 100, "events": 0, "seed": 9}),
        ] {
            let res = call(&db, true, Route::DebugBenchSeed, bad);
            assert_eq!(res.status, 400, "{}", res.body);
        }
    }

    #[test]
    fn needs_a_town_and_a_valid_spec() {
        let db = schema();
        let body = json!({"beads": 100, "events": 0, "seed": 1});
        assert_eq!(call(&db, true, Route::DebugBenchSeed, body).status, 404);
        town::put(&db, "t", "owner", &TownConfig::default(), NOW).unwrap();
        for bad in [
            json!({"beads": 10, "events": 0, "seed": 1}),
            json!({"beads": 100, "events": 0}),
            json!({"beads": 100, "events": 0, "seed": 1, "extra": true}),
        ] {
            assert_eq!(call(&db, true, Route::DebugBenchSeed, bad).status, 400);
        }
    }
}
