//! Structured logs: one JSON object per line (`{"level","msg",...fields}`), so a log search can
//! filter on any field. The runtime installs the platform's console as the sink; natively lines
//! go to stderr.
//!
//! Lines below the threshold (`LOG_LEVEL`, `info` unless set) are dropped before they are built.
//! `debug` is for routine per-event outcomes (an event that no longer applies, a skipped PR
//! check): hundreds per tick on a busy town, where a line costs more than applying the event.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

static SINK: OnceLock<fn(&str)> = OnceLock::new();
static THRESHOLD: AtomicU8 = AtomicU8::new(Level::Info as u8);

/// How much a line matters, least first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }

    /// `debug`, `info`, `warn` or `error` (any case); `None` for anything else.
    pub fn parse(s: &str) -> Option<Level> {
        [Level::Debug, Level::Info, Level::Warn, Level::Error]
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// Routes log lines to `sink` (called once by the runtime).
pub fn install(sink: fn(&str)) {
    let _ = SINK.set(sink);
}

/// Drops lines below `level` from now on.
pub fn set_threshold(level: Level) {
    THRESHOLD.store(level as u8, Ordering::Relaxed);
}

/// Whether a line of `level` would be written.
fn enabled(level: Level) -> bool {
    level as u8 >= THRESHOLD.load(Ordering::Relaxed)
}

fn emit(level: Level, msg: &str, fields: &[(&str, &str)]) {
    if !enabled(level) {
        return;
    }
    let mut obj = serde_json::Map::new();
    obj.insert("level".into(), level.as_str().into());
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

pub fn debug(msg: &str, fields: &[(&str, &str)]) {
    emit(Level::Debug, msg, fields);
}

pub fn info(msg: &str, fields: &[(&str, &str)]) {
    emit(Level::Info, msg, fields);
}

pub fn warn(msg: &str, fields: &[(&str, &str)]) {
    emit(Level::Warn, msg, fields);
}

pub fn error(msg: &str, fields: &[(&str, &str)]) {
    emit(Level::Error, msg, fields);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_in_any_case_and_nothing_else() {
        assert_eq!(Level::parse("DEBUG"), Some(Level::Debug));
        assert_eq!(Level::parse(" warn "), Some(Level::Warn));
        assert_eq!(Level::parse("verbose"), None);
        assert_eq!(Level::parse(""), None);
        assert!(Level::Debug < Level::Info && Level::Warn < Level::Error);
    }
}
