//! Decoding `convex_encoded_json` text straight into a `Value`, without building a
//! `serde_json::Value` first: the store reads every document this way, so it is on the hot path of
//! every query.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::{Object, Value, ValueError};

/// Parses `convex_encoded_json` text. Accepts exactly what `json::from_encoded_json` accepts for the
/// documents the store writes (`$integer`, `$float`, `$bytes` objects; numbers as float64).
pub fn from_encoded_str(text: &str) -> Result<Value, ValueError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = ValueSeed
        .deserialize(&mut de)
        .map_err(|e| ValueError::Invalid(e.to_string()))?;
    de.end().map_err(|e| ValueError::Invalid(e.to_string()))?;
    Ok(value)
}

struct ValueSeed;

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a convex_encoded_json value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Boolean(b))
    }
    // A plain JSON number is always a float64 in this encoding.
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Float64(n as f64))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Float64(n as f64))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(Value::Float64(n))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(ValueSeed)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = Object::new();
        while let Some(key) = map.next_key::<String>()? {
            if key.starts_with('$') {
                if !fields.is_empty() {
                    return Err(de::Error::custom(format!(
                        "field names cannot start with `$`: {key:?}"
                    )));
                }
                let payload: String = map.next_value()?;
                if map.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom(format!(
                        "`{key}` must be the only field of its object"
                    )));
                }
                return special(&key, &payload).map_err(de::Error::custom);
            }
            let value = map.next_value_seed(ValueSeed)?;
            fields.insert(key, value);
        }
        Ok(Value::Object(fields))
    }
}

fn eight_bytes(key: &str, payload: &str) -> Result<[u8; 8], String> {
    BASE64
        .decode(payload)
        .ok()
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| format!("`{key}` must hold 8 bytes in base64"))
}

fn special(key: &str, payload: &str) -> Result<Value, String> {
    match key {
        "$integer" => Ok(Value::Int64(i64::from_le_bytes(eight_bytes(key, payload)?))),
        "$float" => {
            let f = f64::from_le_bytes(eight_bytes(key, payload)?);
            // Only the values plain JSON numbers cannot carry are written this way.
            if f.is_nan() || f.is_infinite() || (f == 0.0 && f.is_sign_negative()) {
                Ok(Value::Float64(f))
            } else {
                Err(format!("`$float` holds an ordinary number ({f})"))
            }
        }
        "$bytes" => BASE64
            .decode(payload)
            .map(Value::Bytes)
            .map_err(|e| format!("bad `$bytes`: {e}")),
        other => Err(format!("field names cannot start with `$`: {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::json::{from_encoded_json, to_encoded_json};

    proptest! {
        /// Agrees with the general decoder on everything the encoder writes.
        #[test]
        fn agrees_with_the_tree_decoder(value in crate::strategy::arb_value()) {
            let text = to_encoded_json(&value).to_string();
            let fast = from_encoded_str(&text).unwrap();
            let slow = from_encoded_json(&serde_json::from_str(&text).unwrap()).unwrap();
            prop_assert_eq!(&fast, &slow);
            prop_assert_eq!(fast, value);
        }
    }

    #[test]
    fn refuses_malformed_specials() {
        for bad in [
            r#"{"$integer":"AA=="}"#,
            r#"{"$float":"AAAAAAAA8D8="}"#,
            r#"{"$set":[]}"#,
            r#"{"a":1,"$bytes":""}"#,
            r#"{"$bytes":"","a":1}"#,
            "[1,",
        ] {
            assert!(from_encoded_str(bad).is_err(), "{bad}");
        }
        assert_eq!(
            from_encoded_str(r#"{"n":5}"#).unwrap(),
            Value::object([("n", Value::Float64(5.0))])
        );
    }
}
