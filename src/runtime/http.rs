//! The platform adapter of the outbound HTTP port: `fetch`, or the `CONTAINER` service binding
//! for URLs under [`SERVICE_BASE`], each call raced against its timeout (a `fetch` is aborted
//! when the timeout wins; reading the body counts against the same deadline).

use crate::ports::{Http, HttpError, HttpRequest, HttpResponse};
use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;
use worker::{AbortController, Delay, Fetch, Fetcher, Headers, Method, Request, RequestInit};

/// The base URL under which container calls go through the service binding.
pub const SERVICE_BASE: &str = "http://container";

pub struct PlatformHttp {
    /// The `CONTAINER` service binding, when bound.
    pub container: Option<Fetcher>,
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
        let network = |e: worker::Error| HttpError::Network(e.to_string());
        let headers = Headers::new();
        for (k, v) in &request.headers {
            headers.set(k, v).map_err(network)?;
        }
        let mut init = RequestInit::new();
        init.with_method(Method::from(request.method.to_owned()))
            .with_headers(headers);
        if let Some(body) = &request.body {
            init.with_body(Some(body.as_str().into()));
        }
        let req = Request::new_with_init(&request.url, &init).map_err(network)?;
        let mut resp = match (&self.container, request.url.starts_with(SERVICE_BASE)) {
            (Some(binding), true) => binding.fetch_request(req).await.map_err(network)?,
            _ => Fetch::Request(req)
                .send_with_signal(&controller.signal())
                .await
                .map_err(network)?,
        };
        let body = resp.text().await.map_err(network)?;
        Ok(HttpResponse {
            status: resp.status_code(),
            body,
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
