//! Converting between `Value` and Rust types that implement serde traits, so domain code can work with
//! structs. `f64` fields become float64, integer fields int64, `Option::None` an absent field
//! (when inside a struct) or null.
//!
//! The mapping, both ways, goes straight between `Value` and serde's data model (no `serde_json`
//! in between), so NaN, ±Infinity, -0 and full-range int64 survive:
//!
//! | Rust | Value |
//! |---|---|
//! | `f32`, `f64`, and integers other than `i64`/`i128`/`u128` | float64 (a JS number; a `u64` beyond 2^53 is an error) |
//! | `i64`, and `i128`/`u128` that fit in i64 | int64 (a JS bigint) |
//! | `bool`, `String`/`&str`/`char` | boolean, string |
//! | `serialize_bytes` (e.g. `serde_bytes`) | bytes; a plain `Vec<u8>` is an array of int64 |
//! | `()`, unit struct, `None` outside a struct | null |
//! | `None` in a struct field or map entry | left out (`v.optional`) |
//! | sequences, tuples | array |
//! | structs, maps (string or integer keys) | object; field names are checked like wire names |
//! | enums | externally tagged: `"Variant"` or `{"Variant": ...}` |
//!
//! Reading back is slightly lenient where JS forces it: clients send every plain number as float64,
//! so an integer field accepts an integral float64, and a `Vec<u8>` field accepts bytes.
//!
//! A struct field that is `None` is left out, as JS leaves out `undefined`, so an `Option` field
//! matches `v.optional(...)`; a field that must be present as null is a `typed::Nullable`. Missing
//! fields deserialize to `None`.

mod de;
mod ser;

use crate::{Value, ValueError};

pub fn to_value<T: serde::Serialize>(value: &T) -> Result<Value, ValueError> {
    value.serialize(ser::ValueSerializer::default())
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
