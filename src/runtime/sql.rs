//! The Durable Object adapter of the SQL port.
//!
//! Atomic units use `storage.transactionSync()` (the DO's SQL refuses `BEGIN` and `SAVEPOINT`):
//! the body runs synchronously inside it, and a `false` from the body throws out of the callback
//! so the platform rolls its writes back.

use crate::sql::{IoCounters, Rows, Sql, SqlError, Value};
use std::cell::Cell;
use worker::js_sys::{Function, Reflect};
use worker::wasm_bindgen::closure::Closure;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::{SqlStorage, SqlStorageValue, Storage};

const ROLLBACK: &str = "gastown:rollback";

pub struct DoSql {
    sql: SqlStorage,
    storage: JsValue,
    counters: Cell<IoCounters>,
}

impl DoSql {
    pub fn new(storage: &Storage) -> Self {
        Self {
            sql: storage.sql(),
            storage: JsValue::from(storage.as_raw()),
            counters: Cell::new(IoCounters::default()),
        }
    }
}

fn engine(e: impl std::fmt::Debug) -> SqlError {
    SqlError::Engine(format!("{e:?}"))
}

fn bind(v: &Value) -> SqlStorageValue {
    match v {
        Value::Null => SqlStorageValue::Null,
        Value::Integer(i) => SqlStorageValue::Integer(*i),
        Value::Real(f) => SqlStorageValue::Float(*f),
        Value::Text(s) => SqlStorageValue::String(s.clone()),
    }
}

fn read(v: SqlStorageValue) -> Value {
    match v {
        SqlStorageValue::Null => Value::Null,
        SqlStorageValue::Boolean(b) => Value::Integer(i64::from(b)),
        SqlStorageValue::Integer(i) => Value::Integer(i),
        SqlStorageValue::Float(f) => Value::Real(f),
        SqlStorageValue::String(s) => Value::Text(s),
        SqlStorageValue::Blob(b) => Value::Text(String::from_utf8_lossy(&b).into_owned()),
    }
}

impl Sql for DoSql {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, SqlError> {
        let cursor = self
            .sql
            .exec(sql, params.iter().map(bind).collect::<Vec<_>>())
            .map_err(engine)?;
        let columns: std::rc::Rc<[String]> = cursor.column_names().into();
        let values = cursor
            .raw()
            .map(|row| row.map(|r| r.into_iter().map(read).collect()))
            .collect::<Result<Vec<Vec<Value>>, _>>()
            .map_err(engine)?;
        let mut c = self.counters.get();
        c.rows_read += cursor.rows_read() as u64;
        c.rows_written += cursor.rows_written() as u64;
        self.counters.set(c);
        Ok(Rows { columns, values })
    }

    fn batch(&self, sql: &str) -> Result<(), SqlError> {
        self.query(sql, &[]).map(|_| ())
    }

    fn atomic(&self, body: &mut dyn FnMut() -> bool) -> Result<(), SqlError> {
        let rolled_back = Cell::new(false);
        let mut run = || -> Result<JsValue, JsValue> {
            if body() {
                Ok(JsValue::UNDEFINED)
            } else {
                rolled_back.set(true);
                Err(JsValue::from_str(ROLLBACK))
            }
        };
        let run: &mut dyn FnMut() -> Result<JsValue, JsValue> = &mut run;
        // SAFETY: transactionSync calls the callback synchronously, before it returns, and keeps
        // no reference to it; the closure is dropped below while `run` is still alive.
        let run: &'static mut dyn FnMut() -> Result<JsValue, JsValue> =
            unsafe { std::mem::transmute(run) };
        // A panic in the body (built with panic=unwind) becomes a JavaScript exception: the
        // platform rolls the unit back and the caller gets an error instead of a dead instance.
        let callback = Closure::wrap_assert_unwind_safe(
            Box::new(run) as Box<dyn FnMut() -> Result<JsValue, JsValue>>
        );
        let transaction_sync: Function =
            Reflect::get(&self.storage, &JsValue::from_str("transactionSync"))
                .map_err(engine)?
                .dyn_into()
                .map_err(|_| SqlError::Engine("storage.transactionSync is not available".into()))?;
        let result = transaction_sync.call1(&self.storage, callback.as_ref());
        drop(callback);
        match result {
            Ok(_) => Ok(()),
            Err(_) if rolled_back.get() => Ok(()),
            Err(e) => Err(engine(e)),
        }
    }

    fn counters(&self) -> IoCounters {
        self.counters.get()
    }
}
