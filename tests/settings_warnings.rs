//! A misconfigured var is warned about once per value in an isolate, not on every tick that
//! reads it.

use gastown_town::settings::{ALARM_INTERVAL_ACTIVE_SECS, TICK_DRAIN_LIMIT};
use serde_json::Value as Json;
use std::sync::Mutex;

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn warnings(name: &str) -> Vec<(String, String)> {
    LINES
        .lock()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str::<Json>(l).unwrap())
        .filter(|l| l["name"] == name)
        .map(|l| {
            (
                l["msg"].as_str().unwrap().to_owned(),
                l["given"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn each_adjusted_value_is_warned_about_once() {
    gastown_town::log::install(|l| LINES.lock().unwrap().push(l.into()));
    for _ in 0..5 {
        assert_eq!(ALARM_INTERVAL_ACTIVE_SECS.value(Some("0")), 1);
        assert_eq!(TICK_DRAIN_LIMIT.value(Some("lots")), 500);
        assert_eq!(TICK_DRAIN_LIMIT.value(Some("200")), 200);
    }
    assert_eq!(ALARM_INTERVAL_ACTIVE_SECS.value(Some("-4")), 1);
    assert_eq!(
        warnings("ALARM_INTERVAL_ACTIVE_SECS"),
        [
            ("setting_clamped".to_owned(), "0".to_owned()),
            ("setting_clamped".to_owned(), "-4".to_owned()),
        ]
    );
    assert_eq!(
        warnings("TICK_DRAIN_LIMIT"),
        [("setting_unreadable".to_owned(), "lots".to_owned())]
    );
}
