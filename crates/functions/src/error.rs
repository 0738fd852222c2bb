//! Function errors. User errors reach clients as `ConvexError` with `errorData {code, message, field?}`
//! (or, for functions declared so, the message string as data); errors of the platform itself
//! (unknown function, bad arguments, values over the limits) as plain errors without data, as Convex
//! sends them; internal errors are logged and reach clients only as `[Request ID: ...] Server Error`.

use std::fmt;

use store::StoreError;
use values::{Object, Value};

/// Stable error codes clients can branch on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    Unauthenticated,
    Forbidden,
    NotFound,
    Validation,
    Conflict,
    RateLimited,
    Unavailable,
    Timeout,
    /// The database has no room for writes (disk full).
    StorageFull,
    /// The database takes no writes (read-only file, mount or server).
    ReadOnly,
    /// A write's connection was lost during its commit and whether it was applied is unknown.
    CommitUnknown,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Validation => "VALIDATION",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::StorageFull => "STORAGE_FULL",
            ErrorCode::ReadOnly => "READ_ONLY",
            ErrorCode::CommitUnknown => "COMMIT_UNKNOWN",
        }
    }

    /// Every code, for parsing one back from its name.
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Validation,
        ErrorCode::Conflict,
        ErrorCode::RateLimited,
        ErrorCode::Unavailable,
        ErrorCode::Timeout,
        ErrorCode::StorageFull,
        ErrorCode::ReadOnly,
        ErrorCode::CommitUnknown,
    ];
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a user error travels to the client. The code stays on the server side in every shape (logs,
/// replays, Rust callers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ErrorShape {
    /// A ConvexError with data `{code, message, field?}`.
    #[default]
    Object,
    /// A ConvexError whose data is the message string, for clients that read `error.data` as text
    /// (see `FunctionSpec::message_error_data`).
    Message,
    /// A plain error: the message and no data, so the client throws a plain `Error`. What Convex
    /// sends when the platform rather than the function refuses a call: unknown function, wrong
    /// kind, `ArgumentValidationError`, values over the size or nesting limits.
    Plain,
}

impl ErrorShape {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorShape::Object => "object",
            ErrorShape::Message => "message",
            ErrorShape::Plain => "plain",
        }
    }

    pub fn parse(name: &str) -> Option<ErrorShape> {
        [ErrorShape::Object, ErrorShape::Message, ErrorShape::Plain]
            .into_iter()
            .find(|shape| shape.as_str() == name)
    }
}

#[derive(Debug, Clone)]
pub enum FunctionError {
    /// A failure the caller should see and can act on.
    User {
        code: ErrorCode,
        message: String,
        field: Option<String>,
        shape: ErrorShape,
    },
    /// A bug or an unexpected condition: the details go to the log only.
    Internal(String),
}

impl FunctionError {
    pub fn user(code: ErrorCode, message: impl Into<String>) -> FunctionError {
        FunctionError::User {
            code,
            message: message.into(),
            field: None,
            shape: ErrorShape::Object,
        }
    }
    /// An error of the platform rather than of a function's logic, sent without data (see
    /// `ErrorShape::Plain`).
    pub fn plain(code: ErrorCode, message: impl Into<String>) -> FunctionError {
        FunctionError::User {
            code,
            message: message.into(),
            field: None,
            shape: ErrorShape::Plain,
        }
    }
    pub fn field(
        code: ErrorCode,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> FunctionError {
        FunctionError::User {
            code,
            message: message.into(),
            field: Some(field.into()),
            shape: ErrorShape::Object,
        }
    }
    pub fn not_found(message: impl Into<String>) -> FunctionError {
        FunctionError::user(ErrorCode::NotFound, message)
    }
    pub fn forbidden(message: impl Into<String>) -> FunctionError {
        FunctionError::user(ErrorCode::Forbidden, message)
    }
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> FunctionError {
        FunctionError::field(ErrorCode::Validation, field, message)
    }
    pub fn internal(message: impl Into<String>) -> FunctionError {
        FunctionError::Internal(message.into())
    }

    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            FunctionError::User { code, .. } => Some(*code),
            FunctionError::Internal(_) => None,
        }
    }

    /// The error as a function declared with `shape` sends it: user errors of the default shape
    /// take it on; plain and internal errors stay as they are.
    pub fn shaped(self, shape: ErrorShape) -> FunctionError {
        match self {
            FunctionError::User {
                code,
                message,
                field,
                shape: ErrorShape::Object,
            } => FunctionError::User {
                code,
                message,
                field,
                shape,
            },
            other => other,
        }
    }

    /// The `errorData` a client receives (`None` for plain and internal errors, which are not
    /// ConvexErrors).
    pub fn error_data(&self) -> Option<Value> {
        match self {
            FunctionError::User {
                message,
                shape: ErrorShape::Message,
                ..
            } => Some(Value::from(message.as_str())),
            FunctionError::User {
                shape: ErrorShape::Plain,
                ..
            } => None,
            FunctionError::User {
                code,
                message,
                field,
                shape: ErrorShape::Object,
            } => {
                let mut data = Object::new();
                data.insert("code".into(), Value::from(code.as_str()));
                data.insert("message".into(), Value::from(message.as_str()));
                if let Some(field) = field {
                    data.insert("field".into(), Value::from(field.as_str()));
                }
                Some(Value::Object(data))
            }
            FunctionError::Internal(_) => None,
        }
    }

    /// The `errorMessage` a client receives. Internal details never leave the server.
    pub fn client_message(&self, request_id: &str) -> String {
        match self {
            FunctionError::User { message, .. } => message.clone(),
            FunctionError::Internal(_) => format!("[Request ID: {request_id}] Server Error"),
        }
    }
}

