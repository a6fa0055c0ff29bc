//! The Gastown JWTs (UPSTREAM-WIRE.md section 3): HS256 tokens signed with `GASTOWN_JWT_SECRET`.
//!
//! - The container token `{townId, userId, scope: "container", iat, exp}` is the one in use: one
//!   per container, shared by all agents of the town, valid 8 hours.
//! - The agent token `{agentId, rigId, townId, userId, iat, exp}` is the original's legacy token,
//!   still accepted for its own agent.
//!
//! Verification follows the original's `jsonwebtoken` options (`algorithms: ['HS256']`,
//! `maxAge: '8h'`): the header must say HS256, the signature is compared in constant time, `exp`
//! and `iat + 8h` must lie ahead of the current second, and a `nbf` ahead of it is refused. Its
//! words are kept: an expired token is [`JwtError::Expired`] ("Token expired"); any other fault
//! of the token is [`JwtError::Invalid`] ("Invalid token signature"); a well-signed token whose
//! claims are of neither shape is [`JwtError::BadPayload`].

use crate::vocabulary::time::{Millis, HOUR, SECOND};
use hmac::{Hmac, Mac};
use serde_json::{json, Value as Json};
use sha2::Sha256;
use std::fmt;

/// How long a token is valid, and the `maxAge` a verifier allows since `iat`.
pub const VALIDITY: Millis = 8 * HOUR;

/// What a verified token proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claims {
    /// Any agent of `town_id`: the container is trusted within its town.
    Container { town_id: String, user_id: String },
    /// Exactly this agent of this rig and town (legacy).
    Agent {
        agent_id: String,
        rig_id: String,
        town_id: String,
        user_id: String,
    },
}

impl Claims {
    pub fn town_id(&self) -> &str {
        match self {
            Claims::Container { town_id, .. } | Claims::Agent { town_id, .. } => town_id,
        }
    }
}

/// A verified token and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub claims: Claims,
    /// Whether `exp` has passed (only when expiry was tolerated).
    pub expired: bool,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtError {
    /// Not three base64url parts of JSON, not HS256, a wrong signature, a `nbf` ahead, no
    /// numeric `iat`, or a non-numeric `exp`.
    Invalid,
    /// `exp`, or `iat` plus 8 hours, has passed.
    Expired,
    /// Well signed, but the claims are neither a container nor an agent token.
    BadPayload,
}

impl JwtError {
    /// The original's message for a 401.
    pub fn message(self) -> &'static str {
        match self {
            JwtError::Invalid => "Invalid token signature",
            JwtError::Expired => "Token expired",
            JwtError::BadPayload => "Invalid token payload",
        }
    }
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for JwtError {}

/// Whether an expired token is still accepted (only `refresh-container-token` does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Enforced,
    Tolerated,
}

/// Signs the container token of `town_id` at `now`.
///
/// # Panics
/// On an empty secret: a token signed with no key would be forgeable, so callers check
/// for the secret first (dispatch stops without it).
pub fn sign_container(secret: &str, town_id: &str, user_id: &str, now: Millis) -> String {
    sign(
        secret,
        json!({"townId": town_id, "userId": user_id, "scope": "container"}),
        now,
    )
}

/// Signs a legacy agent token at `now` (same panic as [`sign_container`]).
pub fn sign_agent(
    secret: &str,
    agent_id: &str,
    rig_id: &str,
    town_id: &str,
    user_id: &str,
    now: Millis,
) -> String {
    sign(
        secret,
        json!({"agentId": agent_id, "rigId": rig_id, "townId": town_id, "userId": user_id}),
        now,
    )
}

