//! Function errors. User errors reach clients as `ConvexError` with `errorData {code, message, field?}`;
//! internal errors are logged and reach clients only as `[Request ID: ...] Server Error`.

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
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
pub enum FunctionError {
    /// A failure the caller should see and can act on.
    User {
        code: ErrorCode,
        message: String,
        field: Option<String>,
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

    /// The `errorData` a client receives (`None` for internal errors, which are not ConvexErrors).
    pub fn error_data(&self) -> Option<Value> {
        match self {
            FunctionError::User {
                code,
                message,
                field,
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
                }
            }
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
            StoreError::Internal(detail) => FunctionError::Internal(detail),
        }
    }
}

impl From<values::ValueError> for FunctionError {
    fn from(e: values::ValueError) -> FunctionError {
        FunctionError::user(ErrorCode::Validation, e.to_string())
    }
}
