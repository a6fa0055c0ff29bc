//! Why a domain operation refused or failed. Each variant maps to one HTTP status: `NotFound`
//! 404, `Conflict` 409, `Invalid` 400, `Cycle` 422, `Sql` 500.

use crate::sql::SqlError;
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum DomainError {
    /// The entity `what` with this id does not exist.
    NotFound {
        what: &'static str,
        id: String,
    },
    /// The request contradicts the entity's current state or a rule of the domain.
    Conflict(String),
    /// An input field is missing or out of range.
    Invalid {
        field: String,
        message: String,
    },
    /// The dependencies would form a cycle.
    Cycle(String),
    Sql(SqlError),
}

impl DomainError {
    pub fn not_found(what: &'static str, id: &str) -> Self {
        DomainError::NotFound {
            what,
            id: id.to_owned(),
        }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        DomainError::Conflict(message.into())
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        DomainError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Whether this is a `NotFound`.
    pub fn is_not_found(&self) -> bool {
        matches!(self, DomainError::NotFound { .. })
    }
}

impl fmt::Display for DomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainError::NotFound { what, id } => write!(f, "{what} {id} not found"),
            DomainError::Conflict(m) => f.write_str(m),
            DomainError::Invalid { field, message } => write!(f, "{field}: {message}"),
            DomainError::Cycle(m) => write!(f, "dependency cycle: {m}"),
            DomainError::Sql(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for DomainError {}

impl From<SqlError> for DomainError {
    fn from(e: SqlError) -> Self {
        DomainError::Sql(e)
    }
}

/// The result of a domain operation.
pub type Result<T> = std::result::Result<T, DomainError>;
