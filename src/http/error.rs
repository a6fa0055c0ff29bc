//! The error contract of API.md: `{"error": {"code", "message"}}` for people and operators,
//! `{"success": false, "error", "code"}` (the original's envelope) for the container.

use super::routes::Shape;
use super::Response;
use serde_json::json;

/// A refused request; the variant decides the status, `code` and `message` are for the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400: malformed JSON.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(400, "malformed_json", message)
    }

    /// 400: a field is missing or wrong; the message names it.
    pub fn invalid(field: &str, message: impl std::fmt::Display) -> Self {
        Self::new(400, "invalid_field", format!("{field}: {message}"))
    }

    /// 400: an id in the path is not 1-128 characters of `[A-Za-z0-9._:-]`.
    pub fn bad_id(what: &str) -> Self {
        Self::new(
            400,
            "invalid_id",
            format!("{what} must be 1-128 characters of A-Z a-z 0-9 . _ : -"),
        )
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "forbidden", message)
    }

    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(404, "not_found", format!("{what} not found"))
    }

    /// 404 for a path no route serves, in the original's words (`Not found`).
    pub fn no_route() -> Self {
        Self::new(404, "not_found", "Not found")
    }

    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            405,
            "method_not_allowed",
            format!("{method} is not allowed on {path}"),
        )
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, "conflict", message)
    }

    pub fn too_large() -> Self {
        Self::new(413, "body_too_large", "the body is larger than 256 KiB")
    }

    pub fn not_json() -> Self {
        Self::new(
            415,
            "unsupported_media_type",
            "the body must be application/json",
        )
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(422, code, message)
    }

    /// 503: a secret the route needs is not configured.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "unavailable", message)
    }

    /// 500: our fault, never the caller's input.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "internal", message)
    }

    /// The people answer.
    pub fn response(&self) -> Response {
        Response::json(
            self.status,
            &json!({"error": {"code": self.code, "message": self.message}}),
        )
    }

    /// The answer in `shape`.
    pub fn response_in(&self, shape: Shape) -> Response {
        match shape {
            Shape::People => self.response(),
            Shape::Envelope => Response::json(
                self.status,
                &json!({"success": false, "error": self.message, "code": self.code}),
            ),
        }
    }
}

impl From<crate::sql::SqlError> for ApiError {
    fn from(e: crate::sql::SqlError) -> Self {
        crate::log::error("sql_error", &[("error", &e.to_string())]);
        ApiError::internal("storage error")
    }
}
