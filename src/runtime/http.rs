//! The platform adapter of the outbound HTTP port: `fetch`, or for URLs under [`SERVICE_BASE`]
//! the town's container binding (its `TOWN_CONTAINER` Durable Object stub, else the `CONTAINER`
//! service binding), each call raced against its timeout (a `fetch` is aborted when the
//! timeout wins; reading the body counts against the same deadline).
//!
//! It calls the platform's `fetch(url, init)` and `Response.text()` directly: the `worker`
//! crate's `Request` parses the URL again in Rust and reads a body chunk by chunk through a
//! stream reader, several calls into JavaScript each, for every call a busy tick makes.

use crate::ports::{Http, HttpError, HttpRequest, HttpResponse};
use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{js_sys, web_sys, worker_sys, AbortController, Delay, Env};

/// The base URL under which container calls go through the container binding (the host is
/// ignored, as the original's `stub.fetch("http://container/...")`).
pub const SERVICE_BASE: &str = "http://container";

pub struct PlatformHttp {
    /// What serves `http://container/...`: anything with a `fetch(url, init)` (a Durable
    /// Object stub or a service binding), when bound.
    pub container: Option<worker_sys::Fetcher>,
}

impl PlatformHttp {
    /// The container of `town_id`: its instance of the `TOWN_CONTAINER` Durable Object
    /// (`idFromName(town_id)`), else the `CONTAINER` service binding, else none (`CONTAINER_URL`).
    pub fn for_town(env: &Env, town_id: &str) -> Self {
        let stub = env
            .durable_object("TOWN_CONTAINER")
            .and_then(|ns| ns.id_from_name(town_id)?.get_stub());
        let container = match stub {
            Ok(stub) => Some(stub.into_rpc::<worker_sys::Fetcher>()),
            Err(_) => env
                .service("CONTAINER")
                .ok()
                .map(|f| JsValue::from(f).unchecked_into()),
        };
        Self { container }
    }
}

/// A JavaScript failure as the `worker` crate words it.
fn network(e: JsValue) -> HttpError {
    HttpError::Network(worker::Error::from(e).to_string())
}

/// Polls both futures; the first to finish wins.
async fn race<A: Future, B: Future>(a: A, b: B) -> Result<A::Output, B::Output> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        if let Poll::Ready(v) = b.as_mut().poll(cx) {
            return Poll::Ready(Err(v));
        }
        Poll::Pending
    })
    .await
}

impl PlatformHttp {
    async fn exchange(
        &self,
        request: &HttpRequest,
        controller: &AbortController,
    ) -> Result<HttpResponse, HttpError> {
        let headers = web_sys::Headers::new().map_err(network)?;
        for (k, v) in &request.headers {
            headers.set(k, v).map_err(network)?;
        }
        let init = web_sys::RequestInit::new();
        init.set_method(request.method);
        init.set_headers(&headers);
        if let Some(body) = &request.body {
            init.set_body(&JsValue::from_str(body));
        }
        let sent = match (&self.container, request.url.starts_with(SERVICE_BASE)) {
            (Some(binding), true) => binding.fetch_with_str_and_init(&request.url, &init),
            _ => {
                init.set_signal(Some(&controller.signal()));
                let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
                Ok(global.fetch_with_str_and_init(&request.url, &init))
            }
        };
        let response: web_sys::Response = JsFuture::from(sent.map_err(network)?)
            .await
            .map_err(network)?
            .dyn_into()
            .map_err(network)?;
        let text = JsFuture::from(response.text().map_err(network)?)
            .await
            .map_err(network)?;
        Ok(HttpResponse {
            status: response.status(),
            body: text.as_string().unwrap_or_default(),
        })
    }
}

impl Http for PlatformHttp {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let controller = AbortController::default();
        let timeout = Delay::from(Duration::from_millis(request.timeout_ms.max(0) as u64));
        match race(self.exchange(&request, &controller), timeout).await {
            Ok(answer) => answer,
            Err(()) => {
                controller.abort();
                Err(HttpError::Timeout)
            }
        }
    }
}
