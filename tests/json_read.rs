//! `json::read` against what it replaced: serde_json's `Value` deserializer wrapped in
//! `serde_path_to_error`. Seeded random values, most of them a valid one with a few parts
//! changed, are read both ways into types that use every serde feature the town's types use
//! (and the town's own config and event payloads); both must give the same value, or the same
//! message at the same path. The one difference the module documents, a struct refused from an
//! array, is checked to be that and nothing else.

use gastown_town::bench::rng::Rng;
use gastown_town::json::{from_slice, read, Misfit};
use gastown_town::vocabulary::config::TownConfig;
use gastown_town::vocabulary::events::{
    AgentDone, BeadCreated, ContainerStatus, PrFeedbackDetected,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};
use std::collections::BTreeMap;
use std::fmt::Debug;

#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Everything {
    name: String,
    count: u32,
    delta: i64,
    ratio: f64,
    flag: bool,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    inner: Inner,
    #[serde(default)]
    maybe_inner: Option<Inner>,
    #[serde(default)]
    inners: Vec<Inner>,
    #[serde(default)]
    scores: BTreeMap<String, u64>,
    #[serde(default)]
    anything: Json,
    #[serde(default)]
    object: Map<String, Json>,
    #[serde(default)]
    state: Option<State>,
    #[serde(default)]
    pair: Option<(String, u8)>,
    #[serde(default)]
    id: Option<Id>,
    #[serde(default)]
    shape: Option<Shape>,
    #[serde(default)]
    nothing: (),
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Inner {
    title: String,
    #[serde(default)]
    priority: Option<u8>,
    #[serde(default)]
    states: Vec<State>,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum State {
    Open,
    InProgress,
    Closed,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Id(String);

/// An externally tagged enum with every kind of variant (the town's enums are all unit ones).
#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Shape {
    Dot,
    Circle(f64),
    Segment(i32, i32),
    Square { side: u16 },
}

fn valid() -> Json {
    json!({
        "name": "n", "count": 3, "delta": -4, "ratio": 0.5, "flag": true, "note": "x",
        "tags": ["a", "b"],
        "inner": {"title": "t", "priority": 2, "states": ["open", "in_progress"]},
        "maybeInner": {"title": "u"},
        "inners": [{"title": "v"}, {"title": "w", "states": ["closed"]}],
        "scores": {"a": 1, "b": 2},
        "anything": {"k": [1, "2", null]},
        "object": {"o": 1},
        "state": "closed",
        "pair": ["p", 7],
        "id": "i",
        "shape": {"square": {"side": 4}},
        "nothing": null
    })
}

/// A random JSON value of any kind, shallow.
fn any(rng: &mut Rng, depth: u32) -> Json {
    const WORDS: &[&str] = &[
        "open",
        "closed",
        "in_progress",
        "title",
        "dot",
        "circle",
        "segment",
        "square",
        "side",
        "",
        "x",
        "name",
        "priority",
    ];
    match rng.below(if depth > 2 { 5 } else { 7 }) {
        0 => Json::Null,
        1 => Json::Bool(rng.chance(0.5)),
        2 => json!(*rng.pick(&[
            0i64,
            1,
            2,
            7,
            255,
            256,
            65_536,
            -1,
            -129,
            i64::MIN,
            i64::MAX
        ])),
        3 => json!(*rng.pick(&[0.5, -2.25, 1e300, 3.0, -0.0])),
        4 => json!(rng.pick(WORDS)),
        5 => Json::Array((0..rng.below(4)).map(|_| any(rng, depth + 1)).collect()),
        _ => Json::Object(
            (0..rng.below(4))
                .map(|_| (rng.pick(WORDS).to_string(), any(rng, depth + 1)))
                .collect(),
        ),
    }
}

/// Changes one random part of `value`: replaces it, drops or adds a key, or grows an array.
fn mutate(rng: &mut Rng, value: &mut Json) {
    let descend = rng.chance(0.7);
    match value {
        Json::Object(map) if descend && !map.is_empty() => {
            let key = map
                .keys()
                .nth(rng.below(map.len() as u64) as usize)
                .cloned();
            let key = key.expect("a key");
            match rng.below(6) {
                0 => {
                    map.remove(&key);
                }
                1 => {
                    map.insert(format!("{key}_extra"), any(rng, 1));
                }
                _ => mutate(rng, map.get_mut(&key).expect("the key")),
            }
        }
        Json::Array(items) if descend && !items.is_empty() => match rng.below(5) {
            0 => items.push(any(rng, 1)),
            1 => {
                items.pop();
            }
            _ => {
                let i = rng.below(items.len() as u64) as usize;
                mutate(rng, &mut items[i]);
            }
        },
        _ => *value = any(rng, 0),
    }
}

/// What the old reader gave: the value, or the path and message.
fn old<T: DeserializeOwned>(value: Json) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        (path, e.into_inner().to_string())
    })
}

/// The value at a `json::read` path (`a.b[2].c`), if the path is plain enough to follow.
fn at<'v>(value: &'v Json, path: &str) -> Option<&'v Json> {
    let mut here = value;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, indexes) = part
            .split_once('[')
            .map_or((part, ""), |(k, rest)| (k, rest));
        if !key.is_empty() {
            here = here.get(key)?;
        }
        for index in indexes.split('[').filter(|i| !i.is_empty()) {
            here = here.get(index.trim_end_matches(']').parse::<usize>().ok()?)?;
        }
    }
    Some(here)
}

#[derive(Default, Debug)]
struct Tally {
    same_value: usize,
    same_error: usize,
    struct_from_array: usize,
}

