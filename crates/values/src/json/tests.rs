//! Wire examples from protocol §A.7 and the rejection rules of the decoders.

use serde_json::json;

use super::*;

fn encoded(value: Value) -> serde_json::Value {
    to_encoded_json(&value)
}

#[test]
fn wire_examples() {
    assert_eq!(
        encoded(Value::Int64(42)),
        json!({"$integer": "KgAAAAAAAAA="})
    );
    assert_eq!(
        encoded(Value::Int64(-1)),
        json!({"$integer": "//////////8="})
    );
    assert_eq!(
        encoded(Value::Float64(f64::NAN)),
        json!({"$float": "AAAAAAAA+H8="})
    );
    assert_eq!(
        encoded(Value::Float64(f64::INFINITY)),
        json!({"$float": "AAAAAAAA8H8="})
    );
    assert_eq!(
        encoded(Value::Float64(f64::NEG_INFINITY)),
        json!({"$float": "AAAAAAAA8P8="})
    );
    assert_eq!(
        encoded(Value::Float64(-0.0)),
        json!({"$float": "AAAAAAAAAIA="})
    );
    assert_eq!(encoded(Value::Float64(1.5)), json!(1.5));
    assert_eq!(encoded(Value::Float64(0.0)), json!(0.0));
    assert_eq!(
        encoded(Value::Bytes(vec![0xfb, 0xff])),
        json!({"$bytes": "+/8="})
    );
    assert_eq!(encoded(Value::Bytes(vec![])), json!({"$bytes": ""}));
    let nested = Value::object([
        (
            "b",
            Value::Array(vec![Value::Null, true.into(), "s".into()]),
        ),
        ("a", Value::Int64(1)),
    ]);
    assert_eq!(
        Format::Encoded.encode_to_string(&nested),
        r#"{"a":{"$integer":"AQAAAAAAAAA="},"b":[null,true,"s"]}"#
    );
}

#[test]
fn every_nan_encodes_canonically() {
    let odd_nan = f64::from_bits(0xfff8_0000_dead_beef);
    assert_eq!(
        encoded(Value::Float64(odd_nan)),
        json!({"$float": "AAAAAAAA+H8="})
    );
    // A NaN with another payload decodes to the canonical NaN.
    let odd = BASE64.encode(odd_nan.to_le_bytes());
    let decoded = from_encoded_json(&json!({"$float": odd})).unwrap();
    assert_eq!(decoded.as_f64().unwrap().to_bits(), f64::NAN.to_bits());
}

#[test]
fn decodes_wire_examples() {
    let d = |j: serde_json::Value| from_encoded_json(&j).unwrap();
    assert_eq!(d(json!({"$integer": "KgAAAAAAAAA="})), Value::Int64(42));
    assert_eq!(d(json!({"$integer": "//////////8="})), Value::Int64(-1));
    assert_eq!(d(json!({"$float": "AAAAAAAAAIA="})), Value::Float64(-0.0));
    assert_eq!(
        d(json!({"$float": "AAAAAAAA8P8="})),
        Value::Float64(f64::NEG_INFINITY)
    );
    assert!(d(json!({"$float": "AAAAAAAA+H8="}))
        .as_f64()
        .unwrap()
        .is_nan());
    assert_eq!(d(json!({"$bytes": "+/8="})), Value::Bytes(vec![0xfb, 0xff]));
    // Plain numbers are always float64, even integral ones.
    assert_eq!(d(json!(5)), Value::Float64(5.0));
    assert_eq!(d(json!(-7)), Value::Float64(-7.0));
    assert_eq!(d(json!(u64::MAX)), Value::Float64(u64::MAX as f64));
    // `_` fields are fine in values; only documents reserve them.
    assert_eq!(d(json!({"_id": "x"})), Value::object([("_id", "x")]));
    assert_eq!(d(json!({"": 1})), Value::object([("", 1.0)]));
}

fn decode_err(j: serde_json::Value) -> String {
    from_encoded_json(&j).unwrap_err().to_string()
}

