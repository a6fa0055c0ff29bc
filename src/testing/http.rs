//! A recording fake of the [`Http`] port for native tests, and a [`block_on`] to drive the
//! port's futures without a runtime.
//!
//! [`FakeHttp`] keeps every request it is sent and answers from a script of rules, each a
//! method and a URL path (without query) with a [`Reply`] that may be used a limited number of
//! times. The first rule, in the order added, that matches and is not used up answers; a
//! request no rule matches gets a 404. Replies can be any status and body, including garbage,
//! a timeout or a network error. [`remotes`] are remotes for it to stand in for.

use crate::effects::container::ContainerTimeouts;
use crate::effects::remotes::Remotes;
use crate::ports::{Http, HttpError, HttpRequest, HttpResponse};
use serde_json::Value as Json;
use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// How the fake answers a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// An answer with this status and body.
    Answer {
        status: u16,
        body: String,
    },
    Timeout,
    Network(String),
}

impl Reply {
    /// An answer with a JSON body.
    pub fn json(status: u16, body: Json) -> Self {
        Reply::Answer {
            status,
            body: body.to_string(),
        }
    }

    /// 200 with a JSON body.
    pub fn ok(body: Json) -> Self {
        Self::json(200, body)
    }

    /// A non-2xx answer with a GitHub-style `{"message"}` body.
    pub fn status(status: u16) -> Self {
        Self::json(
            status,
            serde_json::json!({ "message": format!("scripted {status}") }),
        )
    }

    /// 200 with a body that is not JSON (a proxy's error page).
    pub fn garbage() -> Self {
        Reply::Answer {
            status: 200,
            body: "<html><body>502 Bad Gateway</body></html>".into(),
        }
    }

    pub fn network(message: &str) -> Self {
        Reply::Network(message.into())
    }
}

#[derive(Debug)]
struct Rule {
    method: String,
    path: String,
    reply: Reply,
    /// `None` = unlimited.
    uses_left: Option<u32>,
}

/// The recording fake. `"*"` as method or path matches anything.
#[derive(Debug, Default)]
pub struct FakeHttp {
    rules: RefCell<Vec<Rule>>,
    requests: RefCell<Vec<HttpRequest>>,
}

impl FakeHttp {
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers every matching request with `reply`.
    pub fn always(&self, method: &str, path: &str, reply: Reply) -> &Self {
        self.add(method, path, reply, None)
    }

    /// Answers the next `n` matching requests with `reply`.
    pub fn times(&self, n: u32, method: &str, path: &str, reply: Reply) -> &Self {
        self.add(method, path, reply, Some(n))
    }

    /// Answers the next matching request with `reply`.
    pub fn once(&self, method: &str, path: &str, reply: Reply) -> &Self {
        self.times(1, method, path, reply)
    }

    fn add(&self, method: &str, path: &str, reply: Reply, uses: Option<u32>) -> &Self {
        self.rules.borrow_mut().push(Rule {
            method: method.to_owned(),
            path: path.to_owned(),
            reply,
            uses_left: uses,
        });
        self
    }

    /// Every request sent so far, in order.
    pub fn requests(&self) -> Vec<HttpRequest> {
        self.requests.borrow().clone()
    }

    /// The last request sent; panics when there was none.
    pub fn last(&self) -> HttpRequest {
        self.requests
            .borrow()
            .last()
            .cloned()
            .expect("no request was sent")
    }

    fn answer(&self, method: &str, path: &str) -> Reply {
        let mut rules = self.rules.borrow_mut();
        let rule = rules.iter_mut().find(|r| {
            (r.method == "*" || r.method == method)
                && (r.path == "*" || r.path == path)
                && r.uses_left != Some(0)
        });
        match rule {
            Some(rule) => {
                if let Some(n) = rule.uses_left.as_mut() {
                    *n -= 1;
                }
                rule.reply.clone()
            }
            None => Reply::json(
                404,
                serde_json::json!({ "message": format!("no scripted answer for {method} {path}") }),
            ),
        }
    }
}

