//! One Analytics Engine data point, kept within AE's limits.
//!
//! Limits (AE-AND-GRAFANA.md): one index of at most 96 bytes; at most 20 blobs and 20 doubles;
//! all blobs of a point together at most 16 KB. Every point here carries blobs 1..=14 ('' where
//! unset) and doubles 1..=10 (0 where unset), the original writer's fixed positions; a kind with
//! a double of its own past those (the tick's double12) carries zeros up to it.
//!
//! Truncation: when the blobs add up to more than [`MAX_BLOB_BYTES`], the longest blob is cut at
//! a UTF-8 boundary and ends with `…`, repeatedly, until they fit. The index is cut the same way
//! at 96 bytes.

use super::layout::{blob, double, Field, Slot};
use serde::{Deserialize, Serialize};

pub const MAX_INDEX_BYTES: usize = 96;
pub const MAX_BLOB_BYTES: usize = 16 * 1024;
const ELLIPSIS: &str = "…";

/// A data point as handed to `writeDataPoint`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataPoint {
    pub index: String,
    pub blobs: Vec<String>,
    pub doubles: Vec<f64>,
}

impl DataPoint {
    /// A point for `event` (the index and blob1), with every other slot empty.
    pub fn new(event: &str) -> Self {
        let mut p = Self {
            index: cut(event, MAX_INDEX_BYTES),
            blobs: vec![String::new(); blob::WIDTH as usize],
            doubles: vec![0.0; double::WIDTH as usize],
        };
        p.set_blob(blob::EVENT, event);
        p
    }

    pub fn set_blob(&mut self, slot: u8, value: &str) -> &mut Self {
        self.blobs[usize::from(slot) - 1] = value.to_owned();
        self
    }

    /// Sets double `slot`; one past the common ones widens the point with zeros up to it.
    pub fn set_double(&mut self, slot: u8, value: f64) -> &mut Self {
        let at = usize::from(slot) - 1;
        if at >= self.doubles.len() {
            self.doubles.resize(at + 1, 0.0);
        }
        self.doubles[at] = if value.is_finite() { value } else { 0.0 };
        self
    }

    pub fn blob(&self, slot: u8) -> &str {
        &self.blobs[usize::from(slot) - 1]
    }

    pub fn double(&self, slot: u8) -> f64 {
        self.doubles[usize::from(slot) - 1]
    }

    /// Enforces the blob budget (see the module docs).
    pub fn fitted(mut self) -> Self {
        while self.blobs.iter().map(String::len).sum::<usize>() > MAX_BLOB_BYTES {
            let total: usize = self.blobs.iter().map(String::len).sum();
            let longest = (0..self.blobs.len())
                .max_by_key(|&i| self.blobs[i].len())
                .expect("points have blobs");
            let keep = self.blobs[longest].len() - (total - MAX_BLOB_BYTES);
            self.blobs[longest] = cut(&self.blobs[longest], keep);
        }
        self
    }

    /// The point as `{field name: value}` according to a layout (debug endpoints).
    pub fn named(&self, fields: &[Field]) -> serde_json::Map<String, serde_json::Value> {
        fields
            .iter()
            .map(|f| {
                let v = match f.slot {
                    Slot::Blob(n) => self.blob(n).into(),
                    Slot::Double(n) => serde_json::json!(self.double(n)),
                };
                (f.name.to_owned(), v)
            })
            .collect()
    }
}

/// `s` cut to at most `max` bytes at a char boundary, marked with `…` when cut.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub(ELLIPSIS.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ELLIPSIS}", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_fixed_positions_with_empty_values() {
        let p = DataPoint::new("x");
        assert_eq!(p.index, "x");
        assert_eq!(p.blobs.len(), 14);
        assert_eq!(p.doubles.len(), 10);
        assert_eq!(p.blob(1), "x");
        assert!(p.blobs[1..].iter().all(String::is_empty));
        assert!(p.doubles.iter().all(|d| *d == 0.0));
    }

    #[test]
    fn cuts_the_longest_blob_until_the_point_fits() {
        let mut p = DataPoint::new("x");
        p.set_blob(10, &"é".repeat(20_000)).set_blob(6, "town");
        let p = p.fitted();
        let total: usize = p.blobs.iter().map(String::len).sum();
        assert!(total <= MAX_BLOB_BYTES, "{total}");
        assert!(p.blob(10).ends_with('…'));
        assert_eq!(p.blob(6), "town");
    }

    #[test]
    fn cuts_a_long_index_and_drops_non_finite_numbers() {
        let p = DataPoint::new(&"i".repeat(200));
        assert!(p.index.len() <= MAX_INDEX_BYTES);
        let mut p = DataPoint::new("x");
        p.set_double(3, f64::NAN);
        assert_eq!(p.double(3), 0.0);
    }
}
