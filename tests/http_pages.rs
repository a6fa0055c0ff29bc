//! The list routes answer a page at a time: `limit` (default 100, at most 500) and an opaque
//! `cursor` from the page before; walking the pages lists every row once, in order, however
//! many rows are added meanwhile; a bad `limit` or `cursor` is a 400 that changes nothing.

use gastown_town::http::routes::route;
use gastown_town::http::town::handle;
use gastown_town::http::{Request, Response};
use gastown_town::testing::town::*;
use gastown_town::vocabulary::model::{AgentRole, BeadStatus};
use serde_json::{json, Value as Json};

fn send(town: &Town, req: Request) -> Response {
    let routed = route(&req).unwrap();
    handle(&town.ctx(), TOWN_ID, &routed, &req, "jwt-secret").response
}

fn get(town: &Town, path_and_query: &str) -> Response {
    send(
        town,
        Request::new("GET", &format!("/api/towns/{TOWN_ID}/{path_and_query}")),
    )
}

fn create_issue(town: &Town, title: &str) -> String {
    let req = Request::new("POST", &format!("/api/towns/{TOWN_ID}/beads"))
        .json(&json!({"rig_id": "web", "title": title}));
    let res = send(town, req);
    assert_eq!(res.status, 201, "{}", res.body);
    res.body_json()["bead"]["bead_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Walks every page of `list` (a path with its query) `limit` rows at a time, calling `between`
/// after each page; returns the ids under `key`/`id` in the order listed, and the page count.
fn walk(
    town: &Town,
    list: &str,
    key: &str,
    id: &str,
    limit: usize,
    mut between: impl FnMut(),
) -> (Vec<String>, usize) {
    let sep = if list.contains('?') { '&' } else { '?' };
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            None => format!("{list}{sep}limit={limit}"),
            Some(c) => format!("{list}{sep}limit={limit}&cursor={c}"),
        };
        let res = get(town, &query);
        assert_eq!(res.status, 200, "{}", res.body);
        let body = res.body_json();
        let rows = body[key].as_array().unwrap();
        assert!(rows.len() <= limit);
        ids.extend(rows.iter().map(|r| r[id].as_str().unwrap().to_owned()));
        pages += 1;
        between();
        match &body["next_cursor"] {
            Json::Null => return (ids, pages),
            Json::String(c) => cursor = Some(c.clone()),
            other => panic!("next_cursor {other}"),
        }
    }
}

#[test]
fn pages_list_every_bead_once_in_order_while_beads_are_added() {
    // 30 beads of one instant (ties broken by id), then 70 created a millisecond apart.
    let mut builder = TownBuilder::new().rig("web");
    for i in 0..30 {
        builder = builder.bead(BeadSpec::issue(&format!("tie-{i:02}")).rig("web"));
    }
    let town = builder.build();
    let mut before = Vec::new();
    for i in 0..70 {
        town.advance(1);
        before.push(create_issue(&town, &format!("issue {i}")));
    }
    let (all, pages) = walk(&town, "beads", "beads", "bead_id", 500, || {});
    assert_eq!((all.len(), pages), (100, 1));
    let mut added = Vec::new();
    let (walked, pages) = walk(&town, "beads", "beads", "bead_id", 7, || {
        town.advance(1);
        added.push(create_issue(&town, "added while paging"));
    });
    // Every bead that existed is listed once and in the one-page order; the ones added while
    // paging come after them (each page adds one, and the walk reaches them too).
    assert_eq!(walked[..100], all[..]);
    assert_eq!(walked[100..], added[..walked.len() - 100]);
    let unique: std::collections::HashSet<_> = walked.iter().collect();
    assert_eq!(unique.len(), walked.len());
    assert!(pages > 100 / 7);
    assert_eq!(all[30..], before[..]);
}

#[test]
fn filters_apply_to_every_page_and_the_default_page_is_a_hundred() {
    let mut builder = TownBuilder::new().rig("web").rig("api");
    for i in 0..130 {
        let rig = if i % 2 == 0 { "web" } else { "api" };
        let status = if i % 3 == 0 {
            BeadStatus::Closed
        } else {
            BeadStatus::Open
        };
        builder = builder.bead(BeadSpec::issue(&format!("b{i:03}")).rig(rig).status(status));
    }
    let town = builder.build();
    let first = get(&town, "beads").body_json();
    assert_eq!(first["beads"].as_array().unwrap().len(), 100);
    assert!(first["next_cursor"].is_string());
    let (open_web, _) = walk(
        &town,
        "beads?status=open&rig_id=web&type=issue",
        "beads",
        "bead_id",
        10,
        || {},
    );
    let expected: Vec<String> = (0..130)
        .filter(|i| i % 2 == 0 && i % 3 != 0)
        .map(|i| format!("b{i:03}"))
        .collect();
    assert_eq!(open_web, expected);
}

#[test]
fn agents_and_reviews_are_paged_too() {
    let mut builder = TownBuilder::new().rig("web");
    for i in 0..12 {
        builder = builder
            .agent(AgentSpec::new(&format!("a{i:02}"), AgentRole::Polecat).rig("web"))
            .bead(BeadSpec::issue(&format!("src{i:02}")).rig("web"))
            .bead(BeadSpec::mr(&format!("mr{i:02}"), &format!("src{i:02}"), "gt/x").rig("web"));
    }
    let town = builder.build();
    let (agents, pages) = walk(&town, "agents", "agents", "agent_id", 5, || {});
    assert_eq!(pages, 3);
    assert_eq!(
        agents,
        (0..12).map(|i| format!("a{i:02}")).collect::<Vec<_>>()
    );
    let (reviews, pages) = walk(&town, "reviews", "reviews", "mr_bead_id", 5, || {});
    assert_eq!(pages, 3);
    assert_eq!(
        reviews,
        (0..12).map(|i| format!("mr{i:02}")).collect::<Vec<_>>()
    );
    let mrs = walk(
        &town,
        "beads?type=merge_request",
        "beads",
        "bead_id",
        100,
        || {},
    );
    assert_eq!(mrs.0, reviews);
}

#[test]
fn a_bad_limit_or_cursor_is_a_400_naming_it() {
    let town = TownBuilder::new()
        .rig("web")
        .bead(BeadSpec::issue("b1").rig("web"))
        .build();
    for (query, field) in [
        ("beads?limit=0", "limit"),
        ("beads?limit=501", "limit"),
        ("beads?limit=abc", "limit"),
        ("beads?cursor=not-a-cursor", "cursor"),
        ("agents?cursor=%00", "cursor"),
        ("reviews?limit=-5", "limit"),
    ] {
        let res = get(&town, query);
        assert_eq!(res.status, 400, "{query}: {}", res.body);
        let error = &res.body_json()["error"];
        assert_eq!(error["code"], "invalid_field", "{query}");
        assert!(
            error["message"].as_str().unwrap().contains(field),
            "{query}: {error}"
        );
    }
}
