//! Admission in the Worker, before a request reaches a town: route, credentials, body size and
//! media type. What passes is forwarded to the town's Durable Object unchanged.

use super::auth;
use super::routes::{route, Credential, Routed};
use super::{ApiError, Request, MAX_BODY_BYTES};

/// The Worker's secrets (empty = not set: nobody is admitted with it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Secrets {
    pub api_token: String,
    pub agent_signing_key: String,
    pub debug_token: String,
}

/// Checks a request and returns its route, or the error to answer with.
pub fn admit(req: &Request, secrets: &Secrets) -> Result<Routed, ApiError> {
    let routed = route(req)?;
    let authorization = req.get_header("authorization");
    let town = routed.town_id.as_deref().unwrap_or_default();
    let allowed = match routed.credential() {
        Credential::None => true,
        Credential::Api => auth::bearer_matches(authorization, &secrets.api_token),
        Credential::Debug => auth::bearer_matches(authorization, &secrets.debug_token),
        Credential::Agent(agent) => {
            auth::agent_token_matches(authorization, &secrets.agent_signing_key, town, &agent)
        }
    };
    if !allowed {
        return Err(ApiError::unauthorized(
            "missing or wrong credentials for this route",
        ));
    }
    if req.body.len() > MAX_BODY_BYTES {
        return Err(ApiError::too_large());
    }
    if !req.body.is_empty() && !is_json(req.get_header("content-type")) {
        return Err(ApiError::not_json());
    }
    Ok(routed)
}

fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|c| c.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Secrets {
        Secrets {
            api_token: "api".into(),
            agent_signing_key: "sign".into(),
            debug_token: "dbg".into(),
        }
    }

    #[test]
    fn each_route_class_needs_its_own_credential() {
        let s = secrets();
        let api = Request::new("GET", "/api/towns/t").header("authorization", "Bearer api");
        assert!(admit(&api, &s).is_ok());
        let dbg = Request::new("GET", "/api/towns/t").header("authorization", "Bearer dbg");
        assert_eq!(admit(&dbg, &s).unwrap_err().status, 401);
        let token = auth::agent_token("sign", "t", "a1");
        let done = Request::new("POST", "/api/towns/t/agents/a1/done")
            .header("authorization", &format!("Bearer {token}"));
        assert!(admit(&done, &s).is_ok());
        let other = Request::new("POST", "/api/towns/t/agents/a2/done")
            .header("authorization", &format!("Bearer {token}"));
        assert_eq!(admit(&other, &s).unwrap_err().status, 401);
        let api_on_agent = Request::new("POST", "/api/towns/t/agents/a1/done")
            .header("authorization", "Bearer api");
        assert_eq!(admit(&api_on_agent, &s).unwrap_err().status, 401);
        assert!(admit(&Request::new("GET", "/health"), &s).is_ok());
    }

    #[test]
    fn refuses_large_and_non_json_bodies() {
        let s = secrets();
        let mut big = Request::new("PUT", "/api/towns/t")
            .header("authorization", "Bearer api")
            .header("content-type", "application/json");
        big.body = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(admit(&big, &s).unwrap_err().status, 413);
        let mut text = Request::new("PUT", "/api/towns/t")
            .header("authorization", "Bearer api")
            .header("content-type", "text/plain");
        text.body = b"{}".to_vec();
        assert_eq!(admit(&text, &s).unwrap_err().status, 415);
        let mut ok = Request::new("PUT", "/api/towns/t")
            .header("authorization", "Bearer api")
            .header("content-type", "application/json; charset=utf-8");
        ok.body = b"{}".to_vec();
        assert!(admit(&ok, &s).is_ok());
    }
}
