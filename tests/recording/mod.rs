//! An SQL port over `NativeSql` that remembers every statement it ran, with its parameters, in
//! order: for tests about which statements an operation makes.

use gastown_town::sql::native::NativeSql;
use gastown_town::sql::{IoCounters, Rows, Sql, SqlError, Value};
use std::cell::RefCell;

pub struct Recording<'a> {
    inner: &'a NativeSql,
    seen: RefCell<Vec<(String, Vec<Value>)>>,
}

impl<'a> Recording<'a> {
    pub fn new(inner: &'a NativeSql) -> Self {
        Self {
            inner,
            seen: RefCell::new(Vec::new()),
        }
    }

    /// The statements run so far, oldest first.
    pub fn into_statements(self) -> Vec<(String, Vec<Value>)> {
        self.seen.into_inner()
    }
}

impl Sql for Recording<'_> {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, SqlError> {
        self.seen
            .borrow_mut()
            .push((sql.to_owned(), params.to_vec()));
        self.inner.query(sql, params)
    }
    fn batch(&self, sql: &str) -> Result<(), SqlError> {
        self.inner.batch(sql)
    }
    fn atomic(&self, body: &mut dyn FnMut() -> bool) -> Result<(), SqlError> {
        self.inner.atomic(body)
    }
    fn counters(&self) -> IoCounters {
        self.inner.counters()
    }
}