fn sign(secret: &str, mut claims: Json, now: Millis) -> String {
    assert!(
        !secret.is_empty(),
        "a JWT is never signed with an empty key"
    );
    let iat = now.div_euclid(SECOND);
    claims["iat"] = iat.into();
    claims["exp"] = (iat + VALIDITY / SECOND).into();
    let signing_input = format!(
        "{}.{}",
        b64url(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64url(claims.to_string().as_bytes())
    );
    let signature = mac(secret, &signing_input).finalize().into_bytes();
    format!("{signing_input}.{}", b64url(&signature))
}

/// Verifies `token` at `now`: a container token first, then an agent token.
pub fn verify(
    secret: &str,
    token: &str,
    now: Millis,
    expiry: Expiry,
) -> Result<Verified, JwtError> {
    if secret.is_empty() {
        return Err(JwtError::Invalid);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Invalid);
    };
    let header: Json = decode_json(header)?;
    if header.get("alg").and_then(Json::as_str) != Some("HS256") {
        return Err(JwtError::Invalid);
    }
    let signature = b64url_decode(signature).ok_or(JwtError::Invalid)?;
    let signing_input = &token[..header_and_payload_len(token)];
    mac(secret, signing_input)
        .verify_slice(&signature)
        .map_err(|_| JwtError::Invalid)?;
    let claims: Json = decode_json(payload)?;
    let second = now.div_euclid(SECOND);
    let number = |name: &str| match claims.get(name) {
        None => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or(JwtError::Invalid),
    };
    if let Some(nbf) = number("nbf")? {
        if (second as f64) < nbf {
            return Err(JwtError::Invalid);
        }
    }
    // With expiry tolerated, jsonwebtoken (`ignoreExpiration`) does not look at `exp` at all, so
    // a non-numeric one is not a fault there; it just does not count as expired.
    let exp = match expiry {
        Expiry::Enforced => number("exp")?,
        Expiry::Tolerated => number("exp").ok().flatten(),
    };
    let expired = exp.is_some_and(|exp| second as f64 >= exp);
    if expiry == Expiry::Enforced {
        if expired {
            return Err(JwtError::Expired);
        }
        let iat = number("iat")?.ok_or(JwtError::Invalid)?;
        if second as f64 >= iat + (VALIDITY / SECOND) as f64 {
            return Err(JwtError::Expired);
        }
    }
    let text = |name: &str| claims.get(name).and_then(Json::as_str).map(str::to_owned);
    let container = match (text("townId"), text("userId"), text("scope").as_deref()) {
        (Some(town_id), Some(user_id), Some("container")) => {
            Some(Claims::Container { town_id, user_id })
        }
        _ => None,
    };
    let agent = || match (
        text("agentId"),
        text("rigId"),
        text("townId"),
        text("userId"),
    ) {
        (Some(agent_id), Some(rig_id), Some(town_id), Some(user_id)) => Some(Claims::Agent {
            agent_id,
            rig_id,
            town_id,
            user_id,
        }),
        _ => None,
    };
    let claims = container.or_else(agent).ok_or(JwtError::BadPayload)?;
    Ok(Verified { claims, expired })
}

fn header_and_payload_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(token.len())
}

fn mac(secret: &str, signing_input: &str) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(signing_input.as_bytes());
    mac
}

