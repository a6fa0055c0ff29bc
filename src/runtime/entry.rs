//! The Worker's fetch entry: admit the request, then forward it to its town's Durable Object.

use super::adapters::{install_logging, secret};
use crate::http::edge::{admit, refusal, Admitted, Secrets, AGENT_HEADER};
use crate::http::routes::Route;
use crate::http::{self, ApiError, MAX_BODY_BYTES};
use futures_core::Stream;
use std::pin::Pin;
use worker::{event, Context, Env, Headers, Method, Request, RequestInit, Response, Result};

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> Result<Response> {
    console_error_panic_hook::set_once();
    install_logging(&env);
    let Some(ours) = read_within(&mut req, MAX_BODY_BYTES).await? else {
        let head = http::Request::new(req.method().as_ref(), &req.path());
        return respond(&refusal(&head, &ApiError::too_large()));
    };
    let secrets = Secrets {
        api_token: secret(&env, "GASTOWN_API_TOKEN"),
        jwt_secret: secret(&env, "GASTOWN_JWT_SECRET"),
        debug_token: secret(&env, "GASTOWN_DEBUG_TOKEN"),
    };
    let now = worker::Date::now().as_millis() as i64;
    let Admitted {
        routed,
        token_agent,
    } = match admit(&ours, &secrets, now) {
        Ok(admitted) => admitted,
        Err(e) => return respond(&refusal(&ours, &e)),
    };
    let Some(town_id) = routed.town_id.as_deref() else {
        debug_assert_eq!(routed.route, Route::Health);
        let mut health = http::Response::json(
            200,
            &serde_json::json!({
                "status": "ok",
                "version": env!("CARGO_PKG_VERSION"),
                "commit": env!("GASTOWN_GIT_COMMIT"),
            }),
        );
        if ours.method == "HEAD" {
            health.body.clear();
        }
        return respond(&health);
    };
    let stub = env
        .durable_object("TOWN")?
        .id_from_name(town_id)?
        .get_stub()?;
    let headers = Headers::new();
    for (k, v) in &ours.headers {
        headers.append(k, v)?;
    }
    if let Some(agent) = &token_agent {
        headers.set(AGENT_HEADER, agent)?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::from(ours.method.clone()))
        .with_headers(headers);
    if !ours.body.is_empty() {
        init.with_body(Some(
            worker::js_sys::Uint8Array::from(ours.body.as_slice()).into(),
        ));
    }
    let forwarded = Request::new_with_init(&req.inner().url(), &init)?;
    match stub.fetch_with_request(forwarded).await {
        Ok(resp) => Ok(resp),
        Err(e) => {
            crate::log::error(
                "town_unreachable",
                &[("town_id", town_id), ("error", &e.to_string())],
            );
            respond(&ApiError::internal("the town did not answer").response_in(routed.shape()))
        }
    }
}

/// Reads a request the fetch entry forwarded into ours, its body in one piece and unchecked.
///
/// The body crosses from the Worker to the Durable Object as a new stream, so it has to be read
/// here again; checking it again does not: the `TOWN` namespace is reachable only through this
/// Worker's binding, whose entry forwards a request only after admitting it (auth, route and
/// the size limit, [`read_within`]). One `arrayBuffer()` of at most `MAX_BODY_BYTES` replaces the
/// counted chunk-by-chunk read.
pub async fn forwarded(req: &mut Request) -> Result<http::Request> {
    let mut ours = head(req);
    if carries_body(req) {
        ours.body = req.bytes().await?;
    }
    Ok(ours)
}

/// Reads a platform request into ours, or `None` when its body is over `limit` bytes: refused by
/// its `Content-Length` before any of it is read, else counted chunk by chunk while reading.
pub async fn read_within(req: &mut Request, limit: usize) -> Result<Option<http::Request>> {
    let mut ours = head(req);
    if !carries_body(req) {
        return Ok(Some(ours));
    }
    let declared = ours
        .get_header("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Ok(None);
    }
    let mut stream = req.stream()?;
    while let Some(chunk) = std::future::poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await {
        ours.body.extend_from_slice(&chunk?);
        if ours.body.len() > limit {
            return Ok(None);
        }
    }
    Ok(Some(ours))
}

/// A platform request's method, path, query and headers as ours, without its body.
///
/// The URL comes serialized by the platform, so its path and query are taken from the text
/// rather than parsed again (the `url` crate and its IDNA tables would otherwise be in the Wasm
/// for this alone).
fn head(req: &Request) -> http::Request {
    let mut ours = http::Request::new(req.method().as_ref(), &req.path());
    ours.query = form_urlencoded::parse(query_of(&req.inner().url()).as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    ours.headers = req
        .headers()
        .entries()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    ours
}

fn carries_body(req: &Request) -> bool {
    !matches!(req.method(), Method::Get | Method::Head) && req.inner().body().is_some()
}

/// The query of a serialized URL: after the first `?`, up to a fragment (a serialized URL's path
/// holds neither character unescaped).
fn query_of(url: &str) -> &str {
    url.split_once('?').map_or("", |(_, rest)| {
        rest.split_once('#').map_or(rest, |(q, _)| q)
    })
}

/// Writes our response as a platform response.
pub fn respond(r: &http::Response) -> Result<Response> {
    let resp = if r.body.is_empty() {
        Response::empty()?
    } else {
        Response::ok(r.body.clone())?
    };
    let headers = Headers::new();
    headers.set("content-type", r.content_type)?;
    Ok(resp.with_status(r.status).with_headers(headers))
}
