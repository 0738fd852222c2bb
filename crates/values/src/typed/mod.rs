//! Rust types that know their validator, so a function's arguments and result are declared once, as
//! types, and the validators clients and code generation see follow from them.
//!
//! `#[derive(Typed)]` (from `values-derive`) writes the impl for structs and enums, reading the same
//! `#[serde(...)]` attributes serde does (`rename_all`, `rename`, `skip`, `flatten`, `tag`,
//! `untagged`), plus its own:
//!
//! - `#[typed(session)]` on a struct: also accepts the optional `sessionToken` the web client adds
//!   to every call (the handler reads it from the raw arguments, not from the struct).
//! - `#[typed(id = "table")]` on a field: its strings are Ids of `table` (`v.id("table")`).
//! - `#[typed(validator = expr)]` on a field: the validator is `expr` (for literal unions built from
//!   constants); an `Option` field stays optional.
//!
//! How Rust types map (the same mapping `serde_bridge` uses for values):
//!
//! | Rust | validator |
//! |---|---|
//! | `f64`, `f32`, and integers other than `i64` | `v.number()` (a JS number) |
//! | `i64` | `v.int64()` (a JS bigint) |
//! | `String`, `bool`, `()` | `v.string()`, `v.boolean()`, `v.null()` |
//! | `Option<T>` in a struct | an optional field of `T` (absent when `None`) |
//! | `Option<T>` elsewhere, `Nullable<T>` | `T \| null` |
//! | `Vec<T>`, `BTreeMap<String, T>` | `v.array(T)`, `v.record(v.string(), T)` |
//! | `Value` | `v.any()` |

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::validator::v;
use crate::{DocumentId, FieldValidator, Validator, Value};

pub use values_derive::Typed;

/// A type whose values a validator describes.
pub trait Typed {
    /// The validator of a value of this type.
    fn validator() -> Validator;
    /// The validator of an object field of this type: required, unless the type is an `Option`.
    fn field() -> FieldValidator {
        Self::validator().into()
    }
}

macro_rules! typed {
    ($validator:expr => $($ty:ty),*) => {
        $(impl Typed for $ty {
            fn validator() -> Validator {
                $validator
            }
        })*
    };
}

typed!(v::string() => String, str, char);
typed!(v::boolean() => bool);
typed!(v::number() => f64, f32, i8, i16, i32, u8, u16, u32, u64, usize);
typed!(v::int64() => i64);
typed!(v::null() => ());
typed!(v::any() => Value);
// An Id whose table the type does not say; fields name the table with `#[typed(id = "...")]`.
typed!(v::string() => DocumentId);

impl<T: Typed + ?Sized> Typed for &T {
    fn validator() -> Validator {
        T::validator()
    }
    fn field() -> FieldValidator {
        T::field()
    }
}

impl<T: Typed + ?Sized> Typed for Box<T> {
    fn validator() -> Validator {
        T::validator()
    }
    fn field() -> FieldValidator {
        T::field()
    }
}

impl<T: Typed + ?Sized> Typed for Arc<T> {
    fn validator() -> Validator {
        T::validator()
    }
    fn field() -> FieldValidator {
        T::field()
    }
}

impl<T: Typed> Typed for Option<T> {
    fn validator() -> Validator {
        v::nullable(T::validator())
    }
    fn field() -> FieldValidator {
        v::optional(T::validator())
    }
}

impl<T: Typed> Typed for Vec<T> {
    fn validator() -> Validator {
        v::array(T::validator())
    }
}

impl<T: Typed> Typed for [T] {
    fn validator() -> Validator {
        v::array(T::validator())
    }
}

impl<T: Typed> Typed for BTreeMap<String, T> {
    fn validator() -> Validator {
        v::record(v::string(), T::validator())
    }
}

impl<T: Typed, S> Typed for HashMap<String, T, S> {
    fn validator() -> Validator {
        v::record(v::string(), T::validator())
    }
}

/// A table's document type (a row struct), named by `#[typed(table = "...")]`, so `Id<Row>` is an
/// Id of that table as `Id<"table">` is in TypeScript.
pub trait Table {
    const NAME: &'static str;
}

/// An Id of table `T`: a `DocumentId` whose validator is `v.id(T::NAME)`.
pub struct Id<T> {
    id: DocumentId,
    table: std::marker::PhantomData<fn() -> T>,
}

impl<T> Id<T> {
    pub fn new(id: DocumentId) -> Id<T> {
        Id {
            id,
            table: std::marker::PhantomData,
        }
    }
    pub fn get(&self) -> DocumentId {
        self.id
    }
}

impl<T> From<DocumentId> for Id<T> {
    fn from(id: DocumentId) -> Self {
        Id::new(id)
    }
}

