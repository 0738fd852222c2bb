//! `convex_encoded_json` and clean `json` encodings (protocol §A.7).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::path::{render, Segment};
use crate::{Object, Value, ValueError, MAX_FIELD_NAME_LEN, MAX_VALUE_NESTING};

/// The wire format a client asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `convex_encoded_json` (alias `convex_json`): lossless.
    Encoded,
    /// `json` (alias `convex_clean_json`): lossy, for curl and plain clients.
    Clean,
}

impl Format {
    /// Parses a request's `format` field; `None` for an unknown name.
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "convex_encoded_json" | "convex_json" => Some(Format::Encoded),
            "json" | "convex_clean_json" => Some(Format::Clean),
            _ => None,
        }
    }
    pub fn encode(self, value: &Value) -> serde_json::Value {
        // Serializing into a serde_json::Value only fails for non-string map keys, which `AsJson`
        // never produces.
        serde_json::to_value(AsJson {
            value,
            format: self,
        })
        .expect("a Value always serializes to serde_json::Value")
    }
    pub fn decode(self, json: &serde_json::Value) -> Result<Value, ValueError> {
        let mut path = Vec::new();
        decode_at(json, self, 0, &mut path)
    }
    /// The encoded JSON text, without building a `serde_json::Value` first.
    pub fn encode_to_string(self, value: &Value) -> String {
        serde_json::to_string(&AsJson {
            value,
            format: self,
        })
        .expect("a Value always serializes to a JSON string")
    }
}

/// Lossless encoding: int64 as `{"$integer": b64}`, NaN/±Inf/-0 as `{"$float": b64}`, bytes as `{"$bytes": b64}`.
pub fn to_encoded_json(value: &Value) -> serde_json::Value {
    Format::Encoded.encode(value)
}

/// Decodes `convex_encoded_json`. JSON numbers are float64; rejects bad field names, bad base64,
/// `$float` holding a normal number, legacy `$set`/`$map`, and nesting over `MAX_VALUE_NESTING`.
pub fn from_encoded_json(json: &serde_json::Value) -> Result<Value, ValueError> {
    Format::Encoded.decode(json)
}

/// Lossy clean JSON: int64 → decimal string, bytes → base64 string, NaN/±Inf → "NaN"/"Infinity"/"-Infinity".
pub fn to_clean_json(value: &Value) -> serde_json::Value {
    Format::Clean.encode(value)
}

/// Reads clean JSON: numbers become float64, no `$` objects are special (but `$` field names are still refused).
pub fn from_clean_json(json: &serde_json::Value) -> Result<Value, ValueError> {
    Format::Clean.decode(json)
}

/// Checks one object field name: not starting with `$`, printable ASCII, at most 1024 characters.
pub fn check_field_name(name: &str) -> Result<(), ValueError> {
    let reason = if name.len() > MAX_FIELD_NAME_LEN {
        "field names are at most 1024 characters long"
    } else if name.starts_with('$') {
        "field names cannot start with `$`"
    } else if !name.bytes().all(|b| (32..=126).contains(&b)) {
        "field names may only contain printable ASCII characters (codes 32 to 126)"
    } else {
        return Ok(());
    };
    Err(ValueError::FieldName {
        name: truncate(name, 64),
        reason,
    })
}

/// Length in bytes of the `convex_encoded_json` text of an object, counted without building it.
pub fn encoded_object_size(fields: &Object) -> usize {
    let mut counter = ByteCounter(0);
    // Writing into a counter cannot fail.
    let _ = serde_json::to_writer(
        &mut counter,
        &AsJsonObject {
            fields,
            format: Format::Encoded,
        },
    );
    counter.0
}

/// Serializes a value in one of the wire formats straight into any serde serializer
/// (for example `serde_json::to_writer`), without an intermediate `serde_json::Value`.
#[derive(Clone, Copy, Debug)]
pub struct AsJson<'a> {
    pub value: &'a Value,
    pub format: Format,
}

struct AsJsonObject<'a> {
    fields: &'a Object,
    format: Format,
}

impl Serialize for AsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let format = self.format;
        match (self.value, format) {
            (Value::Null, _) => s.serialize_unit(),
            (Value::Boolean(b), _) => s.serialize_bool(*b),
            (Value::String(text), _) => s.serialize_str(text),
            (Value::Int64(i), Format::Encoded) => {
                single_entry(s, "$integer", &BASE64.encode(i.to_le_bytes()))
            }
            (Value::Int64(i), Format::Clean) => s.collect_str(i),
            (Value::Float64(f), Format::Encoded) if is_special_float(*f) => {
                single_entry(s, "$float", &BASE64.encode(special_float_bytes(*f)))
            }
            (Value::Float64(f), Format::Clean) if f.is_nan() => s.serialize_str("NaN"),
            (Value::Float64(f), Format::Clean) if *f == f64::INFINITY => {
                s.serialize_str("Infinity")
            }
            (Value::Float64(f), Format::Clean) if *f == f64::NEG_INFINITY => {
                s.serialize_str("-Infinity")
            }
            (Value::Float64(f), _) => s.serialize_f64(*f),
            (Value::Bytes(b), Format::Encoded) => single_entry(s, "$bytes", &BASE64.encode(b)),
            (Value::Bytes(b), Format::Clean) => s.serialize_str(&BASE64.encode(b)),
            (Value::Array(items), _) => {
                s.collect_seq(items.iter().map(|value| AsJson { value, format }))
            }
            (Value::Object(fields), _) => AsJsonObject { fields, format }.serialize(s),
        }
    }
}

