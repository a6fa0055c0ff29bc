//! Keyset pages of a list kept in `(created_at, id)` order: a page is the first `limit` rows
//! after a position, and the next page starts after its last row. A row inserted meanwhile never
//! moves the rows already listed (ids are primary keys and `created_at` never changes), so
//! walking the pages lists every row that existed at the start exactly once, however many are
//! added on the way; new rows come at the end.

use crate::sql::Value;

/// Where a page starts: after the row with this `created_at` and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct After {
    pub created_at: String,
    pub id: String,
}

/// Which page: at most `limit` rows, after `after` (from the start without it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageQuery {
    pub limit: usize,
    pub after: Option<After>,
}

/// One page of rows, and where the next one starts (`None` on the last page).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<After>,
}

impl PageQuery {
    /// A condition on the columns `created_at` and `id` (for example `b.created_at`,
    /// `b.bead_id`) keeping the rows after the position, with its arguments (`1 = 1` from the
    /// start), and the `ORDER BY ... LIMIT` that goes with it: one row more than the page, to
    /// know whether another page follows.
    pub fn sql(&self, created_at: &str, id: &str) -> (String, Vec<Value>, String) {
        let tail = format!("ORDER BY {created_at}, {id} LIMIT {}", self.limit + 1);
        match &self.after {
            None => ("1 = 1".to_owned(), Vec::new(), tail),
            Some(a) => (
                format!("({created_at} > ? OR ({created_at} = ? AND {id} > ?))"),
                vec![
                    a.created_at.as_str().into(),
                    a.created_at.as_str().into(),
                    a.id.as_str().into(),
                ],
                tail,
            ),
        }
    }

    /// The page of `rows` (as read with [`PageQuery::sql`], at most `limit + 1`): the first
    /// `limit`, and the position of the last when more followed.
    pub fn page<T>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> After) -> Page<T> {
        let more = rows.len() > self.limit;
        rows.truncate(self.limit);
        let next = if more { rows.last().map(key) } else { None };
        Page { items: rows, next }
    }
}

impl<T> Page<T> {
    /// The same page with each row mapped.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }
}
