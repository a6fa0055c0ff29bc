//! Tickets for the status page's WebSocket. A browser cannot set `Authorization` on a WebSocket,
//! so the status page (itself served only with the debug token) carries a ticket for its own
//! town, good for [`TTL_MS`], and offers it as the WebSocket protocol `ticket.<ticket>` beside
//! [`PROTOCOL`]. The debug token never reaches the page; a ticket opens nothing but that town's
//! read-only status socket, and a header keeps it out of URLs and access logs.
//!
//! A ticket is `<expiry ms>.<HMAC-SHA256 hex>` over the town id and the expiry, keyed with the
//! debug token: rotating the token voids every ticket.

use super::super::Request;
use crate::vocabulary::time::{Millis, MINUTE};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a ticket opens sockets (an open socket stays open).
pub const TTL_MS: Millis = 5 * MINUTE;

/// The WebSocket protocol the status socket speaks, answered in `Sec-WebSocket-Protocol`.
pub const PROTOCOL: &str = "gastown.status";

/// The prefix of the protocol entry that carries a ticket.
const TICKET_PREFIX: &str = "ticket.";

fn mac(debug_token: &str, town_id: &str, expires: Millis) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(debug_token.as_bytes()).expect("any key length");
    mac.update(format!("gastown status ticket\n{town_id}\n{expires}").as_bytes());
    mac
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A ticket for `town_id`'s status socket, good until `now + TTL_MS`.
pub fn issue(debug_token: &str, town_id: &str, now: Millis) -> String {
    let expires = now + TTL_MS;
    let tag = mac(debug_token, town_id, expires).finalize().into_bytes();
    format!("{expires}.{}", hex(&tag))
}

/// Whether `ticket` opens `town_id`'s status socket at `now` (never without a debug token).
pub fn valid(debug_token: &str, town_id: &str, ticket: &str, now: Millis) -> bool {
    let Some((expires, tag)) = ticket.split_once('.') else {
        return false;
    };
    let (Ok(expires), Some(tag)) = (expires.parse::<Millis>(), unhex(tag)) else {
        return false;
    };
    !debug_token.is_empty()
        && now < expires
        && expires <= now + TTL_MS
        && mac(debug_token, town_id, expires)
            .verify_slice(&tag)
            .is_ok()
}

/// The ticket a request offers in `Sec-WebSocket-Protocol`, if any.
pub fn offered(req: &Request) -> Option<&str> {
    req.get_header("sec-websocket-protocol")?
        .split(',')
        .find_map(|p| p.trim().strip_prefix(TICKET_PREFIX))
}

/// The protocol entry a page offers for `ticket`.
pub fn protocol_entry(ticket: &str) -> String {
    format!("{TICKET_PREFIX}{ticket}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_800_000_000_000;

    #[test]
    fn a_ticket_opens_its_own_town_until_it_expires() {
        let t = issue("debug", "t1", NOW);
        assert!(valid("debug", "t1", &t, NOW));
        assert!(valid("debug", "t1", &t, NOW + TTL_MS - 1));
        assert!(!valid("debug", "t1", &t, NOW + TTL_MS));
        assert!(!valid("debug", "t2", &t, NOW));
        assert!(!valid("other", "t1", &t, NOW));
    }

    #[test]
    fn forged_and_malformed_tickets_are_refused() {
        let t = issue("debug", "t1", NOW);
        let (expires, tag) = t.split_once('.').unwrap();
        let later = format!("{}.{tag}", expires.parse::<Millis>().unwrap() + 1);
        assert!(!valid("debug", "t1", &later, NOW));
        // A far expiry signed with the right key is still refused: no ticket outlives the TTL.
        let far = NOW + 10 * TTL_MS;
        let long = format!(
            "{far}.{}",
            hex(&mac("debug", "t1", far).finalize().into_bytes())
        );
        assert!(!valid("debug", "t1", &long, NOW));
        for bad in ["", ".", "x.y", "123", "123.abc", &format!("{expires}.zz")] {
            assert!(!valid("debug", "t1", bad, NOW), "{bad}");
        }
        assert!(!valid("", "t1", &issue("", "t1", NOW), NOW));
    }

    #[test]
    fn the_status_socket_is_admitted_with_the_debug_token_or_a_ticket_of_its_town() {
        use crate::http::edge::{admit, Secrets};
        let secrets = Secrets {
            api_token: "api".into(),
            jwt_secret: "jwt".into(),
            debug_token: "debug".into(),
        };
        let socket = |town: &str, header: (&str, String)| {
            let mut req = Request::new("GET", &format!("/debug/towns/{town}/status/ws"));
            req.headers.push((header.0.into(), header.1));
            admit(&req, &secrets, NOW).map(|_| ()).map_err(|e| e.status)
        };
        let offer = |t: &str| format!("{PROTOCOL}, {}", protocol_entry(t));
        let ticket = issue("debug", "t1", NOW);
        assert_eq!(
            socket("t1", ("authorization", "Bearer debug".into())),
            Ok(())
        );
        assert_eq!(
            socket("t1", ("sec-websocket-protocol", offer(&ticket))),
            Ok(())
        );
        assert_eq!(
            socket("t2", ("sec-websocket-protocol", offer(&ticket))),
            Err(401)
        );
        assert_eq!(
            socket("t1", ("authorization", "Bearer api".into())),
            Err(401)
        );
        // A ticket opens the socket only, never another debug route.
        let mut status = Request::new("GET", "/debug/towns/t1/status");
        status
            .headers
            .push(("sec-websocket-protocol".into(), offer(&ticket)));
        assert_eq!(
            admit(&status, &secrets, NOW)
                .map(|_| ())
                .map_err(|e| e.status),
            Err(401)
        );
    }

    #[test]
    fn the_ticket_is_read_from_the_offered_protocols() {
        let mut req = Request::new("GET", "/debug/towns/t1/status/ws");
        assert_eq!(offered(&req), None);
        req.headers.push((
            "sec-websocket-protocol".into(),
            format!("{PROTOCOL}, {}", protocol_entry("123.ab")),
        ));
        assert_eq!(offered(&req), Some("123.ab"));
    }
}
