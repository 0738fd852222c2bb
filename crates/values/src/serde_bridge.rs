//! Converting between `Value` and Rust types that implement serde traits, so domain code can work with
//! structs. `f64` fields become float64, integer fields int64, `Option::None` an absent field
//! (when inside a struct) or null.
//!
//! The mapping, both ways, goes straight between `Value` and serde's data model (no `serde_json`
//! in between), so NaN, ±Infinity, -0 and full-range int64 survive:
//!
//! | Rust | Value |
//! |---|---|
//! | `f32`, `f64` | float64 |
//! | `i8`..`i64`, `u8`..`u32`, and `u64`/`i128`/`u128` that fit in i64 | int64 (others are an error) |
//! | `bool`, `String`/`&str`/`char` | boolean, string |
//! | `serialize_bytes` (e.g. `serde_bytes`) | bytes; a plain `Vec<u8>` is an array of int64 |
//! | `()`, unit struct, `None` | null |
//! | sequences, tuples | array |
//! | structs, maps (string or integer keys) | object; field names are checked like wire names |
//! | enums | externally tagged: `"Variant"` or `{"Variant": ...}` |
//!
//! Reading back is slightly lenient where JS forces it: clients send every plain number as float64,
//! so an integer field accepts an integral float64, and a `Vec<u8>` field accepts bytes.
//!
//! `None` in a struct field serializes as null, not as an absent field, because a serializer cannot
//! tell `None` from `()`. Domain structs whose optional fields are `v.optional(...)` in the
//! validator therefore use `#[serde(default, skip_serializing_if = "Option::is_none")]`.
//! Missing fields deserialize to `None` either way.

mod de;
mod ser;

use crate::{Value, ValueError};

pub fn to_value<T: serde::Serialize>(value: &T) -> Result<Value, ValueError> {
    value.serialize(ser::ValueSerializer)
}

pub fn from_value<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, ValueError> {
    T::deserialize(de::ValueDeserializer(value))
}

/// Lets `ValueError` be the error type of the serializer and deserializer above.
impl serde::ser::Error for ValueError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        ValueError::Invalid(msg.to_string())
    }
}

impl serde::de::Error for ValueError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        ValueError::Invalid(msg.to_string())
    }
}

#[cfg(test)]
mod tests;
