//! Time as the town stores it: epoch milliseconds in, ISO-8601 UTC strings
//! (`2026-11-29T03:09:52.123Z`, as JavaScript's `toISOString()`) in SQL, so that stored
//! timestamps compare lexically, as in the original.

use chrono::{DateTime, NaiveDate, SecondsFormat};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

pub const SECOND: Millis = 1_000;
pub const MINUTE: Millis = 60 * SECOND;
pub const HOUR: Millis = 60 * MINUTE;

/// Formats epoch milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn iso(ms: Millis) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an ISO-8601 UTC time (`Z` or `+00:00`, optional fraction) or SQLite's
/// `YYYY-MM-DD HH:MM:SS` into epoch milliseconds. The shape is checked here, digit by digit;
/// the calendar by chrono, so an impossible date (`2026-02-31`) is refused.
pub fn parse_iso(s: &str) -> Option<Millis> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    let mut frac_ms = 0;
    if let Some(f) = rest.strip_prefix('.') {
        let digits = f.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        // The first three digits as milliseconds ("5" is 500), without allocating: this runs
        // for every time of every row a snapshot reads.
        let first = f[..digits.min(3)].bytes().chain(std::iter::repeat(b'0'));
        frac_ms = first.take(3).fold(0, |ms, c| ms * 10 + u32::from(c - b'0'));
        rest = &f[digits..];
    }
    if !(rest.is_empty() || rest == "Z" || rest == "+00:00") {
        return None;
    }
    if rest.is_empty() && b[10] == b'T' {
        return None;
    }
    let at = NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, mo, d)?
        .and_hms_milli_opt(h, mi, se, frac_ms)?;
    Some(at.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_to_iso_string() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(1_795_921_792_123), "2026-11-29T03:09:52.123Z");
        assert_eq!(iso(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn parses_what_it_formats_and_sqlite_datetimes() {
        for ms in [0, 1_795_921_792_123, 951_782_400_000, 4_102_444_799_999] {
            assert_eq!(parse_iso(&iso(ms)), Some(ms));
        }
        assert_eq!(parse_iso("2026-11-29 03:09:52"), Some(1_795_921_792_000));
        assert_eq!(parse_iso("2026-11-29T03:09:52Z"), Some(1_795_921_792_000));
        assert_eq!(
            parse_iso("2026-11-29T03:09:52.1+00:00"),
            Some(1_795_921_792_100)
        );
        for (fraction, ms) in [
            (".05Z", 50),
            (".123456Z", 123),
            (".999Z", 999),
            (".5Z", 500),
        ] {
            let at = format!("2026-11-29T03:09:52{fraction}");
            assert_eq!(parse_iso(&at), Some(1_795_921_792_000 + ms), "{at}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-11-29T03:09:52",
            "2026-11-29T03:09:52+02:00",
            "2026-11-29T3:09:52Z",
            "2026-02-31T00:00:00Z",
            "2026-02-29 12:00:00",
            "2026-04-31T00:00:00.000Z",
            "2026-11-29T24:00:00Z",
            "2026-11-29T23:60:00Z",
        ] {
            assert_eq!(parse_iso(bad), None, "{bad}");
        }
    }
}
