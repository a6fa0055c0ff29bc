//! The Durable Object adapter of the SQL port.
//!
//! Every call into JavaScript costs more than most statements' SQLite work, so a statement makes
//! few: its parameters go in one array, its rows come back in one array of arrays (`toArray` of
//! the raw cursor), a value is probed as text first (most columns are), and the column names of
//! each statement text are read once and kept.
//!
//! Atomic units use `storage.transactionSync()` (the DO's SQL refuses `BEGIN` and `SAVEPOINT`):
//! the body runs synchronously inside it, and a `false` from the body throws out of the callback
//! so the platform rolls its writes back.

use crate::sql::{IoCounters, Rows, Sql, SqlError, Value};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use worker::js_sys::{Array, ArrayBuffer, Function, Reflect, Uint8Array};
use worker::wasm_bindgen::closure::Closure;
use worker::wasm_bindgen::{self, prelude::wasm_bindgen, JsCast, JsValue};
use worker::worker_sys::{SqlStorage, SqlStorageCursor};
use worker::Storage;

const ROLLBACK: &str = "gastown:rollback";

/// At most this many statement texts keep their column names (the code has a few hundred; a
/// multi-row `INSERT ... VALUES` makes one text per row count).
const COLUMN_CACHE: usize = 1024;

/// The largest integer a JavaScript number holds exactly (2^53 - 1).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

#[wasm_bindgen]
extern "C" {
    /// The iterator `cursor.raw()` answers: rows as arrays of values.
    type RawCursor;

    /// Every remaining row, each an array of values in column order.
    #[wasm_bindgen(method, js_name = toArray)]
    fn to_array(this: &RawCursor) -> Array;
}

pub struct DoSql {
    sql: SqlStorage,
    storage: JsValue,
    counters: Cell<IoCounters>,
    columns: RefCell<HashMap<String, Rc<[String]>>>,
}

impl DoSql {
    pub fn new(storage: &Storage) -> Self {
        Self {
            sql: storage.sql().as_ref().clone().unchecked_into(),
            storage: JsValue::from(storage.as_raw()),
            counters: Cell::new(IoCounters::default()),
            columns: RefCell::new(HashMap::new()),
        }
    }

    /// The column names of `sql`, read from its first cursor.
    fn columns(&self, sql: &str, cursor: &SqlStorageCursor) -> Rc<[String]> {
        if let Some(known) = self.columns.borrow().get(sql) {
            return known.clone();
        }
        let names: Rc<[String]> = cursor
            .column_names()
            .iter()
            .map(|n| n.as_string().unwrap_or_default())
            .collect();
        let mut cache = self.columns.borrow_mut();
        if cache.len() >= COLUMN_CACHE {
            cache.clear();
        }
        cache.insert(sql.to_owned(), names.clone());
        names
    }
}

fn engine(e: impl std::fmt::Debug) -> SqlError {
    SqlError::Engine(format!("{e:?}"))
}

fn bind(v: &Value) -> JsValue {
    match v {
        Value::Null => JsValue::NULL,
        Value::Integer(i) => JsValue::from_f64(*i as f64),
        Value::Real(f) => JsValue::from_f64(*f),
        Value::Text(s) => JsValue::from_str(s),
    }
}

/// One value of a row: SQLite hands over text, numbers (a whole number within JavaScript's exact
/// range is an integer, as the platform's own conversion has it), null, or a blob (never
/// written here; read as lossy UTF-8).
fn read(v: JsValue) -> Value {
    if let Some(s) = v.as_string() {
        return Value::Text(s);
    }
    if v.is_null() || v.is_undefined() {
        return Value::Null;
    }
    if let Some(f) = v.as_f64() {
        return if f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER {
            Value::Integer(f as i64)
        } else {
            Value::Real(f)
        };
    }
    let bytes = match v.dyn_ref::<ArrayBuffer>() {
        Some(buffer) => Some(Uint8Array::new(buffer).to_vec()),
        None => v.dyn_ref::<Uint8Array>().map(Uint8Array::to_vec),
    };
    match bytes {
        Some(bytes) => Value::Text(String::from_utf8_lossy(&bytes).into_owned()),
        None => Value::Integer(i64::from(v.as_bool().unwrap_or(false))),
    }
}

impl Sql for DoSql {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, SqlError> {
        let bindings = Array::new_with_length(params.len() as u32);
        for (i, v) in params.iter().enumerate() {
            bindings.set(i as u32, bind(v));
        }
        let cursor = self.sql.exec(sql, bindings).map_err(engine)?;
        let columns = self.columns(sql, &cursor);
        let rows = cursor.raw().unchecked_into::<RawCursor>().to_array();
        let values = rows
            .iter()
            .map(|row| {
                let row: Array = row.unchecked_into();
                (0..columns.len() as u32)
                    .map(|i| read(row.get(i)))
                    .collect()
            })
            .collect();
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