impl<T> std::ops::Deref for Id<T> {
    type Target = DocumentId;
    fn deref(&self) -> &DocumentId {
        &self.id
    }
}

impl<T> Clone for Id<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Id<T> {}
impl<T> PartialEq for Id<T> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
impl<T> Eq for Id<T> {}
impl<T> std::hash::Hash for Id<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state)
    }
}
impl<T: Table> std::fmt::Debug for Id<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Id<{}>({})", T::NAME, self.id)
    }
}

impl<T: Table> Typed for Id<T> {
    fn validator() -> Validator {
        v::id(T::NAME)
    }
}

impl<T> Serialize for Id<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.id.serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for Id<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        DocumentId::deserialize(deserializer).map(Id::new)
    }
}

/// A value that is present but may be null: for result fields clients read as `T | null` (an
/// `Option` field would be left out instead).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Nullable<T>(pub Option<T>);

impl<T> Nullable<T> {
    pub fn null() -> Nullable<T> {
        Nullable(None)
    }
}

impl<T> From<Option<T>> for Nullable<T> {
    fn from(value: Option<T>) -> Self {
        Nullable(value)
    }
}

impl<T> std::ops::Deref for Nullable<T> {
    type Target = Option<T>;
    fn deref(&self) -> &Option<T> {
        &self.0
    }
}

impl<T: Typed> Typed for Nullable<T> {
    fn validator() -> Validator {
        v::nullable(T::validator())
    }
}

impl<T: Serialize> Serialize for Nullable<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Some(value) => value.serialize(serializer),
            // A unit, not a `None`, so a struct field keeps it as null rather than leaving it out.
            None => serializer.serialize_unit(),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Nullable<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(deserializer).map(Nullable)
    }
}

/// Support for code `#[derive(Typed)]` writes; not for direct use.
#[doc(hidden)]
pub mod derive {
    use super::*;

    /// Turns the `v.string()` leaves of a field's validator into `v.id(table)` (for
    /// `#[typed(id = "table")]` on `String`, `Option<String>`, `Vec<String>` fields).
    pub fn as_id(field: FieldValidator, table: &str) -> FieldValidator {
        fn swap(validator: Validator, table: &str) -> Validator {
            match validator {
                Validator::String => Validator::Id(table.to_owned()),
                Validator::Array(element) => Validator::Array(Box::new(swap(*element, table))),
                Validator::Union(members) => {
                    Validator::Union(members.into_iter().map(|m| swap(m, table)).collect())
                }
                other => panic!("#[typed(id)] on a field whose validator is {other}"),
            }
        }
        FieldValidator {
            validator: swap(field.validator, table),
            optional: field.optional,
        }
    }

    /// A field whose validator is given, optional when its type is.
    pub fn given<T: Typed + ?Sized>(validator: Validator) -> FieldValidator {
        FieldValidator {
            validator,
            optional: T::field().optional,
        }
    }

    /// Adds the fields of a `#[serde(flatten)]`ed struct.
    pub fn flatten(fields: &mut BTreeMap<String, FieldValidator>, inner: Validator, ty: &str) {
        match inner {
            Validator::Object(inner) => fields.extend(inner),
            other => panic!("#[serde(flatten)] of {ty}, whose validator is {other}, not an object"),
        }
    }

    /// The optional `sessionToken` of `#[typed(session)]`.
    pub fn session(fields: &mut BTreeMap<String, FieldValidator>) {
        fields.insert("sessionToken".to_owned(), v::optional(v::string()));
    }

    pub fn literal(text: &str) -> Validator {
        v::literal(text)
    }
}

/// `Value` itself goes through serde unchanged, for free-form (`v.any()`) fields.
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Value::Null => serializer.serialize_unit(),
            Value::Int64(i) => serializer.serialize_i64(*i),
            Value::Float64(f) => serializer.serialize_f64(*f),
            Value::Boolean(b) => serializer.serialize_bool(*b),
            Value::String(s) => serializer.serialize_str(s),
            Value::Bytes(b) => serializer.serialize_bytes(b),
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Object(fields) => {
                let mut map = serializer.serialize_map(Some(fields.len()))?;
                for (name, item) in fields {
                    map.serialize_entry(name, item)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> serde::de::Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a Convex value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Boolean(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int64(i))
    }
    fn visit_u64<E: serde::de::Error>(self, u: u64) -> Result<Value, E> {
        i64::try_from(u)
            .map(Value::Int64)
            .map_err(|_| E::custom(format!("Integer {u} does not fit in an int64")))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float64(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_bytes<E>(self, b: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(b.to_vec()))
    }
    fn visit_byte_buf<E>(self, b: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(b))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = crate::Object::new();
        while let Some((name, item)) = map.next_entry::<String, Value>()? {
            fields.insert(name, item);
        }
        Ok(Value::Object(fields))
    }
}

#[cfg(test)]
mod tests;
