//! Structured logs: one JSON object per line (`{"level","msg",...fields}`), so a log search can
//! filter on any field. The runtime installs the platform's console as the sink; natively lines
//! go to stderr.

use std::sync::OnceLock;

static SINK: OnceLock<fn(&str)> = OnceLock::new();

/// Routes log lines to `sink` (called once by the runtime).
pub fn install(sink: fn(&str)) {
    let _ = SINK.set(sink);
}

fn emit(level: &str, msg: &str, fields: &[(&str, &str)]) {
    let mut obj = serde_json::Map::new();
    obj.insert("level".into(), level.into());
    obj.insert("msg".into(), msg.into());
    for (k, v) in fields {
        obj.insert((*k).into(), (*v).into());
    }
    let line = serde_json::Value::Object(obj).to_string();
    match SINK.get() {
        Some(sink) => sink(&line),
        None => eprintln!("{line}"),
    }
}

pub fn info(msg: &str, fields: &[(&str, &str)]) {
    emit("info", msg, fields);
}

pub fn warn(msg: &str, fields: &[(&str, &str)]) {
    emit("warn", msg, fields);
}

pub fn error(msg: &str, fields: &[(&str, &str)]) {
    emit("error", msg, fields);
}
