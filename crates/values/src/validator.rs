//! Validators: the `v.*` family, their JSON form (protocol §D), and checking a value against one.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::path::{render, Segment};
use crate::{DocumentId, Value};

mod wire;

#[derive(Clone, Debug, PartialEq)]
pub enum Validator {
    Any,
    Null,
    /// `v.number()` / `v.float64()`
    Float64,
    /// `v.int64()` / `v.bigint()`
    Int64,
    Boolean,
    String,
    Bytes,
    /// `v.id("table")`
    Id(String),
    Literal(Value),
    Array(Box<Validator>),
    Object(BTreeMap<String, FieldValidator>),
    Union(Vec<Validator>),
    /// `v.record(keys, values)`
    Record(Box<Validator>, Box<Validator>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct FieldValidator {
    pub validator: Validator,
    pub optional: bool,
}

/// A failed check. `path` names the failing field (`.a.b[3]`, empty at the top level).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ValidationError {
    pub path: String,
    pub message: String,
}

/// Tells a validator which table number an Id's table name has, so `v.id("t")` can check the Id
/// really is one of table `t`.
pub trait TableNumbers {
    fn table_number(&self, table: &str) -> Option<u32>;
}

/// Any `|name| Some(number)` closure can answer table lookups.
impl<F: Fn(&str) -> Option<u32>> TableNumbers for F {
    fn table_number(&self, table: &str) -> Option<u32> {
        self(table)
    }
}

impl TableNumbers for BTreeMap<String, u32> {
    fn table_number(&self, table: &str) -> Option<u32> {
        self.get(table).copied()
    }
}

impl TableNumbers for HashMap<String, u32> {
    fn table_number(&self, table: &str) -> Option<u32> {
        self.get(table).copied()
    }
}

/// Values and validators in messages are cut at this many characters so a huge argument cannot
/// make a huge error.
const MAX_SHOWN: usize = 200;

impl Validator {
    /// Checks `value`. Messages name the path and what was expected, e.g.
    /// `Value does not match validator. Path: .email. Value: 12. Validator: v.string()`.
    pub fn check(&self, value: &Value, tables: &dyn TableNumbers) -> Result<(), ValidationError> {
        let mut path = Vec::new();
        self.check_at(value, tables, &mut path)
    }
    /// The JSON form Convex uses (`{"type":"string"}`, `{"type":"id","tableName":"t"}`, ...).
    pub fn to_json(&self) -> serde_json::Value {
        wire::to_json(self)
    }
    pub fn from_json(json: &serde_json::Value) -> Result<Validator, String> {
        wire::from_json(json)
    }

    fn check_at<'a>(
        &self,
        value: &'a Value,
        tables: &dyn TableNumbers,
        path: &mut Vec<Segment<'a>>,
    ) -> Result<(), ValidationError> {
        let matches = match (self, value) {
            (Validator::Any, _)
            | (Validator::Null, Value::Null)
            | (Validator::Float64, Value::Float64(_))
            | (Validator::Int64, Value::Int64(_))
            | (Validator::Boolean, Value::Boolean(_))
            | (Validator::String, Value::String(_))
            | (Validator::Bytes, Value::Bytes(_)) => true,
            (Validator::Literal(expected), _) => expected == value,
            (Validator::Id(table), Value::String(s)) => {
                return check_id(table, s, tables, value, self, path)
            }
            (Validator::Array(element), Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(Segment::Index(i));
                    element.check_at(item, tables, path)?;
                    path.pop();
                }
                true
            }
            (Validator::Object(fields), Value::Object(object)) => {
                return self.check_object(fields, object, value, tables, path)
            }
            (Validator::Union(members), _) => {
                // A failed member returns early with segments still pushed; cut them off again.
                let depth = path.len();
                members.iter().any(|member| {
                    let ok = member.check_at(value, tables, path).is_ok();
                    path.truncate(depth);
                    ok
                })
            }
            (Validator::Record(keys, values), Value::Object(object)) => {
                for (name, item) in object {
                    path.push(Segment::Field(name));
                    let key = Value::String(name.clone());
                    if keys.check_at(&key, tables, &mut Vec::new()).is_err() {
                        let details = format!("Key: {}. Validator: {}", shown(&key), shown(keys));
                        return Err(failure(
                            path,
                            "Record key does not match validator",
                            Some(details),
                        ));
                    }
                    values.check_at(item, tables, path)?;
                    path.pop();
                }
                true
            }
            _ => false,
        };
        if matches {
            Ok(())
        } else {
            Err(mismatch(path, value, self))
        }
    }

    fn check_object<'a>(
        &self,
        fields: &BTreeMap<String, FieldValidator>,
        object: &'a crate::Object,
        value: &Value,
        tables: &dyn TableNumbers,
        path: &mut Vec<Segment<'a>>,
    ) -> Result<(), ValidationError> {
        let context = |path: &[Segment<'_>]| {
            let at = render(path);
            let at = if at.is_empty() {
                String::new()
            } else {
                format!(" Path: {at}.")
            };
            format!("{at} Object: {}. Validator: {}", shown(value), shown(self))
        };
        for (name, field) in fields {
            match object.get_key_value(name) {
                Some((name, item)) => {
                    path.push(Segment::Field(name));
                    field.validator.check_at(item, tables, path)?;
                    path.pop();
                }
                None if field.optional => {}
                None => {
                    let message = format!(
                        "Object is missing the required field `{name}`. Consider wrapping the field \
                         validator in `v.optional(...)` if this is expected.{}",
                        context(path)
                    );
                    return Err(ValidationError {
                        path: format!("{}.{name}", render(path)),
                        message,
                    });
                }
            }
        }
        if let Some(extra) = object.keys().find(|name| !fields.contains_key(*name)) {
            let message = format!(
                "Object contains extra field `{extra}` that is not in the validator.{}",
                context(path)
            );
            return Err(ValidationError {
                path: format!("{}.{extra}", render(path)),
                message,
            });
        }
        Ok(())
    }
}

