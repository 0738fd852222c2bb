//! The Convex value model: values, their JSON encodings, document Ids and validators.
//!
//! Pure code with no I/O, so everything here is unit- and property-testable and fuzzable.
//!
//! ```
//! use values::json::{from_encoded_json, to_encoded_json};
//! use values::validator::v;
//! use values::{DocumentId, Value};
//!
//! let args = from_encoded_json(&serde_json::json!({"n": {"$integer": "KgAAAAAAAAA="}, "who": "kim"}))?;
//! assert_eq!(args.get("n"), Some(&Value::Int64(42)));
//! assert_eq!(to_encoded_json(&Value::Float64(f64::NAN)), serde_json::json!({"$float": "AAAAAAAA+H8="}));
//!
//! let validator = v::object([("n", v::int64().into()), ("who", v::string().into()), ("note", v::optional(v::string()))]);
//! let tables = |_: &str| None;
//! validator.check(&args, &tables).unwrap();
//!
//! let id: DocumentId = "j570pc2nfafw9t8e6dc7v8p7xg8kdsw0".parse()?;
//! assert_eq!(id.to_string().len(), 32);
//! # Ok::<(), values::ValueError>(())
//! ```

// `#[derive(Typed)]` names `::values`, inside this crate too.
extern crate self as values;

mod document;
pub mod id;
pub mod json;
mod path;
pub mod serde_bridge;
pub mod stored;
#[cfg(any(test, feature = "proptest"))]
pub mod strategy;
pub mod typed;
pub mod validator;
mod value;

pub use document::check_document;
pub use id::DocumentId;
pub use json::Format;
pub use typed::{Id, Nullable, Table, Typed};
pub use validator::{FieldValidator, TableNumbers, ValidationError, Validator};
pub use value::{Object, Value, ValueError};

/// Largest document the store accepts, in bytes of its encoded form.
pub const MAX_DOCUMENT_SIZE: usize = 1 << 20;
/// Deepest nesting of objects and arrays allowed inside a stored document.
pub const MAX_DOCUMENT_NESTING: usize = 16;
/// Deepest nesting allowed in function arguments and results.
pub const MAX_VALUE_NESTING: usize = 64;
/// Longest field name.
pub const MAX_FIELD_NAME_LEN: usize = 1024;
