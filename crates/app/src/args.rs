//! Small helpers for reading validated arguments and building results.

use values::validator::v;
use values::{FieldValidator, Object, Validator, Value};

/// An args validator that also accepts the optional `sessionToken` the web client adds to every
/// call (refusing it was a defect of the reference system).
pub fn with_session<const N: usize>(fields: [(&str, FieldValidator); N]) -> Validator {
    let mut all: Vec<(&str, FieldValidator)> = fields.into_iter().collect();
    all.push(("sessionToken", v::optional(v::string())));
    v::object(all)
}

pub fn text<'a>(args: &'a Object, name: &str) -> &'a str {
    args.get(name).and_then(Value::as_str).unwrap_or_default()
}

pub fn opt_text<'a>(args: &'a Object, name: &str) -> Option<&'a str> {
    args.get(name).and_then(Value::as_str)
}

pub fn flag(args: &Object, name: &str) -> bool {
    args.get(name).and_then(Value::as_bool).unwrap_or(false)
}

/// An object value from `(name, value)` pairs, leaving out `None`s (absent fields, as Convex omits
/// `undefined`).
pub fn object<const N: usize>(fields: [(&str, Option<Value>); N]) -> Value {
    Value::Object(
        fields
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect(),
    )
}

/// A document as exported, less `secret` fields (password and token hashes never leave the server).
pub fn exported(doc: &store::Document, secret: &[&str]) -> Value {
    let mut value = doc.to_value();
    if let Value::Object(fields) = &mut value {
        for name in secret {
            fields.remove(*name);
        }
    }
    value
}
