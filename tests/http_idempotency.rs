//! Idempotency-Key answers: bound to the request as parsed (not its spacing), kept 24 hours,
//! and never outliving the town they were given in.

use gastown_town::http::routes::route;
use gastown_town::http::town::{handle, KEY_TTL};
use gastown_town::http::{Request, Response};
use gastown_town::testing::town::*;
use serde_json::json;

fn send(town: &Town, req: Request) -> Response {
    let routed = route(&req).unwrap();
    handle(&town.ctx(), TOWN_ID, &routed, &req, "jwt-secret").response
}

fn keyed(method: &str, path: &str, key: &str, body: &str) -> Request {
    let mut req = Request::new(method, path)
        .header("idempotency-key", key)
        .header("content-type", "application/json");
    req.body = body.as_bytes().to_vec();
    req
}

fn issues(town: &Town) -> usize {
    let beads = send(
        town,
        Request::new("GET", &format!("/api/towns/{TOWN_ID}/beads?type=issue")),
    );
    beads.body_json()["beads"].as_array().unwrap().len()
}

#[test]
fn the_same_json_with_other_spacing_or_key_order_is_the_same_request() {
    let town = TownBuilder::new().rig("web").build();
    let path = format!("/api/towns/{TOWN_ID}/beads");
    let first = send(
        &town,
        keyed(
            "POST",
            &path,
            "k1",
            r#"{"rig_id":"web","title":"Add search"}"#,
        ),
    );
    assert_eq!(first.status, 201, "{}", first.body);
    let again = send(
        &town,
        keyed(
            "POST",
            &path,
            "k1",
            "{ \"title\" : \"Add search\",\n  \"rig_id\": \"web\" }",
        ),
    );
    assert_eq!((again.status, &again.body), (201, &first.body));
    assert_eq!(issues(&town), 1);
    let other = send(
        &town,
        keyed("POST", &path, "k1", r#"{"rig_id":"web","title":"Other"}"#),
    );
    assert_eq!(other.status, 422);
}

#[test]
fn a_key_is_forgotten_after_a_day() {
    let town = TownBuilder::new().rig("web").build();
    let path = format!("/api/towns/{TOWN_ID}/beads");
    let body = json!({"rig_id": "web", "title": "Add search"}).to_string();
    assert_eq!(send(&town, keyed("POST", &path, "k", &body)).status, 201);
    town.advance(KEY_TTL - 1);
    assert_eq!(send(&town, keyed("POST", &path, "k", &body)).status, 201);
    assert_eq!(issues(&town), 1);
    town.advance(2);
    assert_eq!(send(&town, keyed("POST", &path, "k", &body)).status, 201);
    assert_eq!(issues(&town), 2);
}

#[test]
fn a_deleted_town_keeps_no_key_not_even_its_delete_s() {
    let town = TownBuilder::new().build();
    let path = format!("/api/towns/{TOWN_ID}");
    assert_eq!(send(&town, keyed("DELETE", &path, "del", "")).status, 204);
    let put = send(
        &town,
        keyed("PUT", &path, "put", r#"{"owner_user_id":"me"}"#),
    );
    assert_eq!(put.status, 201, "{}", put.body);
    // The same DELETE again deletes the town created since, instead of replaying a 204.
    assert_eq!(send(&town, keyed("DELETE", &path, "del", "")).status, 204);
    assert_eq!(send(&town, Request::new("GET", &path)).status, 404);
    // And the PUT's key went with the town: the same PUT creates it again.
    assert_eq!(
        send(
            &town,
            keyed("PUT", &path, "put", r#"{"owner_user_id":"me"}"#)
        )
        .status,
        201
    );
}