impl Http for FakeHttp {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let reply = self.answer(request.method, path_of(&request.url));
        self.requests.borrow_mut().push(request);
        match reply {
            Reply::Answer { status, body } => Ok(HttpResponse { status, body }),
            Reply::Timeout => Err(HttpError::Timeout),
            Reply::Network(m) => Err(HttpError::Network(m)),
        }
    }
}

/// Remotes at `.test` hosts, with the default timeouts and the platform's default of 6 calls in
/// flight.
pub fn remotes() -> Remotes {
    Remotes {
        container_base: "http://container.test".into(),
        github_base: "http://github.test".into(),
        github_token: "gh-secret".into(),
        jwt_secret: "jwt-secret".into(),
        gastown_api_url: "https://gastown.test".into(),
        container_timeouts: ContainerTimeouts::default(),
        concurrency: 6,
        deadline_ms: 20_000,
        observe_budget: 100,
        observe_interval_ms: crate::settings::TICK_OBSERVE_INTERVAL_MS.default,
        observe_deadline_ms: 5_000,
        subrequest_budget: 900,
    }
}

/// The path of a URL, without scheme, host, query or fragment (`/` when empty).
pub fn path_of(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    let path = path.split(['?', '#']).next().unwrap_or_default();
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

/// The value of header `name` (case-insensitive) in `request`.
pub fn header<'r>(request: &'r HttpRequest, name: &str) -> Option<&'r str> {
    request
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Runs a future that completes without waiting on anything outside itself (as the fake's do).
/// Panics if it stays pending, rather than spinning forever.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000 {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("block_on: the future is still pending; it waits on something no test can wake")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(url: &str) -> HttpRequest {
        HttpRequest {
            method: "GET",
            url: url.into(),
            headers: vec![("Accept".into(), "x".into())],
            body: None,
            timeout_ms: 1,
        }
    }

    #[test]
    fn paths_drop_scheme_host_query_and_fragment() {
        assert_eq!(
            path_of("http://container/agents/a/status"),
            "/agents/a/status"
        );
        assert_eq!(path_of("https://h/x?per_page=100#f"), "/x");
        assert_eq!(path_of("http://container"), "/");
        assert_eq!(path_of("/bare"), "/bare");
    }

    #[test]
    fn rules_answer_in_order_until_used_up_then_unmatched_is_404() {
        let fake = FakeHttp::new();
        fake.once("GET", "/x", Reply::Timeout)
            .times(2, "GET", "/x", Reply::status(500))
            .always("*", "/x", Reply::ok(serde_json::json!({})));
        let send = |url: &str| block_on(fake.send(get(url)));
        assert_eq!(send("http://h/x"), Err(HttpError::Timeout));
        assert_eq!(send("http://h/x").unwrap().status, 500);
        assert_eq!(send("http://h/x?q=1").unwrap().status, 500);
        assert_eq!(send("http://h/x").unwrap().status, 200);
        assert_eq!(send("http://h/x").unwrap().status, 200);
        assert_eq!(send("http://h/y").unwrap().status, 404);
        assert_eq!(fake.requests().len(), 6);
        assert_eq!(fake.last().url, "http://h/y");
        assert_eq!(header(&fake.last(), "accept"), Some("x"));
        assert_eq!(header(&fake.last(), "authorization"), None);
    }

    #[test]
    fn network_errors_and_garbage_are_scripted_as_asked() {
        let fake = FakeHttp::new();
        fake.once("*", "*", Reply::network("connection refused"))
            .once("*", "*", Reply::garbage());
        assert_eq!(
            block_on(fake.send(get("http://h/a"))),
            Err(HttpError::Network("connection refused".into()))
        );
        let garbage = block_on(fake.send(get("http://h/b"))).unwrap();
        assert_eq!(garbage.status, 200);
        assert!(serde_json::from_str::<Json>(&garbage.body).is_err());
    }

    #[test]
    #[should_panic(expected = "still pending")]
    fn block_on_refuses_to_spin_on_a_future_that_never_completes() {
        block_on(std::future::pending::<()>());
    }
}
