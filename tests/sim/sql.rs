//! A SQL port adapter over [`NativeSql`] for the simulation and the interruption tests.
//!
//! - It counts statements and can be **cut** after N of them: every later statement (and every
//!   atomic unit begun later) fails, as in a Durable Object that was reset. What committed
//!   stays; the atomic unit in flight when the cut came rolls back whole, even if the code
//!   inside swallowed the error.
//! - It **observes** what commits: for every committed top-level unit it reports which town
//!   events were marked processed or poisoned and whether a review row was inserted, so a test
//!   can count each event's applications.
//! - It is also the **id source** ([`Ids`]): ids are `sim-NNNNNN` from a counter that rolls back
//!   with the atomic unit that drew them, so the same committed work gets the same ids whether
//!   or not an interrupted attempt came first.

use gastown_town::ports::Ids;
use gastown_town::sql::native::NativeSql;
use gastown_town::sql::{IoCounters, Rows, Sql, SqlError, Value};
use std::cell::{Cell, RefCell};

/// Something a committed unit did to the event log or the review queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// `town_events.processed_at` was set for this event (`poisoned` when marked poisoned).
    Marked { event_id: String, poisoned: bool },
    /// A `review_metadata` row was inserted (a merge request was submitted).
    ReviewInserted,
}

/// The error every statement gets after the cut.
pub const RESET: &str = "durable object reset";

pub struct WatchedSql {
    inner: NativeSql,
    statements: Cell<u64>,
    cut_after: Cell<Option<u64>>,
    next_id: Cell<u64>,
    /// Facts of the open atomic units, innermost last.
    frames: RefCell<Vec<Vec<Fact>>>,
    /// Facts of committed top-level units, oldest first, until taken.
    committed: RefCell<Vec<Vec<Fact>>>,
    /// The text of every statement run, when recording.
    recorded: RefCell<Option<Vec<String>>>,
}

impl WatchedSql {
    pub fn new(inner: NativeSql) -> Self {
        Self {
            inner,
            statements: Cell::new(0),
            cut_after: Cell::new(None),
            next_id: Cell::new(1),
            frames: RefCell::new(Vec::new()),
            committed: RefCell::new(Vec::new()),
            recorded: RefCell::new(None),
        }
    }

    /// Statements run so far (the cut counts these).
    pub fn statements(&self) -> u64 {
        self.statements.get()
    }

    /// After `n` more statements, every statement fails.
    pub fn cut_after(&self, n: u64) {
        self.cut_after.set(Some(self.statements.get() + n));
    }

    /// Lifts the cut (the Durable Object came back).
    pub fn restore(&self) {
        self.cut_after.set(None);
    }

    pub fn is_cut(&self) -> bool {
        self.cut_after
            .get()
            .is_some_and(|n| self.statements.get() >= n)
    }

    /// Starts keeping the text of every statement.
    pub fn record_statements(&self) {
        *self.recorded.borrow_mut() = Some(Vec::new());
    }

    /// The statements recorded since [`WatchedSql::record_statements`].
    pub fn recorded(&self) -> Vec<String> {
        self.recorded.borrow().clone().unwrap_or_default()
    }

    /// The facts of the units committed since the last call, oldest first.
    pub fn take_committed(&self) -> Vec<Vec<Fact>> {
        std::mem::take(&mut self.committed.borrow_mut())
    }

    fn reset_error() -> SqlError {
        SqlError::Engine(RESET.to_owned())
    }

    /// Counts a statement, or refuses it after the cut.
    fn admit(&self, sql: &str) -> Result<(), SqlError> {
        if self.is_cut() {
            return Err(Self::reset_error());
        }
        self.statements.set(self.statements.get() + 1);
        if let Some(log) = self.recorded.borrow_mut().as_mut() {
            log.push(sql.to_owned());
        }
        Ok(())
    }

    fn note(&self, fact: Fact) {
        match self.frames.borrow_mut().last_mut() {
            Some(frame) => frame.push(fact),
            None => self.committed.borrow_mut().push(vec![fact]),
        }
    }

    /// What a statement that wrote `written` rows did, as facts.
    fn observe(&self, sql: &str, params: &[Value], written: u64) {
        if written == 0 {
            return;
        }
        let text = sql.trim_start();
        if text.starts_with("INSERT INTO review_metadata") {
            self.note(Fact::ReviewInserted);
        }
        if text.starts_with("UPDATE town_events") && text.contains("processed_at = ?") {
            let Some(Value::Text(last)) = params.last() else {
                panic!("a write to town_events.processed_at without an event id: {sql}");
            };
            // One event by id, or a batch whose ids are bound as one JSON array: every id of a
            // batch must have been pending, so each is marked exactly once.
            let event_ids: Vec<String> = if text.contains("json_each(?)") {
                let ids: Vec<String> = serde_json::from_str(last).expect("a JSON array of ids");
                assert_eq!(
                    written,
                    ids.len() as u64,
                    "a batch marked events that were not pending: {sql}"
                );
                ids
            } else {
                assert!(
                    text.contains("WHERE event_id = ?"),
                    "processed_at written for more than one event: {sql}"
                );
                vec![last.clone()]
            };
            for event_id in event_ids {
                self.note(Fact::Marked {
                    event_id,
                    poisoned: text.contains("poisoned = 1"),
                });
            }
        }
    }
}

impl Sql for WatchedSql {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, SqlError> {
        self.admit(sql)?;
        let before = self.inner.counters().rows_written;
        let rows = self.inner.query(sql, params)?;
        self.observe(sql, params, self.inner.counters().rows_written - before);
        Ok(rows)
    }

    fn batch(&self, sql: &str) -> Result<(), SqlError> {
        self.admit(sql)?;
        self.inner.batch(sql)
    }

    fn atomic(&self, body: &mut dyn FnMut() -> bool) -> Result<(), SqlError> {
        if self.is_cut() {
            return Err(Self::reset_error());
        }
        let ids_before = self.next_id.get();
        self.frames.borrow_mut().push(Vec::new());
        let mut kept = false;
        let mut lost = false;
        let result = self.inner.atomic(&mut || {
            kept = body();
            // A unit in flight when the cut came is lost whole, whatever its body made of the
            // errors.
            lost = self.is_cut();
            kept && !lost
        });
        let kept = kept && !lost;
        let result = result.and(if lost {
            Err(Self::reset_error())
        } else {
            Ok(())
        });
        let frame = self.frames.borrow_mut().pop().expect("frame pushed");
        if kept && result.is_ok() {
            match self.frames.borrow_mut().last_mut() {
                Some(parent) => parent.extend(frame),
                None => self.committed.borrow_mut().push(frame),
            }
        } else {
            self.next_id.set(ids_before);
        }
        result
    }

    fn counters(&self) -> IoCounters {
        self.inner.counters()
    }
}

impl Ids for WatchedSql {
    fn new_id(&self) -> String {
        let n = self.next_id.get();
        self.next_id.set(n + 1);
        format!("sim-{n:06}")
    }
}
