//! Credentials: bearer tokens compared in constant time (`subtle`). The container-facing routes
//! take the JWTs of [`crate::jwt`] instead (see [`super::edge`]).

use subtle::ConstantTimeEq;

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
        && bearer(authorization).is_some_and(|t| bool::from(t.as_bytes().ct_eq(secret.as_bytes())))
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
