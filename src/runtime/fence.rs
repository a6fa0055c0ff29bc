//! A tick's ports fenced by the town's incarnation. A tick suspended on a remote call while the
//! town is deleted (and perhaps created again) must not write into the town that is there when
//! it resumes: once the incarnation it started with is gone, every later statement, analytics
//! point and remote call of that tick is refused. The check is exact: a Durable Object runs one
//! event at a time between awaits, and every statement is synchronous.

use crate::metrics::point::DataPoint;
use crate::metrics::writer::AnalyticsSink;
use crate::ports::{Http, HttpError, HttpRequest, HttpResponse};
use crate::sql::{IoCounters, Rows, Sql, SqlError, Value};
use std::cell::Cell;

const GONE: &str = "the town was deleted while this tick ran";

#[derive(Clone, Copy)]
pub struct Fence<'a> {
    current: &'a Cell<u64>,
    started: u64,
}

impl<'a> Fence<'a> {
    pub fn new(current: &'a Cell<u64>, started: u64) -> Self {
        Self { current, started }
    }

    /// Whether the town the tick started on is still there.
    pub fn holds(&self) -> bool {
        self.current.get() == self.started
    }

    fn check(&self) -> Result<(), SqlError> {
        if self.holds() {
            Ok(())
        } else {
            Err(SqlError::Engine(GONE.into()))
        }
    }
}

/// A port behind a fence.
pub struct Fenced<'a, T> {
    pub inner: T,
    pub fence: Fence<'a>,
}

impl<S: Sql + ?Sized> Sql for Fenced<'_, &S> {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, SqlError> {
        self.fence.check()?;
        self.inner.query(sql, params)
    }

    fn batch(&self, sql: &str) -> Result<(), SqlError> {
        self.fence.check()?;
        self.inner.batch(sql)
    }

    fn atomic(&self, body: &mut dyn FnMut() -> bool) -> Result<(), SqlError> {
        self.fence.check()?;
        self.inner.atomic(body)
    }

    fn counters(&self) -> IoCounters {
        self.inner.counters()
    }
}

impl<H: Http> Http for Fenced<'_, H> {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        if !self.fence.holds() {
            return Err(HttpError::Network(GONE.into()));
        }
        self.inner.send(request).await
    }
}

impl<A: AnalyticsSink> AnalyticsSink for Fenced<'_, A> {
    fn write(&self, point: &DataPoint) -> Result<(), String> {
        if !self.fence.holds() {
            return Err(GONE.into());
        }
        self.inner.write(point)
    }
}
