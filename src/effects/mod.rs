//! Outbound protocol clients over the [`Http`] port: the town's container ([`container`], with
//! what it is told about the town in [`credentials`] and the start bodies of [`start`]) and the
//! PR host ([`github`]). They build on the crate's lower layers only (vocabulary, ports, store
//! rows, the domain's dispatch rows, jwt), never on the tick or HTTP, and write nothing.
//!
//! Outcomes are truthful: a call succeeds only on a 2xx answer whose body parses as the protocol
//! says; anything else is a [`CallError`] naming why (status, timeout, network, unexpected body,
//! or refused before sending). Every failure is logged once, as structured JSON, by the one
//! function all calls go through. The clients are pure protocol: what an outcome means for the
//! town is decided by their callers.

pub mod container;
pub mod credentials;
pub mod github;
pub mod pr_url;
pub mod prompts;
pub mod remotes;
pub mod start;
pub mod teardown;

use crate::ports::{Http, HttpError, HttpRequest};
use serde::de::DeserializeOwned;
use std::fmt;

/// Why an outbound call did not succeed.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    /// The server answered with a non-2xx status.
    Status(u16),
    /// The server answered with a non-2xx status and said why (`{"error": ...}`).
    Answered { status: u16, error: String },
    /// No answer within the call's timeout.
    Timeout,
    /// The connection failed (refused, reset, DNS, TLS...).
    Network(String),
    /// A 2xx answer whose body is not what the protocol promises.
    BadBody(String),
    /// Not sent: the request could not be made as asked.
    Refused(Refusal),
    /// Not sent: its caller held it back, and says why (the tick's deadline passed, the
    /// container refused the token push, the call could not be prepared).
    NotSent(String),
}

impl CallError {
    /// A short stable name for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            CallError::Status(_) | CallError::Answered { .. } => "http_status",
            CallError::Timeout => "timeout",
            CallError::Network(_) => "network",
            CallError::BadBody(_) => "bad_body",
            CallError::Refused(_) => "refused",
            CallError::NotSent(_) => "not_sent",
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Status(s) => write!(f, "answered HTTP {s}"),
            CallError::Answered { status, error } => write!(f, "answered HTTP {status}: {error}"),
            CallError::Timeout => f.write_str("timed out"),
            CallError::Network(m) => write!(f, "network error: {m}"),
            CallError::BadBody(m) => write!(f, "unexpected body: {m}"),
            CallError::Refused(r) => write!(f, "refused: {r}"),
            CallError::NotSent(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for CallError {}

/// Why a call was refused before anything was sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// The base URL is empty or not `http(s)://host...`: the service is not configured.
    BadBaseUrl(String),
    /// No token to authenticate with.
    NoToken,
    /// A GitLab merge request: only GitHub pull requests are supported.
    GitLab(String),
    /// A PR URL on a host other than `github.com`.
    UnsupportedHost(String),
    /// A PR URL that is not `https`.
    NotHttps,
    /// Not of the form `https://github.com/{owner}/{repo}/pull/{number}`.
    NotAPullRequest(String),
}

impl Refusal {
    /// A short stable name for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::BadBaseUrl(_) => "bad_base_url",
            Refusal::NoToken => "no_token",
            Refusal::GitLab(_) => "gitlab_unsupported",
            Refusal::UnsupportedHost(_) => "unsupported_host",
            Refusal::NotHttps => "not_https",
            Refusal::NotAPullRequest(_) => "not_a_pull_request",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::BadBaseUrl(b) => write!(f, "base URL {b:?} is not an http(s) URL"),
            Refusal::NoToken => f.write_str("no token to authenticate with"),
            Refusal::GitLab(u) => {
                write!(f, "{u} is a GitLab merge request; only GitHub is supported")
            }
            Refusal::UnsupportedHost(h) => write!(f, "PR host {h:?} is not github.com"),
            Refusal::NotHttps => f.write_str("PR URL is not https"),
            Refusal::NotAPullRequest(u) => write!(
                f,
                "{u:?} is not https://github.com/{{owner}}/{{repo}}/pull/{{number}}"
            ),
        }
    }
}