impl Serialize for AsJsonObject<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let format = self.format;
        s.collect_map(
            self.fields
                .iter()
                .map(|(name, value)| (name, AsJson { value, format })),
        )
    }
}

fn single_entry<S: Serializer>(s: S, key: &str, value: &str) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(1))?;
    map.serialize_entry(key, value)?;
    map.end()
}

/// NaN, ±Infinity and -0 have no exact JSON number, so the encoded format spells them out.
fn is_special_float(f: f64) -> bool {
    !f.is_finite() || (f == 0.0 && f.is_sign_negative())
}

/// The little-endian bytes, with every NaN written as the one canonical NaN the JS client produces.
fn special_float_bytes(f: f64) -> [u8; 8] {
    if f.is_nan() {
        f64::NAN.to_le_bytes()
    } else {
        f.to_le_bytes()
    }
}

struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `depth` is the number of containers around `json`; it is checked before recursing so hostile
/// input cannot overflow the stack.
fn decode_at<'a>(
    json: &'a serde_json::Value,
    format: Format,
    depth: usize,
    path: &mut Vec<Segment<'a>>,
) -> Result<Value, ValueError> {
    use serde_json::Value as J;
    match json {
        J::Null => Ok(Value::Null),
        J::Bool(b) => Ok(Value::Boolean(*b)),
        J::String(s) => Ok(Value::String(s.clone())),
        J::Number(n) => n.as_f64().map(Value::Float64).ok_or_else(|| {
            located(
                ValueError::Invalid(format!("Number {n} is not a float64")),
                path,
            )
        }),
        J::Array(items) => {
            check_depth(depth)?;
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                path.push(Segment::Index(i));
                out.push(decode_at(item, format, depth + 1, path)?);
                path.pop();
            }
            Ok(Value::Array(out))
        }
        J::Object(fields) => {
            if format == Format::Encoded && fields.len() == 1 {
                let (key, inner) = fields.iter().next().expect("one field");
                if let Some(value) = decode_special(key, inner).map_err(|e| located(e, path))? {
                    return Ok(value);
                }
            }
            check_depth(depth)?;
            let mut out = Object::new();
            for (name, value) in fields {
                check_field_name(name).map_err(|e| located(e, path))?;
                path.push(Segment::Field(name));
                let decoded = decode_at(value, format, depth + 1, path)?;
                path.pop();
                out.insert(name.clone(), decoded);
            }
            Ok(Value::Object(out))
        }
    }
}

fn check_depth(depth: usize) -> Result<(), ValueError> {
    if depth >= MAX_VALUE_NESTING {
        return Err(ValueError::TooDeep {
            max: MAX_VALUE_NESTING,
        });
    }
    Ok(())
}

/// Decodes a one-key `$` object; `Ok(None)` when the key is not one of the special ones.
fn decode_special(key: &str, inner: &serde_json::Value) -> Result<Option<Value>, ValueError> {
    match key {
        "$integer" => {
            let bytes = eight_bytes(key, inner)?;
            Ok(Some(Value::Int64(i64::from_le_bytes(bytes))))
        }
        "$float" => {
            let f = f64::from_le_bytes(eight_bytes(key, inner)?);
            if !is_special_float(f) {
                return Err(ValueError::Invalid(format!(
                    "`$float` holds the normal number {f}, which must be sent as a plain JSON number"
                )));
            }
            // Any NaN payload means NaN; keep one canonical NaN so decode and encode round trip.
            Ok(Some(Value::Float64(if f.is_nan() { f64::NAN } else { f })))
        }
        "$bytes" => Ok(Some(Value::Bytes(base64_string(key, inner)?))),
        "$set" | "$map" => Err(ValueError::Invalid(format!(
            "`{key}` is a legacy Convex encoding (Set/Map values) and is not supported"
        ))),
        _ => Ok(None),
    }
}

fn base64_string(key: &str, inner: &serde_json::Value) -> Result<Vec<u8>, ValueError> {
    let text = inner.as_str().ok_or_else(|| {
        ValueError::Invalid(format!(
            "`{key}` must hold a base64 string, not {}",
            json_kind(inner)
        ))
    })?;
    BASE64.decode(text).map_err(|e| {
        ValueError::Invalid(format!(
            "`{key}` holds invalid base64 {:?} (standard alphabet with padding expected): {e}",
            truncate(text, 64)
        ))
    })
}

fn eight_bytes(key: &str, inner: &serde_json::Value) -> Result<[u8; 8], ValueError> {
    let bytes = base64_string(key, inner)?;
    <[u8; 8]>::try_from(bytes.as_slice()).map_err(|_| {
        ValueError::Invalid(format!(
            "`{key}` must hold exactly 8 bytes, found {}",
            bytes.len()
        ))
    })
}

fn json_kind(json: &serde_json::Value) -> &'static str {
    match json {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Adds where the error happened, unless it happened at the top level.
fn located(err: ValueError, path: &[Segment<'_>]) -> ValueError {
    if path.is_empty() {
        return err;
    }
    ValueError::Invalid(format!("{err} (at path {})", render(path)))
}

/// Keeps hostile input from making error messages huge.
fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests;
