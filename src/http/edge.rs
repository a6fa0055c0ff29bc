//! Admission in the Worker, before a request reaches a town: route, credentials, body size and
//! media type. What passes is forwarded to the town's Durable Object; the agent a legacy agent
//! token proves is forwarded as `X-Gastown-Agent-Id` (the container token leaves the header to
//! the container, which is trusted for every agent of its town).

use super::auth;
use super::debug::ticket;
use super::routes::{route, shape_of_path, Credential, Routed};
use super::{ApiError, Request, Response, MAX_BODY_BYTES};
use crate::jwt::{self, Claims, Expiry};
use crate::vocabulary::time::Millis;

/// The Worker's secrets (empty = not set: nobody is admitted with it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Secrets {
    pub api_token: String,
    /// `GASTOWN_JWT_SECRET`: signs and verifies the container and agent tokens.
    pub jwt_secret: String,
    pub debug_token: String,
}

/// The header that names the calling agent on container-facing routes.
pub const AGENT_HEADER: &str = "x-gastown-agent-id";

/// A request that may go on to its town.
#[derive(Debug, Clone, PartialEq)]
pub struct Admitted {
    pub routed: Routed,
    /// The agent a legacy agent token proves (it overrides [`AGENT_HEADER`]).
    pub token_agent: Option<String>,
}

/// Checks a request at `now` and returns its route, or the error to answer with.
pub fn admit(req: &Request, secrets: &Secrets, now: Millis) -> Result<Admitted, ApiError> {
    let routed = route(req)?;
    let authorization = req.get_header("authorization");
    let town = routed.town_id.as_deref().unwrap_or_default();
    let unauthorized = || ApiError::unauthorized("missing or wrong credentials for this route");
    let token_agent = match routed.credential() {
        Credential::None => None,
        Credential::Api if auth::bearer_matches(authorization, &secrets.api_token) => None,
        Credential::Debug if auth::bearer_matches(authorization, &secrets.debug_token) => None,
        Credential::DebugOrTicket
            if auth::bearer_matches(authorization, &secrets.debug_token)
                || ticket::offered(req)
                    .is_some_and(|t| ticket::valid(&secrets.debug_token, town, t, now)) =>
        {
            None
        }
        Credential::Api | Credential::Debug | Credential::DebugOrTicket => {
            return Err(unauthorized())
        }
        Credential::Jwt { rig, agent } => {
            let claims = verified(authorization, &secrets.jwt_secret, now, Expiry::Enforced)?;
            agent_of(claims, town, &rig, agent.as_deref())?
        }
        Credential::ContainerOrApi { tolerate_expired } => {
            no_secret(&secrets.jwt_secret)?;
            if !auth::bearer_matches(authorization, &secrets.api_token) {
                let expiry = if tolerate_expired {
                    Expiry::Tolerated
                } else {
                    Expiry::Enforced
                };
                match verified(authorization, &secrets.jwt_secret, now, expiry)? {
                    Claims::Container { town_id, .. } if town_id == town => {}
                    Claims::Container { .. } => return Err(cross_town()),
                    Claims::Agent { .. } => {
                        return Err(ApiError::unauthorized("Invalid container token payload"))
                    }
                }
            }
            None
        }
    };
    if req.body.len() > MAX_BODY_BYTES {
        return Err(ApiError::too_large());
    }
    if !routed.takes_body() && !req.body.is_empty() && !is_empty_object(&req.body) {
        return Err(ApiError::malformed(
            "this route takes no body: send none, or {}",
        ));
    }
    let envelope = routed.shape() == super::routes::Shape::Envelope;
    if !envelope && !req.body.is_empty() && !is_json(req.get_header("content-type")) {
        return Err(ApiError::not_json());
    }
    Ok(Admitted {
        routed,
        token_agent,
    })
}

/// The answer to a refused request, in the shape of the route it was for.
pub fn refusal(req: &Request, e: &ApiError) -> Response {
    let shape = route(req).map_or_else(|_| shape_of_path(req), |r| r.shape());
    e.response_in(shape)
}

fn no_secret(secret: &str) -> Result<(), ApiError> {
    if secret.is_empty() {
        Err(ApiError::unavailable(
            "GASTOWN_JWT_SECRET is not set: container-facing routes are unavailable",
        ))
    } else {
        Ok(())
    }
}

/// The claims of the request's bearer JWT, with the original's 401 messages.
fn verified(
    authorization: Option<&str>,
    secret: &str,
    now: Millis,
    expiry: Expiry,
) -> Result<Claims, ApiError> {
    no_secret(secret)?;
    let token = auth::bearer(authorization)
        .ok_or_else(|| ApiError::unauthorized("Authentication required"))?;
    jwt::verify(secret, token, now, expiry)
        .map(|v| v.claims)
        .map_err(|e| ApiError::unauthorized(e.message()))
}

fn cross_town() -> ApiError {
    ApiError::forbidden("Cross-town access denied")
}

