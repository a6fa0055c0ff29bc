//! The `limit` and `cursor` of a list route, and the `next_cursor` of its answer (the pages are
//! [`crate::store::page`]'s keyset pages).
//!
//! A cursor is opaque to clients: base64url of the JSON `[created_at, id]` of the last row of
//! the page before. Without `limit` a page holds [`DEFAULT_LIMIT`] rows, at most [`MAX_LIMIT`];
//! `next_cursor` is `null` on the last page. A `limit` that is not a whole number in range, or a
//! cursor this town did not hand out in that form, is a 400 naming the parameter.

use crate::http::{ApiError, Request};
use crate::jwt::{b64url, b64url_decode};
use crate::store::page::{After, Page, PageQuery};
use crate::vocabulary::time::parse_iso;
use serde_json::{json, Value as Json};

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 500;

/// The page the request asks for.
pub fn requested(req: &Request) -> Result<PageQuery, ApiError> {
    let limit = match req.query_param("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_LIMIT}, not {v:?}"),
                )
            })?,
    };
    let after = req
        .query_param("cursor")
        .map(|c| {
            decode(c).ok_or_else(|| {
                ApiError::invalid(
                    "cursor",
                    "is not a cursor this list handed out (pass `next_cursor` as it came)",
                )
            })
        })
        .transpose()?;
    Ok(PageQuery { limit, after })
}

/// The answer of a page: its rows under `key`, and `next_cursor`.
pub fn answer<T>(key: &str, page: Page<T>, show: impl FnMut(T) -> Json) -> Json {
    let next = page.next.as_ref().map(encode);
    let items: Vec<Json> = page.items.into_iter().map(show).collect();
    json!({ key: items, "next_cursor": next })
}

fn encode(after: &After) -> String {
    b64url(json!([after.created_at, after.id]).to_string().as_bytes())
}

fn decode(cursor: &str) -> Option<After> {
    let (created_at, id): (String, String) =
        crate::json::from_slice(&b64url_decode(cursor)?).ok()?;
    parse_iso(&created_at)?;
    (!id.is_empty()).then_some(After { created_at, id })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(query: &str) -> Result<PageQuery, ApiError> {
        requested(&Request::new("GET", &format!("/api/towns/t/beads{query}")))
    }

    #[test]
    fn a_cursor_round_trips_and_anything_else_is_refused() {
        let after = After {
            created_at: "2026-12-03T12:00:00.123Z".into(),
            id: "b-1".into(),
        };
        let page = asked(&format!("?cursor={}&limit=7", encode(&after))).unwrap();
        assert_eq!(
            page,
            PageQuery {
                limit: 7,
                after: Some(after)
            }
        );
        let forged = b64url(br#"["yesterday","b-1"]"#);
        for bad in ["x", "!!!!", "e30", forged.as_str(), ""] {
            let e = asked(&format!("?cursor={bad}")).unwrap_err();
            assert_eq!(e.status, 400, "{bad}");
            assert!(e.message.contains("cursor"), "{}", e.message);
        }
    }

    #[test]
    fn the_limit_defaults_and_is_bounded() {
        assert_eq!(asked("").unwrap().limit, DEFAULT_LIMIT);
        assert_eq!(asked("?limit=500").unwrap().limit, MAX_LIMIT);
        for bad in ["0", "501", "-1", "ten", "1.5", ""] {
            let e = asked(&format!("?limit={bad}")).unwrap_err();
            assert_eq!(e.status, 400, "{bad}");
            assert!(e.message.contains("limit"), "{}", e.message);
        }
    }
}
