//! The `Value` enum, its total order, conversions and a short JS-like display form.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use crate::DocumentId;

/// An object's fields, kept sorted by name (as the JS client sorts them).
pub type Object = BTreeMap<String, Value>;

/// One Convex value. `undefined` is not a value: an absent field is simply not in the `Object`.
#[derive(Clone, Debug)]
pub enum Value {
    Null,
    Int64(i64),
    Float64(f64),
    Boolean(bool),
    String(String),
    Bytes(Vec<u8>),
    Array(Vec<Value>),
    Object(Object),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("{0}")]
    Invalid(String),
    #[error("Field name {name:?} is invalid: {reason}")]
    FieldName { name: String, reason: &'static str },
    #[error("Value is too deeply nested (at most {max} levels)")]
    TooDeep { max: usize },
    #[error("Document is too large ({size} bytes; at most {max})")]
    TooLarge { size: usize, max: usize },
}

impl Value {
    /// The Convex type name, as used in validator messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Int64(_) => "int64",
            Value::Float64(_) => "float64",
            Value::Boolean(_) => "boolean",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float64(f) => Some(*f),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int64(i) => Some(*i),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }
    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Value::Object(fields) => Some(fields),
            _ => None,
        }
    }
    pub fn into_object(self) -> Option<Object> {
        match self {
            Value::Object(fields) => Some(fields),
            _ => None,
        }
    }
    /// A field of an object value; `None` for non-objects and absent fields.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.as_object()?.get(field)
    }
    /// Total order across types: null < int64 < float64 < boolean < string < bytes < array < object.
    /// Floats use IEEE total order (so NaN and -0 have fixed places).
    ///
    /// All NaNs compare equal and above +Infinity: the wire has one NaN encoding, so two values that
    /// encode identically must compare equal.
    pub fn total_cmp(&self, other: &Value) -> Ordering {
        match (self, other) {
            (Value::Null, Value::Null) => Ordering::Equal,
            (Value::Int64(a), Value::Int64(b)) => a.cmp(b),
            (Value::Float64(a), Value::Float64(b)) => {
                canonical_nan(*a).total_cmp(&canonical_nan(*b))
            }
            (Value::Boolean(a), Value::Boolean(b)) => a.cmp(b),
            (Value::String(a), Value::String(b)) => a.cmp(b),
            (Value::Bytes(a), Value::Bytes(b)) => a.cmp(b),
            (Value::Array(a), Value::Array(b)) => {
                for (x, y) in a.iter().zip(b) {
                    let ord = x.total_cmp(y);
                    if ord != Ordering::Equal {
                        return ord;
                    }
                }
                a.len().cmp(&b.len())
            }
            (Value::Object(a), Value::Object(b)) => {
                for ((ka, va), (kb, vb)) in a.iter().zip(b) {
                    let ord = ka.cmp(kb).then_with(|| va.total_cmp(vb));
                    if ord != Ordering::Equal {
                        return ord;
                    }
                }
                a.len().cmp(&b.len())
            }
            _ => self.type_rank().cmp(&other.type_rank()),
        }
    }
    /// Nesting depth: scalars are 0, `[]`/`{}` are 1.
    pub fn depth(&self) -> usize {
        match self {
            Value::Array(items) => 1 + items.iter().map(Value::depth).max().unwrap_or(0),
            Value::Object(fields) => object_depth(fields),
            _ => 0,
        }
    }

    /// True for `Value::Null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }
    /// Builds an object value: `Value::object([("name", Value::from("x")), ("n", 1.0.into())])`.
    pub fn object<K: Into<String>, V: Into<Value>>(
        fields: impl IntoIterator<Item = (K, V)>,
    ) -> Value {
        Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    fn type_rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Int64(_) => 1,
            Value::Float64(_) => 2,
            Value::Boolean(_) => 3,
            Value::String(_) => 4,
            Value::Bytes(_) => 5,
            Value::Array(_) => 6,
            Value::Object(_) => 7,
        }
    }
}

/// The depth of `Value::Object(fields)` without building one.
pub(crate) fn object_depth(fields: &Object) -> usize {
    1 + fields.values().map(Value::depth).max().unwrap_or(0)
}

fn canonical_nan(f: f64) -> f64 {
    if f.is_nan() {
        f64::NAN
    } else {
        f
    }
}

impl PartialEq for Value {
    /// Equality agrees with `total_cmp` (so NaN == NaN and -0 != 0, as Convex compares them).
    fn eq(&self, other: &Self) -> bool {
        self.total_cmp(other) == Ordering::Equal
    }
}
impl Eq for Value {}
impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Value {
    fn cmp(&self, other: &Self) -> Ordering {
        self.total_cmp(other)
    }
}

/// A short JavaScript-like form for error messages: `12`, `12n`, `"text"`, `[1, 2]`, `{a: true}`.
/// Not a wire format: use `json::to_encoded_json` for that.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Int64(i) => write!(f, "{i}n"),
            Value::Float64(x) => write_js_number(f, *x),
            Value::Boolean(b) => write!(f, "{b}"),
            Value::String(s) => f.write_str(&serde_json::to_string(s).map_err(|_| fmt::Error)?),
            Value::Bytes(b) => write!(f, "ArrayBuffer(byteLength={})", b.len()),
            Value::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Object(fields) => {
                f.write_str("{")?;
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{name}: {value}")?;
                }
                f.write_str("}")
            }
        }
    }
}

