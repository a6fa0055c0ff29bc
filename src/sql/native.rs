//! The host adapter of the SQL port: real SQLite through `rusqlite`, running the same SQL text
//! as the Durable Object. Used by native tests, the simulation and the benchmarks.

use super::{IoCounters, Rows, Sql, SqlError, Value};
use rusqlite::types::{ToSqlOutput, ValueRef};
use std::cell::Cell;

/// An in-memory (or file) SQLite database behind the SQL port.
pub struct NativeSql {
    conn: rusqlite::Connection,
    counters: Cell<IoCounters>,
    depth: Cell<u32>,
    statements: Cell<u64>,
}

impl NativeSql {
    /// A fresh in-memory database.
    pub fn in_memory() -> Self {
        Self::wrap(rusqlite::Connection::open_in_memory().expect("open in-memory sqlite"))
    }

    /// A database in a file (benchmarks).
    pub fn open(path: &std::path::Path) -> Result<Self, SqlError> {
        rusqlite::Connection::open(path)
            .map(Self::wrap)
            .map_err(engine)
    }

    fn wrap(conn: rusqlite::Connection) -> Self {
        conn.set_prepared_statement_cache_capacity(256);
        Self {
            conn,
            counters: Cell::new(IoCounters::default()),
            depth: Cell::new(0),
            statements: Cell::new(0),
        }
    }

    /// Statements run so far.
    pub fn statements(&self) -> u64 {
        self.statements.get()
    }
}

fn engine(e: rusqlite::Error) -> SqlError {
    SqlError::Engine(e.to_string())
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Integer(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Real(f) => ToSqlOutput::Borrowed(ValueRef::Real(*f)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

fn read(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            Value::Text(String::from_utf8_lossy(t).into_owned())
        }
    }
}

impl Sql for NativeSql {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, SqlError> {
        self.statements.set(self.statements.get() + 1);
        let changes_before = self.conn.total_changes();
        let mut stmt = self.conn.prepare_cached(sql).map_err(engine)?;
        let columns: std::rc::Rc<[String]> = stmt
            .column_names()
            .iter()
            .map(|c| (*c).to_owned())
            .collect();
        let width = columns.len();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params.iter()))
            .map_err(engine)?;
        let mut values = Vec::new();
        while let Some(row) = rows.next().map_err(engine)? {
            values.push(
                (0..width)
                    .map(|i| row.get_ref(i).map(read))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(engine)?,
            );
        }
        drop(rows);
        let written = self.conn.total_changes().saturating_sub(changes_before);
        let mut c = self.counters.get();
        c.rows_read += values.len() as u64;
        c.rows_written += written;
        self.counters.set(c);
        Ok(Rows { columns, values })
    }

    fn batch(&self, sql: &str) -> Result<(), SqlError> {
        let before = self.conn.total_changes();
        self.conn.execute_batch(sql).map_err(engine)?;
        let mut c = self.counters.get();
        c.rows_written += self.conn.total_changes().saturating_sub(before);
        self.counters.set(c);
        Ok(())
    }

    fn atomic(&self, body: &mut dyn FnMut() -> bool) -> Result<(), SqlError> {
        let depth = self.depth.get();
        let name = format!("atomic_{depth}");
        self.conn
            .execute_batch(&format!("SAVEPOINT {name}"))
            .map_err(engine)?;
        self.depth.set(depth + 1);
        let keep = body();
        self.depth.set(depth);
        let end = if keep {
            format!("RELEASE {name}")
        } else {
            format!("ROLLBACK TO {name}; RELEASE {name}")
        };
        self.conn.execute_batch(&end).map_err(engine)
    }

    fn counters(&self) -> IoCounters {
        self.counters.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::atomically;

    #[test]
    fn atomic_rolls_back_only_a_failing_body() {
        let db = NativeSql::in_memory();
        db.batch("CREATE TABLE t (x INTEGER)").unwrap();
        let kept: Result<(), SqlError> = atomically(&db, || {
            db.execute("INSERT INTO t VALUES (1)", &[])?;
            let inner: Result<(), SqlError> = atomically(&db, || {
                db.execute("INSERT INTO t VALUES (2)", &[])?;
                Err(SqlError::NoRow)
            });
            assert!(inner.is_err());
            Ok(())
        });
        kept.unwrap();
        let dropped: Result<(), SqlError> = atomically(&db, || {
            db.execute("INSERT INTO t VALUES (3)", &[])?;
            Err(SqlError::NoRow)
        });
        assert!(dropped.is_err());
        let rows = db.query("SELECT x FROM t ORDER BY x", &[]).unwrap();
        assert_eq!(rows.values, vec![vec![Value::Integer(1)]]);
    }

    #[test]
    fn counters_count_reads_and_writes() {
        let db = NativeSql::in_memory();
        db.batch("CREATE TABLE t (x INTEGER)").unwrap();
        let before = db.counters();
        assert_eq!(db.execute("INSERT INTO t VALUES (1), (2)", &[]).unwrap(), 2);
        db.query("SELECT x FROM t", &[]).unwrap();
        let after = db.counters();
        assert_eq!(after.rows_written - before.rows_written, 2);
        assert_eq!(after.rows_read - before.rows_read, 2);
    }
}