#[test]
fn rejects_bad_special_objects() {
    assert!(
        decode_err(json!({"$float": BASE64.encode(1.5f64.to_le_bytes())}))
            .contains("plain JSON number")
    );
    assert!(
        decode_err(json!({"$float": BASE64.encode(0f64.to_le_bytes())}))
            .contains("plain JSON number")
    );
    assert!(decode_err(json!({"$integer": "KgAAAAAAAA=="})).contains("exactly 8 bytes"));
    assert!(
        decode_err(json!({"$integer": "KgAAAAAAAAA"})).contains("invalid base64"),
        "padding is required"
    );
    assert!(decode_err(json!({"$integer": 42})).contains("base64 string, not a number"));
    assert!(
        decode_err(json!({"$bytes": "-_8="})).contains("invalid base64"),
        "url-safe alphabet"
    );
    assert!(
        decode_err(json!({"$bytes": "+/9="})).contains("invalid base64"),
        "non-zero trailing bits"
    );
    assert!(decode_err(json!({"$set": []})).contains("legacy"));
    assert!(decode_err(json!({"$map": []})).contains("legacy"));
    assert!(decode_err(json!({"$commitTs": null})).contains("cannot start with `$`"));
    // Two keys: not special, so `$integer` is just a forbidden field name.
    let err = decode_err(json!({"$integer": "KgAAAAAAAAA=", "x": 1}));
    assert!(
        err.contains("\"$integer\"") && err.contains("cannot start with `$`"),
        "{err}"
    );
}

#[test]
fn errors_say_where() {
    let err = decode_err(json!({"a": [1, {"$b": 2}]}));
    assert_eq!(
        err,
        "Field name \"$b\" is invalid: field names cannot start with `$` (at path .a[1])"
    );
    let err = decode_err(json!({"a": {"n": {"$integer": "x"}}}));
    assert!(err.ends_with("(at path .a.n)"), "{err}");
}

#[test]
fn field_names() {
    assert!(check_field_name("plain_name with spaces ~").is_ok());
    assert!(check_field_name("_creationTime").is_ok());
    assert!(check_field_name(&"x".repeat(1024)).is_ok());
    assert!(check_field_name(&"x".repeat(1025)).is_err());
    assert!(check_field_name("$x").is_err());
    assert!(check_field_name("tab\there").is_err());
    assert!(check_field_name("caf\u{e9}").is_err());
    assert!(check_field_name("del\u{7f}").is_err());
}

fn nested_arrays(levels: usize) -> serde_json::Value {
    let mut j = json!(1);
    for _ in 0..levels {
        j = json!([j]);
    }
    j
}

#[test]
fn nesting_limit() {
    let ok = from_encoded_json(&nested_arrays(MAX_VALUE_NESTING)).unwrap();
    assert_eq!(ok.depth(), MAX_VALUE_NESTING);
    let err = from_encoded_json(&nested_arrays(MAX_VALUE_NESTING + 1)).unwrap_err();
    assert_eq!(
        err,
        ValueError::TooDeep {
            max: MAX_VALUE_NESTING
        }
    );
    assert!(from_clean_json(&nested_arrays(MAX_VALUE_NESTING + 1)).is_err());
    // Special objects are scalars and add no level.
    let mut j = json!({"$integer": "KgAAAAAAAAA="});
    for _ in 0..MAX_VALUE_NESTING {
        j = json!({ "a": j });
    }
    assert!(from_encoded_json(&j).is_ok());
}

#[test]
fn clean_json() {
    let value = Value::object([
        ("i", Value::Int64(-9_007_199_254_740_993)),
        ("b", Value::Bytes(vec![1, 2, 3])),
        ("nan", Value::Float64(f64::NAN)),
        ("inf", Value::Float64(f64::INFINITY)),
        ("ninf", Value::Float64(f64::NEG_INFINITY)),
        ("f", Value::Float64(2.5)),
        ("a", Value::Array(vec![Value::Null, false.into()])),
    ]);
    assert_eq!(
        to_clean_json(&value),
        json!({
            "i": "-9007199254740993", "b": "AQID", "nan": "NaN", "inf": "Infinity",
            "ninf": "-Infinity", "f": 2.5, "a": [null, false],
        })
    );
    let neg_zero = to_clean_json(&Value::Float64(-0.0));
    assert!(neg_zero.as_f64().unwrap() == 0.0);
    assert_eq!(from_clean_json(&json!(3)).unwrap(), Value::Float64(3.0));
    // In clean JSON `$integer` is not special, so it is a refused field name.
    assert!(from_clean_json(&json!({"$integer": "KgAAAAAAAAA="})).is_err());
}

#[test]
fn format_names() {
    assert_eq!(Format::parse("convex_encoded_json"), Some(Format::Encoded));
    assert_eq!(Format::parse("convex_json"), Some(Format::Encoded));
    assert_eq!(Format::parse("json"), Some(Format::Clean));
    assert_eq!(Format::parse("convex_clean_json"), Some(Format::Clean));
    assert_eq!(Format::parse("JSON"), None);
    assert_eq!(Format::parse(""), None);
}

#[test]
fn object_size_matches_text_length() {
    let fields: Object = [
        ("a".to_owned(), Value::Int64(3)),
        ("s".to_owned(), "é".into()),
    ]
    .into();
    let text = Format::Encoded.encode_to_string(&Value::Object(fields.clone()));
    assert_eq!(encoded_object_size(&fields), text.len());
}