fn write_js_number(f: &mut fmt::Formatter<'_>, x: f64) -> fmt::Result {
    if x.is_nan() {
        f.write_str("NaN")
    } else if x == f64::INFINITY {
        f.write_str("Infinity")
    } else if x == f64::NEG_INFINITY {
        f.write_str("-Infinity")
    } else if x != 0.0 && !(1e-6..1e21).contains(&x.abs()) {
        // JS switches to exponent form outside this range; "1e21" is "1e+21" there.
        let text = format!("{x:e}");
        match text.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => write!(f, "{mantissa}e+{exp}"),
            _ => f.write_str(&text),
        }
    } else {
        // Rust prints integral floats without ".0" and -0.0 as "-0", like JS.
        write!(f, "{x}")
    }
}

// Conversions that make building values in Rust short: `Value::from("x")`, `Value::from(1.5)`.
// There is deliberately no `From<i32>`: a bare `5` is ambiguous between int64 and float64.
impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}
impl From<f64> for Value {
    fn from(x: f64) -> Value {
        Value::Float64(x)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int64(i)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Boolean(b)
    }
}
impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Value {
        Value::Array(items)
    }
}
impl From<Object> for Value {
    fn from(fields: Object) -> Value {
        Value::Object(fields)
    }
}
impl From<DocumentId> for Value {
    fn from(id: DocumentId) -> Value {
        Value::String(id.encode())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_type_order() {
        let ordered = [
            Value::Null,
            Value::Int64(i64::MAX),
            Value::Float64(f64::NEG_INFINITY),
            Value::Boolean(false),
            Value::from(""),
            Value::Bytes(vec![]),
            Value::Array(vec![]),
            Value::Object(Object::new()),
        ];
        for (i, a) in ordered.iter().enumerate() {
            for (j, b) in ordered.iter().enumerate() {
                assert_eq!(a.total_cmp(b), i.cmp(&j), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn float_order_is_ieee_total_with_one_nan() {
        let neg_nan = f64::from_bits(f64::NAN.to_bits() | (1 << 63));
        assert_eq!(Value::Float64(neg_nan), Value::Float64(f64::NAN));
        assert!(Value::Float64(-0.0) < Value::Float64(0.0));
        assert_ne!(Value::Float64(-0.0), Value::Float64(0.0));
        assert!(Value::Float64(f64::INFINITY) < Value::Float64(f64::NAN));
        assert!(Value::Float64(f64::NEG_INFINITY) < Value::Float64(-1e300));
    }

    #[test]
    fn arrays_and_objects_compare_lexicographically() {
        let a = Value::Array(vec![1.0.into(), 2.0.into()]);
        let b = Value::Array(vec![1.0.into(), 3.0.into()]);
        let prefix = Value::Array(vec![1.0.into()]);
        assert!(a < b);
        assert!(prefix < a);
        let x = Value::object([("a", 1.0)]);
        let y = Value::object([("a", 1.0), ("b", 0.0)]);
        let z = Value::object([("b", 0.0)]);
        assert!(x < y);
        assert!(y < z, "key `a` sorts before key `b`");
    }

    #[test]
    fn depth_counts_containers() {
        assert_eq!(Value::Null.depth(), 0);
        assert_eq!(Value::Array(vec![]).depth(), 1);
        assert_eq!(
            Value::object([("a", Value::Array(vec![Value::Array(vec![])]))]).depth(),
            3
        );
    }

    #[test]
    fn conversions() {
        assert_eq!(Value::from(None::<f64>), Value::Null);
        assert_eq!(Value::from(Some("x")), Value::String("x".into()));
        assert_eq!(Value::from(7i64).as_i64(), Some(7));
        assert_eq!(Value::from(true).as_bool(), Some(true));
        let obj = Value::object([("k", "v")]);
        assert_eq!(obj.get("k").and_then(Value::as_str), Some("v"));
        assert_eq!(obj.get("missing"), None);
        assert_eq!(Value::Null.get("k"), None);
        let id = DocumentId {
            table_number: 10001,
            internal: [7; 16],
        };
        assert_eq!(Value::from(id).as_str(), Some(id.encode().as_str()));
    }

    #[test]
    fn display_is_js_like() {
        let v = Value::object([
            ("a", Value::Float64(12.0)),
            ("b", Value::Int64(-3)),
            (
                "c",
                Value::Array(vec![Value::from("x\"y"), Value::Float64(f64::NEG_INFINITY)]),
            ),
            ("d", Value::Bytes(vec![1, 2])),
        ]);
        assert_eq!(
            v.to_string(),
            r#"{a: 12, b: -3n, c: ["x\"y", -Infinity], d: ArrayBuffer(byteLength=2)}"#
        );
        assert_eq!(Value::Float64(-0.0).to_string(), "-0");
        assert_eq!(Value::Float64(1.5).to_string(), "1.5");
        assert_eq!(Value::Float64(1e21).to_string(), "1e+21");
        assert_eq!(Value::Float64(-2.5e-7).to_string(), "-2.5e-7");
        assert_eq!(Value::Float64(123456.0).to_string(), "123456");
    }
}