impl fmt::Display for FunctionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FunctionError::User { code, message, .. } => write!(f, "{code}: {message}"),
            FunctionError::Internal(message) => write!(f, "internal error: {message}"),
        }
    }
}

impl std::error::Error for FunctionError {}

impl From<StoreError> for FunctionError {
    fn from(e: StoreError) -> FunctionError {
        match e {
            StoreError::Validation { path, message } => {
                let field = path.trim_start_matches('.').to_string();
                FunctionError::User {
                    code: ErrorCode::Validation,
                    message,
                    field: (!field.is_empty()).then_some(field),
                    shape: ErrorShape::Object,
                }
            }
            StoreError::Limit(message) => FunctionError::plain(ErrorCode::Validation, message),
            StoreError::Invalid(message) => FunctionError::user(ErrorCode::Validation, message),
            StoreError::NotFound(message) => FunctionError::user(
                ErrorCode::NotFound,
                format!("Document not found: {message}"),
            ),
            StoreError::Conflict => FunctionError::user(
                ErrorCode::Conflict,
                "The operation conflicted with concurrent changes; try again",
            ),
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "database unavailable");
                FunctionError::user(
                    ErrorCode::Unavailable,
                    "The database is unavailable; try again shortly",
                )
            }
            StoreError::StorageFull(detail) => {
                tracing::error!(%detail, "database storage full");
                FunctionError::user(
                    ErrorCode::StorageFull,
                    "The database is out of storage space; nothing was written",
                )
            }
            StoreError::ReadOnly(detail) => {
                tracing::error!(%detail, "database read-only");
                FunctionError::user(
                    ErrorCode::ReadOnly,
                    "The database is read-only; nothing was written",
                )
            }
            StoreError::CommitUnknown(detail) => {
                tracing::error!(%detail, "commit outcome unknown");
                FunctionError::user(
                    ErrorCode::CommitUnknown,
                    "The database connection was lost while this write was being committed; \
                     whether it was applied is unknown. Check before repeating it",
                )
            }
            StoreError::Internal(detail) => FunctionError::Internal(detail),
        }
    }
}

impl From<values::ValueError> for FunctionError {
    fn from(e: values::ValueError) -> FunctionError {
        match e {
            // Limits of the platform, not rules of the function: plain errors, as in Convex.
            values::ValueError::TooDeep { .. } | values::ValueError::TooLarge { .. } => {
                FunctionError::plain(ErrorCode::Validation, e.to_string())
            }
            _ => FunctionError::user(ErrorCode::Validation, e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_shape_sends_its_own_data() {
        let object = FunctionError::validation("email", "Invalid email format");
        let mut expected = Object::new();
        expected.insert("code".into(), Value::from("VALIDATION"));
        expected.insert("message".into(), Value::from("Invalid email format"));
        expected.insert("field".into(), Value::from("email"));
        assert_eq!(object.error_data(), Some(Value::Object(expected)));

        let message = object.clone().shaped(ErrorShape::Message);
        assert_eq!(
            message.error_data(),
            Some(Value::from("Invalid email format"))
        );
        assert_eq!(message.code(), Some(ErrorCode::Validation), "kept inside");
        assert_eq!(message.client_message("r1"), "Invalid email format");

        let plain = FunctionError::plain(ErrorCode::NotFound, "Could not find public function");
        assert_eq!(plain.error_data(), None);
        assert_eq!(plain.client_message("r1"), "Could not find public function");
        // A function's shape never turns the platform's refusals into ConvexErrors.
        assert_eq!(plain.shaped(ErrorShape::Message).error_data(), None);
        let internal = FunctionError::internal("secret").shaped(ErrorShape::Message);
        assert_eq!(internal.error_data(), None);
        assert_eq!(
            internal.client_message("r1"),
            "[Request ID: r1] Server Error"
        );
    }

    #[test]
    fn limits_are_plain_and_rule_breaks_are_not() {
        let too_deep = FunctionError::from(values::ValueError::TooDeep { max: 64 });
        assert_eq!(too_deep.error_data(), None);
        let too_large = FunctionError::from(StoreError::Limit("Document is too large".into()));
        assert_eq!(too_large.error_data(), None);
        assert_eq!(too_large.code(), Some(ErrorCode::Validation));
        let schema = FunctionError::from(StoreError::Validation {
            path: ".body".into(),
            message: "does not match the schema".into(),
        });
        assert!(schema.error_data().is_some());
    }
}
