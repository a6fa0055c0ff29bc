//! Credentials: bearer tokens compared in constant time. The container-facing routes take the
//! JWTs of [`crate::jwt`] instead (see [`super::edge`]).
//!
//! [`agent_token`] is revision 1's per-agent HMAC token: no route accepts it any more; only the
//! outbound start body still carries it until the container wire (issue #17) replaces it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token in `Authorization: Bearer <token>`, if any.
pub fn bearer(authorization: Option<&str>) -> Option<&str> {
    let value = authorization?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Whether the request's bearer token equals `secret` (an empty secret admits nobody).
pub fn bearer_matches(authorization: Option<&str>, secret: &str) -> bool {
    !secret.is_empty()
        && bearer(authorization).is_some_and(|t| constant_time_eq(t.as_bytes(), secret.as_bytes()))
}

/// The token agent `agent_id` of town `town_id` uses for its callbacks.
pub fn agent_token(signing_key: &str, town_id: &str, agent_id: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(signing_key.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("gastown-agent-v1:{town_id}:{agent_id}").as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_needs_the_scheme_and_a_token() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(None), None);
    }

    #[test]
    fn empty_secrets_admit_nobody() {
        assert!(!bearer_matches(Some("Bearer x"), ""));
        assert!(bearer_matches(Some("Bearer x"), "x"));
        assert!(!bearer_matches(Some("Bearer xy"), "x"));
    }
}