/// Checks the claims against the path (rig, then town, then agent, as the original's
/// middleware does) and returns the agent an agent token proves.
fn agent_of(
    claims: Claims,
    town: &str,
    rig: &str,
    agent: Option<&str>,
) -> Result<Option<String>, ApiError> {
    match claims {
        Claims::Container { town_id, .. } if town_id == town => Ok(None),
        Claims::Container { .. } => Err(cross_town()),
        Claims::Agent {
            agent_id,
            rig_id,
            town_id,
            ..
        } => {
            if rig_id != rig {
                return Err(ApiError::forbidden("Token rigId does not match route"));
            }
            if town_id != town {
                return Err(cross_town());
            }
            if agent.is_some_and(|a| a != agent_id) {
                return Err(ApiError::forbidden("Token agentId does not match route"));
            }
            Ok(Some(agent_id))
        }
    }
}

fn is_empty_object(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .is_ok_and(|v| v.as_object().is_some_and(serde_json::Map::is_empty))
}

fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|c| c.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::time::HOUR;

    const NOW: Millis = 1_796_000_000_000;

    fn secrets() -> Secrets {
        Secrets {
            api_token: "api".into(),
            jwt_secret: "jwt".into(),
            debug_token: "dbg".into(),
        }
    }

    fn with(req: Request, token: &str) -> Request {
        req.header("authorization", &format!("Bearer {token}"))
    }

    fn status(req: &Request, s: &Secrets) -> (u16, String) {
        match admit(req, s, NOW) {
            Ok(_) => (200, String::new()),
            Err(e) => (e.status, e.message),
        }
    }

    #[test]
    fn people_and_debug_routes_need_their_own_tokens() {
        let s = secrets();
        assert!(admit(&with(Request::new("GET", "/api/towns/t"), "api"), &s, NOW).is_ok());
        let dbg = with(Request::new("GET", "/api/towns/t"), "dbg");
        assert_eq!(status(&dbg, &s).0, 401);
        let container = jwt::sign_container("jwt", "t", "u", NOW);
        assert_eq!(
            status(&with(Request::new("GET", "/api/towns/t"), &container), &s).0,
            401
        );
        assert!(admit(&Request::new("GET", "/health"), &s, NOW).is_ok());
    }

    #[test]
    fn a_container_token_is_good_for_every_agent_of_its_town_only() {
        let s = secrets();
        let token = jwt::sign_container("jwt", "t", "u", NOW);
        for agent in ["a1", "a2"] {
            let req = with(
                Request::new("POST", &format!("/api/towns/t/rigs/r/agents/{agent}/done")),
                &token,
            );
            assert_eq!(admit(&req, &s, NOW).unwrap().token_agent, None);
        }
        let other = with(
            Request::new("POST", "/api/towns/t2/rigs/r/agents/a1/done"),
            &token,
        );
        assert_eq!(status(&other, &s), (403, "Cross-town access denied".into()));
        let api = with(
            Request::new("POST", "/api/towns/t/rigs/r/agents/a1/done"),
            "api",
        );
        assert_eq!(status(&api, &s), (401, "Invalid token signature".into()));
        let none = Request::new("POST", "/api/towns/t/rigs/r/agents/a1/done");
        assert_eq!(status(&none, &s), (401, "Authentication required".into()));
        let late = admit(
            &with(
                Request::new("GET", "/api/towns/t/rigs/r/agents/a1/prime"),
                &token,
            ),
            &s,
            NOW + 8 * HOUR,
        );
        assert_eq!(late.unwrap_err().message, "Token expired");
    }

    #[test]
    fn an_agent_token_is_good_for_its_own_agent_and_rig() {
        let s = secrets();
        let token = jwt::sign_agent("jwt", "a1", "r", "t", "u", NOW);
        let own = with(
            Request::new("POST", "/api/towns/t/rigs/r/agents/a1/done"),
            &token,
        );
        assert_eq!(
            admit(&own, &s, NOW).unwrap().token_agent.as_deref(),
            Some("a1")
        );
        let tool = with(Request::new("POST", "/api/towns/t/rigs/r/nudge"), &token);
        assert_eq!(
            admit(&tool, &s, NOW).unwrap().token_agent.as_deref(),
            Some("a1")
        );
        let cases = [
            (
                "/api/towns/t/rigs/r/agents/a2/done",
                "Token agentId does not match route",
            ),
            (
                "/api/towns/t/rigs/r2/agents/a1/done",
                "Token rigId does not match route",
            ),
            (
                "/api/towns/t2/rigs/r/agents/a1/done",
                "Cross-town access denied",
            ),
        ];
        for (path, message) in cases {
            let req = with(Request::new("POST", path), &token);
            assert_eq!(status(&req, &s), (403, message.into()), "{path}");
        }
        let eviction = with(
            Request::new("POST", "/api/towns/t/container-eviction"),
            &token,
        );
        assert_eq!(
            status(&eviction, &s),
            (401, "Invalid container token payload".into())
        );
    }

    #[test]
    fn town_container_routes_take_the_container_or_the_api_token() {
        let s = secrets();
        let path = "/api/towns/t/refresh-container-token";
        let expired = jwt::sign_container("jwt", "t", "u", NOW - 9 * HOUR);
        assert!(admit(&with(Request::new("POST", path), &expired), &s, NOW).is_ok());
        let ready = with(
            Request::new("POST", "/api/towns/t/container-ready"),
            &expired,
        );
        assert_eq!(status(&ready, &s), (401, "Token expired".into()));
        let api = with(Request::new("GET", "/api/towns/t/drain-status"), "api");
        assert!(admit(&api, &s, NOW).is_ok());
        let forged = jwt::sign_container("other", "t", "u", NOW);
        let forged = with(Request::new("GET", "/api/towns/t/drain-status"), &forged);
        assert_eq!(status(&forged, &s), (401, "Invalid token signature".into()));
    }

    #[test]
    fn without_the_jwt_secret_container_routes_are_unavailable() {
        let s = Secrets {
            jwt_secret: String::new(),
            ..secrets()
        };
        let token = jwt::sign_container("jwt", "t", "u", NOW);
        for (m, p) in [
            ("POST", "/api/towns/t/rigs/r/agents/a1/heartbeat"),
            ("POST", "/api/towns/t/rigs/r/mail"),
            ("POST", "/api/towns/t/container-eviction"),
        ] {
            assert_eq!(status(&with(Request::new(m, p), &token), &s).0, 503, "{p}");
            assert_eq!(status(&with(Request::new(m, p), "api"), &s).0, 503, "{p}");
        }
    }

    #[test]
    fn refuses_large_and_non_json_people_bodies_and_answers_in_the_route_s_shape() {
        let s = secrets();
        let mut big = with(Request::new("PUT", "/api/towns/t"), "api")
            .header("content-type", "application/json");
        big.body = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(status(&big, &s).0, 413);
        let mut text =
            with(Request::new("PUT", "/api/towns/t"), "api").header("content-type", "text/plain");
        text.body = b"{}".to_vec();
        assert_eq!(status(&text, &s).0, 415);
        let token = jwt::sign_container("jwt", "t", "u", NOW);
        let mut plain = with(
            Request::new("POST", "/api/towns/t/rigs/r/agents/a/done"),
            &token,
        );
        plain.body = b"{}".to_vec();
        assert!(admit(&plain, &s, NOW).is_ok());
        let bare = Request::new("POST", "/api/towns/t/rigs/r/agents/a/done");
        let e = admit(&bare, &s, NOW).unwrap_err();
        assert_eq!(refusal(&bare, &e).body_json()["success"], false);
        let people = Request::new("GET", "/api/towns/t");
        let e = admit(&people, &s, NOW).unwrap_err();
        assert_eq!(
            refusal(&people, &e).body_json()["error"]["code"],
            "unauthorized"
        );
        let unknown = Request::new("GET", "/api/towns/t/rigs/r/agents/a/db-snapshot");
        let e = admit(&unknown, &s, NOW).unwrap_err();
        assert_eq!(refusal(&unknown, &e).body_json()["error"], "Not found");
    }

    #[test]
    fn a_route_that_takes_no_body_refuses_one_but_takes_none_or_an_empty_object() {
        let s = secrets();
        let with_body = |method: &str, path: &str, token: &str, body: &str| {
            let mut req =
                with(Request::new(method, path), token).header("content-type", "application/json");
            req.body = body.as_bytes().to_vec();
            req
        };
        let container = jwt::sign_container("jwt", "t", "u", NOW);
        for (method, path, token) in [
            (
                "POST",
                "/api/towns/t/container-eviction",
                container.as_str(),
            ),
            ("POST", "/debug/towns/t/tick", "dbg"),
            ("POST", "/debug/towns/t/reconcile-dry-run", "dbg"),
            ("DELETE", "/api/towns/t", "api"),
            ("POST", "/api/towns/t/convoys/c1/start", "api"),
        ] {
            for garbage in ["this is not json", "{{{{", "[]", r#"{"x":1}"#] {
                let e = admit(&with_body(method, path, token, garbage), &s, NOW).unwrap_err();
                assert_eq!(
                    (e.status, e.code),
                    (400, "malformed_json"),
                    "{path} {garbage}"
                );
            }
            for fine in ["", "{}", " { } "] {
                assert!(
                    admit(&with_body(method, path, token, fine), &s, NOW).is_ok(),
                    "{path}"
                );
            }
        }
        let ready = with_body(
            "POST",
            "/api/towns/t/container-ready",
            &container,
            r#"{"nonce":"n"}"#,
        );
        assert!(admit(&ready, &s, NOW).is_ok());
        assert!(admit(&Request::new("HEAD", "/health"), &s, NOW).is_ok());
    }
}
