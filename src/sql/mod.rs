//! The SQL port: the one way the town reads and writes its state.
//!
//! Two adapters run the very same SQL text: the Durable Object's SQLite (`runtime::sql`, Wasm
//! only) and `rusqlite` ([`native::NativeSql`], host only). Rows come back as column names plus
//! [`Value`]s; typed access goes through [`Row`], which is lenient where the JavaScript bridge is
//! lossy (an integral REAL arrives as an integer, booleans as 0/1).

#[cfg(not(target_arch = "wasm32"))]
pub mod native;

use std::fmt;

/// A value bound to a `?` placeholder or read from a column.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Integer(v)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Integer(i64::from(v))
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Integer(i64::from(v))
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Builds a parameter list: `params![a, b, c]`.
#[macro_export]
macro_rules! params {
    () => { [] as [$crate::sql::Value; 0] };
    ($($v:expr),+ $(,)?) => { [$($crate::sql::Value::from($v)),+] };
}

/// Ids bound as one parameter, a JSON array, for `IN (SELECT value FROM json_each(?))`: one
/// statement over a list of any length.
pub fn id_list<S: AsRef<str>>(ids: &[S]) -> Value {
    let ids: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
    Value::Text(serde_json::to_string(&ids).expect("strings serialize"))
}

/// Pairs of ids bound as one parameter, a JSON array of `[a, b]` arrays, for statements that
/// join `json_each(?)` and read `value ->> 0` and `value ->> 1` (an UPDATE of many rows, each
/// with its own value, in one statement).
pub fn id_pairs(pairs: &[(&str, &str)]) -> Value {
    let pairs: Vec<[&str; 2]> = pairs.iter().map(|&(a, b)| [a, b]).collect();
    Value::Text(serde_json::to_string(&pairs).expect("strings serialize"))
}

/// What went wrong talking to SQL.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlError {
    /// The engine refused the statement.
    Engine(String),
    /// A column was missing or held a value of the wrong type.
    Decode {
        column: String,
        wanted: &'static str,
    },
    /// A query that must return one row returned none.
    NoRow,
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlError::Engine(m) => write!(f, "sql: {m}"),
            SqlError::Decode { column, wanted } => {
                write!(f, "sql: column {column}: wanted {wanted}")
            }
            SqlError::NoRow => write!(f, "sql: no row"),
        }
    }
}

impl std::error::Error for SqlError {}

/// Rows read and written, as counted by the engine (the DO cursor's counters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoCounters {
    pub rows_read: u64,
    pub rows_written: u64,
}

/// The SQL port.
pub trait Sql {
    /// Runs one statement with positional `?` bindings and returns every row it yields.
    fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, SqlError>;

    /// Runs a script of several statements with no bindings (schema migrations).
    fn batch(&self, sql: &str) -> Result<(), SqlError>;

    /// Runs `body` so that all of its writes commit together or, when it returns `false`,
    /// none do. Nested calls nest.
    fn atomic(&self, body: &mut dyn FnMut() -> bool) -> Result<(), SqlError>;

    /// Rows read and written since this adapter was made.
    fn counters(&self) -> IoCounters;

    /// Runs a statement for its effect and returns how many rows it wrote.
    fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, SqlError> {
        let before = self.counters().rows_written;
        self.query(sql, params)?;
        Ok(self.counters().rows_written - before)
    }

    /// The first row, if any.
    fn first(&self, sql: &str, params: &[Value]) -> Result<Option<Row>, SqlError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// Exactly one row.
    fn one(&self, sql: &str, params: &[Value]) -> Result<Row, SqlError> {
        self.first(sql, params)?.ok_or(SqlError::NoRow)
    }
}

/// Runs `f` atomically: when it returns `Err`, every write it made is rolled back.
pub fn atomically<S, T, E>(sql: &S, f: impl FnOnce() -> Result<T, E>) -> Result<T, E>
where
    S: Sql + ?Sized,
    E: From<SqlError>,
{
    let mut f = Some(f);
    let mut out: Option<Result<T, E>> = None;
    sql.atomic(&mut || {
        let result = (f.take().expect("atomic body runs once"))();
        let ok = result.is_ok();
        out = Some(result);
        ok
    })?;
    out.expect("atomic body ran")
}

/// The rows of one statement.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    pub columns: std::rc::Rc<[String]>,
    pub values: Vec<Vec<Value>>,
}

impl Rows {
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl IntoIterator for Rows {
    type Item = Row;
    type IntoIter = std::vec::IntoIter<Row>;

    fn into_iter(self) -> Self::IntoIter {
        let columns = self.columns;
        self.values
            .into_iter()
            .map(|values| Row {
                columns: columns.clone(),
                values,
            })
            .collect::<Vec<_>>()
            .into_iter()
    }
}

/// One row with typed, name-based access.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    columns: std::rc::Rc<[String]>,
    values: Vec<Value>,
}

impl Row {
    fn get(&self, column: &str) -> Result<&Value, SqlError> {
        self.columns
            .iter()
            .position(|c| c == column)
            .map(|i| &self.values[i])
            .ok_or_else(|| SqlError::Decode {
                column: column.to_owned(),
                wanted: "a column of that name",
            })
    }

    fn wrong(column: &str, wanted: &'static str) -> SqlError {
        SqlError::Decode {
            column: column.to_owned(),
            wanted,
        }
    }

    pub fn opt_text(&self, column: &str) -> Result<Option<String>, SqlError> {
        match self.get(column)? {
            Value::Null => Ok(None),
            Value::Text(s) => Ok(Some(s.clone())),
            _ => Err(Self::wrong(column, "text")),
        }
    }

    pub fn text(&self, column: &str) -> Result<String, SqlError> {
        self.opt_text(column)?
            .ok_or_else(|| Self::wrong(column, "non-null text"))
    }

    pub fn opt_int(&self, column: &str) -> Result<Option<i64>, SqlError> {
        match self.get(column)? {
            Value::Null => Ok(None),
            Value::Integer(i) => Ok(Some(*i)),
            Value::Real(f) if f.fract() == 0.0 => Ok(Some(*f as i64)),
            _ => Err(Self::wrong(column, "integer")),
        }
    }

    pub fn int(&self, column: &str) -> Result<i64, SqlError> {
        self.opt_int(column)?
            .ok_or_else(|| Self::wrong(column, "non-null integer"))
    }

    pub fn real(&self, column: &str) -> Result<f64, SqlError> {
        match self.get(column)? {
            Value::Integer(i) => Ok(*i as f64),
            Value::Real(f) => Ok(*f),
            _ => Err(Self::wrong(column, "number")),
        }
    }

    pub fn bool(&self, column: &str) -> Result<bool, SqlError> {
        Ok(self.opt_int(column)?.unwrap_or(0) != 0)
    }

    /// The row as a JSON object (debug dumps).
    pub fn to_json(&self) -> serde_json::Value {
        let map = self
            .columns
            .iter()
            .zip(&self.values)
            .map(|(c, v)| {
                let v = match v {
                    Value::Null => serde_json::Value::Null,
                    Value::Integer(i) => (*i).into(),
                    Value::Real(f) => serde_json::Number::from_f64(*f)
                        .map_or(serde_json::Value::Null, serde_json::Value::Number),
                    Value::Text(s) => s.clone().into(),
                };
                (c.clone(), v)
            })
            .collect();
        serde_json::Value::Object(map)
    }
}