/// Sends `request` and parses a 2xx body with `parse`; logs and returns any failure.
/// `call` names the operation in the log (`container.start`, `github.merge`...).
pub(crate) async fn exchange<H: Http, T>(
    http: &H,
    call: &'static str,
    request: HttpRequest,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, CallError> {
    exchange_any(http, call, request, |status, body| {
        if (200..300).contains(&status) {
            parse(body).map_err(CallError::BadBody)
        } else {
            Err(CallError::Status(status))
        }
    })
    .await
}

/// As [`exchange`], but `read` decides what every answer means, whatever its status (a
/// protocol where a 404 is an answer, not a failure); a failure it returns is logged.
pub(crate) async fn exchange_any<H: Http, T>(
    http: &H,
    call: &'static str,
    request: HttpRequest,
    read: impl FnOnce(u16, &str) -> Result<T, CallError>,
) -> Result<T, CallError> {
    let method = request.method;
    let url = request.url.clone();
    let (outcome, body) = match http.send(request).await {
        Err(HttpError::Timeout) => (Err(CallError::Timeout), None),
        Err(HttpError::Network(m)) => (Err(CallError::Network(m)), None),
        Ok(r) => (read(r.status, &r.body), Some(r.body)),
    };
    if let Err(e) = &outcome {
        report(call, method, &url, e, body.as_deref());
    }
    outcome
}

/// Logs and returns a refusal (nothing was sent, so no method or URL).
pub(crate) fn refuse(call: &'static str, refusal: Refusal) -> CallError {
    let error = CallError::Refused(refusal);
    report(call, "", "", &error, None);
    error
}

fn report(call: &str, method: &str, url: &str, error: &CallError, body: Option<&str>) {
    let status = match error {
        CallError::Status(s) | CallError::Answered { status: s, .. } => s.to_string(),
        _ => String::new(),
    };
    let refusal = match error {
        CallError::Refused(r) => r.label(),
        _ => "",
    };
    let detail = error.to_string();
    let excerpt = body.map(excerpt).unwrap_or_default();
    crate::log::warn(
        "outbound call failed",
        &[
            ("call", call),
            ("method", method),
            ("url", url),
            ("reason", error.label()),
            ("status", &status),
            ("refusal", refusal),
            ("detail", &detail),
            ("body", &excerpt),
        ],
    );
}

/// At most the first 200 characters of a body, for logs.
fn excerpt(body: &str) -> String {
    body.chars().take(200).collect()
}

/// Parses a JSON body into `T`; the error names the field that did not fit.
///
/// Read through [`crate::json::from_slice`], as request bodies are (`http::handler::body`).
pub(crate) fn json<T: DeserializeOwned>(body: &str) -> Result<T, String> {
    crate::json::from_slice(body.as_bytes()).map_err(|misfit| misfit.to_string())
}

/// A base URL without its trailing `/`, or a refusal when it is not `http(s)://host...`.
pub(crate) fn base_url(base: &str) -> Result<&str, Refusal> {
    let trimmed = base.trim().trim_end_matches('/');
    let host = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    match host {
        Some(h) if !h.is_empty() && !h.starts_with('/') => Ok(trimmed),
        _ => Err(Refusal::BadBaseUrl(base.to_owned())),
    }
}

/// Percent-encodes one path segment (everything but `A-Za-z0-9-._~`).
pub(crate) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_stable() {
        let labels: Vec<_> = [
            CallError::Status(500),
            CallError::Answered {
                status: 400,
                error: "x".into(),
            },
            CallError::Timeout,
            CallError::Network("x".into()),
            CallError::BadBody("x".into()),
            CallError::Refused(Refusal::NoToken),
        ]
        .iter()
        .map(CallError::label)
        .collect();
        assert_eq!(
            labels,
            [
                "http_status",
                "http_status",
                "timeout",
                "network",
                "bad_body",
                "refused"
            ]
        );
    }

    #[test]
    fn base_urls_must_be_http_with_a_host() {
        assert_eq!(base_url("http://container/"), Ok("http://container"));
        assert_eq!(
            base_url(" https://api.github.com "),
            Ok("https://api.github.com")
        );
        for bad in ["", "  ", "container", "ftp://x", "http://", "https:///x"] {
            assert_eq!(
                base_url(bad),
                Err(Refusal::BadBaseUrl(bad.into())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(segment("agent-1.a_b~c"), "agent-1.a_b~c");
        assert_eq!(segment("a/../b c:d"), "a%2F..%2Fb%20c%3Ad");
        assert_eq!(segment("é"), "%C3%A9");
    }

    #[test]
    fn json_errors_name_the_field_and_refuse_trailing_text() {
        #[derive(serde::Deserialize, Debug)]
        struct S {
            n: u32,
        }
        assert_eq!(json::<S>(r#"{"n": 1}"#).unwrap().n, 1);
        let e = json::<S>(r#"{"n": "x"}"#).unwrap_err();
        assert!(e.starts_with("n: invalid type"), "{e}");
        assert!(json::<S>(r#"{"n": 1} trailing"#).is_err());
        assert!(json::<S>("<html>").is_err());
    }

    #[test]
    fn excerpts_are_bounded_on_char_boundaries() {
        assert_eq!(excerpt(&"é".repeat(300)).chars().count(), 200);
    }
}