fn decode_json(part: &str) -> Result<Json, JwtError> {
    let bytes = b64url_decode(part).ok_or(JwtError::Invalid)?;
    let value: Json = serde_json::from_slice(&bytes).map_err(|_| JwtError::Invalid)?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(JwtError::Invalid)
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64url without padding (RFC 7515).
pub(crate) fn b64url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Decodes base64url without padding; `None` for any other character or an impossible length.
pub(crate) fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| ALPHABET.iter().position(|a| *a == c).map(|p| p as u32);
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.as_bytes().chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .try_fold(0u32, |n, (i, c)| Some(n | value(*c)? << (18 - 6 * i)))?;
        out.extend((0..chunk.len() - 1).map(|i| (n >> (16 - 8 * i)) as u8));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_796_000_000_000;

    fn forge(header: &str, claims: &Json, secret: &str) -> String {
        let input = format!(
            "{}.{}",
            b64url(header.as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let sig = mac(secret, &input).finalize().into_bytes();
        format!("{input}.{}", b64url(&sig))
    }

    #[test]
    fn base64url_round_trips_every_length() {
        for len in 0..40u8 {
            let bytes: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(b64url_decode(&b64url(&bytes)), Some(bytes));
        }
        assert_eq!(b64url(b"\xfb\xff"), "-_8");
        assert_eq!(b64url_decode("a+b="), None);
        assert_eq!(b64url_decode("abcde"), None);
    }

    #[test]
    fn a_container_token_carries_its_claims_for_eight_hours() {
        let token = sign_container("s3cret", "town-a", "user-1", NOW);
        let got = verify("s3cret", &token, NOW, Expiry::Enforced).unwrap();
        assert_eq!(
            got.claims,
            Claims::Container {
                town_id: "town-a".into(),
                user_id: "user-1".into()
            }
        );
        let payload: Json = decode_json(token.split('.').nth(1).unwrap()).unwrap();
        assert_eq!(payload["scope"], "container");
        assert_eq!(
            payload["exp"].as_i64().unwrap() - payload["iat"].as_i64().unwrap(),
            28_800
        );
        let later = NOW + VALIDITY - SECOND;
        assert!(verify("s3cret", &token, later, Expiry::Enforced).is_ok());
        assert_eq!(
            verify("s3cret", &token, NOW + VALIDITY, Expiry::Enforced),
            Err(JwtError::Expired)
        );
        let tolerated = verify("s3cret", &token, NOW + VALIDITY, Expiry::Tolerated).unwrap();
        assert!(tolerated.expired);
    }

    #[test]
    fn an_agent_token_names_its_agent() {
        let token = sign_agent("k", "a1", "r1", "t1", "u1", NOW);
        let got = verify("k", &token, NOW, Expiry::Enforced).unwrap();
        assert_eq!(
            got.claims,
            Claims::Agent {
                agent_id: "a1".into(),
                rig_id: "r1".into(),
                town_id: "t1".into(),
                user_id: "u1".into()
            }
        );
    }

    #[test]
    fn refuses_forgeries_and_other_algorithms() {
        let token = sign_container("right", "t", "u", NOW);
        assert_eq!(
            verify("wrong", &token, NOW, Expiry::Enforced),
            Err(JwtError::Invalid)
        );
        let claims = json!({"townId": "t", "userId": "u", "scope": "container",
                            "iat": NOW / 1000, "exp": NOW / 1000 + 60});
        let none = format!(
            "{}.{}.",
            b64url(br#"{"alg":"none","typ":"JWT"}"#),
            b64url(claims.to_string().as_bytes())
        );
        assert_eq!(
            verify("right", &none, NOW, Expiry::Enforced),
            Err(JwtError::Invalid)
        );
        let hs512 = forge(r#"{"alg":"HS512"}"#, &claims, "right");
        assert_eq!(
            verify("right", &hs512, NOW, Expiry::Enforced),
            Err(JwtError::Invalid)
        );
        assert!(verify(
            "right",
            &forge(r#"{"alg":"HS256"}"#, &claims, "right"),
            NOW,
            Expiry::Enforced
        )
        .is_ok());
        for junk in ["", "a.b", "a.b.c.d", "!!.!!.!!", &token[..token.len() - 2]] {
            assert_eq!(
                verify("right", junk, NOW, Expiry::Enforced),
                Err(JwtError::Invalid),
                "{junk}"
            );
        }
        assert_eq!(
            verify("", &token, NOW, Expiry::Enforced),
            Err(JwtError::Invalid)
        );
    }

    #[test]
    fn needs_iat_and_honours_nbf_and_max_age() {
        let h = r#"{"alg":"HS256","typ":"JWT"}"#;
        let base = json!({"townId": "t", "userId": "u", "scope": "container"});
        let with = |extra: Json| {
            let mut c = base.clone();
            c.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            forge(h, &c, "k")
        };
        let s = NOW / 1000;
        assert_eq!(
            verify("k", &with(json!({})), NOW, Expiry::Enforced),
            Err(JwtError::Invalid)
        );
        assert_eq!(
            verify(
                "k",
                &with(json!({"iat": s - 8 * 3600})),
                NOW,
                Expiry::Enforced
            ),
            Err(JwtError::Expired)
        );
        assert_eq!(
            verify(
                "k",
                &with(json!({"iat": s, "nbf": s + 10})),
                NOW,
                Expiry::Enforced
            ),
            Err(JwtError::Invalid)
        );
        assert_eq!(
            verify(
                "k",
                &with(json!({"iat": s, "exp": "soon"})),
                NOW,
                Expiry::Enforced
            ),
            Err(JwtError::Invalid)
        );
        let odd_exp = verify(
            "k",
            &with(json!({"iat": s, "exp": "soon"})),
            NOW,
            Expiry::Tolerated,
        );
        assert!(!odd_exp.unwrap().expired, "tolerated: exp is not read");
        let odd = forge(h, &json!({"townId": "t", "iat": s}), "k");
        assert_eq!(
            verify("k", &odd, NOW, Expiry::Enforced),
            Err(JwtError::BadPayload)
        );
        assert_eq!(JwtError::BadPayload.message(), "Invalid token payload");
    }

    #[test]
    #[should_panic(expected = "empty key")]
    fn never_signs_with_an_empty_key() {
        sign_container("", "t", "u", NOW);
    }
}