/// Reads `value` both ways and checks they agree; returns which way they agreed.
fn compare<T: DeserializeOwned + PartialEq + Debug>(value: &Json, tally: &mut Tally) {
    let was = old::<T>(value.clone());
    let now = read::<T>(value.clone()).map_err(|Misfit { path, error }| (path, error.to_string()));
    match (&was, &now) {
        (Ok(a), Ok(b)) if a == b => tally.same_value += 1,
        (Err(a), Err(b)) if a == b => tally.same_error += 1,
        (_, Err((path, message)))
            if message.starts_with("invalid type: sequence, expected struct") =>
        {
            assert!(
                at(value, path).is_some_and(Json::is_array),
                "refused a struct at {path:?} that is not an array, in {value}"
            );
            tally.struct_from_array += 1;
        }
        _ => panic!("{value}\n  serde_path_to_error: {was:?}\n  json::read:          {now:?}"),
    }
}

fn differential<T: DeserializeOwned + PartialEq + Debug>(
    seed: u64,
    start: Json,
    cases: usize,
) -> Tally {
    let mut rng = Rng::new(seed);
    let mut tally = Tally::default();
    compare::<T>(&start, &mut tally);
    for _ in 0..cases {
        let mut value = start.clone();
        for _ in 0..=rng.below(3) {
            mutate(&mut rng, &mut value);
        }
        compare::<T>(&value, &mut tally);
    }
    tally
}

#[test]
fn reads_as_serde_path_to_error_did_over_every_serde_feature_in_use() {
    let shapes = [
        json!("dot"),
        json!({"circle": 1.5}),
        json!({"segment": [1, 2]}),
        json!({"square": {"side": 4}}),
    ];
    for (seed, shape) in (20_261_203..).zip(shapes) {
        let mut start = valid();
        start["shape"] = shape;
        let tally = differential::<Everything>(seed, start, 10_000);
        // The cases must exercise both outcomes, not only errors.
        assert!(tally.same_value > 500, "{tally:?}");
        assert!(tally.same_error > 5_000, "{tally:?}");
    }
}

#[test]
fn reads_the_towns_own_types_as_serde_path_to_error_did() {
    let config = serde_json::to_value(TownConfig::default()).expect("serializes");
    let done = json!({"branch": "b", "pr_url": "https://h/o/r/pull/1", "summary": "s"});
    let created = json!({"bead_type": "issue", "rig_id": "r", "has_blockers": true});
    let status = json!({"status": "running", "exit_reason": "x"});
    let feedback = json!({
        "mr_bead_id": "m", "pr_url": "https://h/o/r/pull/1", "pr_number": 1, "repo": "o/r",
        "branch": "b", "has_unresolved_comments": true, "has_failing_checks": false,
        "has_unchecked_runs": false
    });
    for (seed, tally) in [
        (1, differential::<TownConfig>(1, config, 5_000)),
        (2, differential::<AgentDone>(2, done, 3_000)),
        (3, differential::<BeadCreated>(3, created, 3_000)),
        (4, differential::<ContainerStatus>(4, status, 3_000)),
        (5, differential::<PrFeedbackDetected>(5, feedback, 3_000)),
    ] {
        assert!(tally.same_error > 100, "seed {seed}: {tally:?}");
    }
}

#[test]
fn names_the_innermost_field_that_did_not_fit() {
    let mut value = valid();
    value["inners"][1]["states"][0] = json!("shut");
    let misfit = read::<Everything>(value).unwrap_err();
    assert_eq!(misfit.path, "inners[1].states[0]");
    assert!(
        misfit
            .error
            .to_string()
            .starts_with("unknown variant `shut`"),
        "{misfit}"
    );
    assert_eq!(
        misfit.to_string(),
        "inners[1].states[0]: unknown variant `shut`, expected one of `open`, `in_progress`, `closed`"
    );

    let mut value = valid();
    value["shape"] = json!({"square": {"side": -1}});
    assert_eq!(
        read::<Everything>(value).unwrap_err().path,
        "shape.square.side"
    );

    let mut value = valid();
    value.as_object_mut().unwrap().remove("inner");
    let misfit = read::<Everything>(value).unwrap_err();
    assert_eq!(
        (misfit.path.as_str(), misfit.to_string()),
        ("", "missing field `inner`".into())
    );
}

#[test]
fn refuses_a_struct_given_as_an_array_of_its_fields() {
    let mut value = valid();
    value["inner"] = json!(["t", 2, []]);
    assert!(
        old::<Everything>(value.clone()).is_ok(),
        "serde_json takes it"
    );
    let misfit = read::<Everything>(value).unwrap_err();
    assert_eq!(misfit.path, "inner");
    assert_eq!(
        misfit.error.to_string(),
        "invalid type: sequence, expected struct Inner"
    );
}

#[test]
fn from_slice_reads_text_as_read_does_and_names_no_field_when_it_is_not_json() {
    let text = valid().to_string();
    assert_eq!(
        from_slice::<Everything>(text.as_bytes()).unwrap(),
        read::<Everything>(valid()).unwrap()
    );
    let misfit = from_slice::<Everything>(b"{\"name\": ").unwrap_err();
    let parser = serde_json::from_slice::<Json>(b"{\"name\": ").unwrap_err();
    assert_eq!(
        (misfit.path.as_str(), misfit.to_string()),
        ("", parser.to_string())
    );
    let misfit = from_slice::<Everything>(br#"{"inner": {"title": 1}}"#).unwrap_err();
    assert_eq!(
        misfit.to_string(),
        "inner.title: invalid type: integer `1`, expected a string"
    );
}