fn check_id(
    table: &str,
    text: &str,
    tables: &dyn TableNumbers,
    value: &Value,
    validator: &Validator,
    path: &[Segment<'_>],
) -> Result<(), ValidationError> {
    let Ok(id) = DocumentId::decode(text) else {
        return Err(mismatch(path, value, validator));
    };
    match tables.table_number(table) {
        Some(number) if number == id.table_number => Ok(()),
        Some(_) => Err(failure(
            path,
            "Found an ID from a different table than the validator expects",
            Some(format!("Value: {}. Validator: {validator}", shown(value))),
        )),
        None => Err(failure(
            path,
            &format!("Validator {validator} names table `{table}`, which does not exist"),
            None,
        )),
    }
}

fn mismatch(path: &[Segment<'_>], value: &Value, validator: &Validator) -> ValidationError {
    failure(
        path,
        "Value does not match validator",
        Some(format!(
            "Value: {}. Validator: {}",
            shown(value),
            shown(validator)
        )),
    )
}

/// Builds `<headline>. Path: <path>. <details>`, leaving out the path at the top level.
fn failure(path: &[Segment<'_>], headline: &str, details: Option<String>) -> ValidationError {
    let path = render(path);
    let mut message = headline.to_owned();
    if !path.is_empty() {
        message.push_str(". Path: ");
        message.push_str(&path);
    }
    if let Some(details) = details {
        message.push_str(". ");
        message.push_str(&details);
    }
    ValidationError { path, message }
}

fn shown(item: &dyn fmt::Display) -> String {
    let text = item.to_string();
    match text.char_indices().nth(MAX_SHOWN) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// The short `v.*` form used in error messages: `v.string()`, `v.id("users")`, `v.object({a: v.null()})`.
impl fmt::Display for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Validator::Any => f.write_str("v.any()"),
            Validator::Null => f.write_str("v.null()"),
            Validator::Float64 => f.write_str("v.float64()"),
            Validator::Int64 => f.write_str("v.int64()"),
            Validator::Boolean => f.write_str("v.boolean()"),
            Validator::String => f.write_str("v.string()"),
            Validator::Bytes => f.write_str("v.bytes()"),
            Validator::Id(table) => write!(f, "v.id({})", Value::from(table.as_str())),
            Validator::Literal(value) => write!(f, "v.literal({value})"),
            Validator::Array(element) => write!(f, "v.array({element})"),
            Validator::Object(fields) => {
                f.write_str("v.object({")?;
                for (i, (name, field)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{name}: {field}")?;
                }
                f.write_str("})")
            }
            Validator::Union(members) => {
                f.write_str("v.union(")?;
                for (i, member) in members.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{member}")?;
                }
                f.write_str(")")
            }
            Validator::Record(keys, values) => write!(f, "v.record({keys}, {values})"),
        }
    }
}

impl fmt::Display for FieldValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.optional {
            write!(f, "v.optional({})", self.validator)
        } else {
            write!(f, "{}", self.validator)
        }
    }
}

/// A plain validator is a required field.
impl From<Validator> for FieldValidator {
    fn from(validator: Validator) -> FieldValidator {
        FieldValidator {
            validator,
            optional: false,
        }
    }
}

/// Builders mirroring Convex's `v`: `v::string()`, `v::object([("a", v::string().into()), ("b", v::optional(v::number()))])`.
///
/// An array literal needs one element type, so when required and optional fields are mixed the
/// required ones take `.into()` (or `v::required(...)`).
pub mod v {
    use super::{FieldValidator, Validator};
    use crate::Value;

    pub fn string() -> Validator {
        Validator::String
    }
    pub fn number() -> Validator {
        Validator::Float64
    }
    pub fn float64() -> Validator {
        Validator::Float64
    }
    pub fn int64() -> Validator {
        Validator::Int64
    }
    pub fn bigint() -> Validator {
        Validator::Int64
    }
    pub fn boolean() -> Validator {
        Validator::Boolean
    }
    pub fn null() -> Validator {
        Validator::Null
    }
    pub fn bytes() -> Validator {
        Validator::Bytes
    }
    pub fn any() -> Validator {
        Validator::Any
    }
    pub fn id(table: impl Into<String>) -> Validator {
        Validator::Id(table.into())
    }
    pub fn literal(value: impl Into<Value>) -> Validator {
        Validator::Literal(value.into())
    }
    pub fn array(element: Validator) -> Validator {
        Validator::Array(Box::new(element))
    }
    pub fn object<'a, F: Into<FieldValidator>>(
        fields: impl IntoIterator<Item = (&'a str, F)>,
    ) -> Validator {
        Validator::Object(
            fields
                .into_iter()
                .map(|(name, field)| (name.to_owned(), field.into()))
                .collect(),
        )
    }
    pub fn optional(validator: Validator) -> FieldValidator {
        FieldValidator {
            validator,
            optional: true,
        }
    }
    /// The same as `validator.into()`, for readability next to `optional`.
    pub fn required(validator: Validator) -> FieldValidator {
        validator.into()
    }
    pub fn union(members: Vec<Validator>) -> Validator {
        Validator::Union(members)
    }
    pub fn nullable(validator: Validator) -> Validator {
        Validator::Union(vec![validator, Validator::Null])
    }
    pub fn record(keys: Validator, values: Validator) -> Validator {
        Validator::Record(Box::new(keys), Box::new(values))
    }
}

#[cfg(test)]
mod tests;
