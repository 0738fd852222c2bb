//! Struct ↔ `Value` mapping, including the cases `serde_json` would lose.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::*;
use crate::DocumentId;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Incident {
    title: String,
    severity: f64,
    count: i64,
    small: u8,
    open: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    reporter: Option<DocumentId>,
    tags: Vec<String>,
    status: Status,
    extra: BTreeMap<String, f64>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Status {
    Draft,
    Submitted { by: String },
    Moved(u32),
    Pair(i64, String),
}

fn sample() -> Incident {
    Incident {
        title: "Fall".into(),
        severity: f64::NEG_INFINITY,
        count: i64::MIN,
        small: 7,
        open: true,
        note: None,
        reporter: Some(DocumentId {
            table_number: 10001,
            internal: [1; 16],
        }),
        tags: vec!["a".into(), "b".into()],
        status: Status::Submitted { by: "kim".into() },
        extra: BTreeMap::from([("x".to_owned(), -0.0)]),
    }
}

#[test]
fn struct_round_trip() {
    let incident = sample();
    let value = to_value(&incident).unwrap();
    let fields = value.as_object().unwrap();
    assert_eq!(
        fields.get("severity"),
        Some(&Value::Float64(f64::NEG_INFINITY))
    );
    assert_eq!(fields.get("count"), Some(&Value::Int64(i64::MIN)));
    assert_eq!(fields.get("small"), Some(&Value::Float64(7.0)));
    assert!(!fields.contains_key("note"), "skipped None is absent");
    assert_eq!(
        fields.get("reporter").and_then(Value::as_str),
        Some(incident.reporter.unwrap().encode().as_str())
    );
    assert_eq!(
        fields.get("status"),
        Some(&Value::object([(
            "Submitted",
            Value::object([("by", "kim")])
        )]))
    );
    let back: Incident = from_value(&value).unwrap();
    assert_eq!(back.extra["x"].to_bits(), (-0.0f64).to_bits());
    assert_eq!(back, incident);
}

#[test]
fn enums_are_externally_tagged() {
    for status in [
        Status::Draft,
        Status::Moved(3),
        Status::Pair(-1, "x".into()),
    ] {
        let value = to_value(&status).unwrap();
        assert_eq!(from_value::<Status>(&value).unwrap(), status);
    }
    assert_eq!(to_value(&Status::Draft).unwrap(), Value::from("Draft"));
    assert!(from_value::<Status>(&Value::Float64(1.0)).is_err());
}

#[test]
fn numbers() {
    assert!(to_value(&u64::MAX).is_err());
    // Integers other than i64 are JS numbers, refused where a number cannot hold them exactly.
    assert_eq!(
        to_value(&(1u64 << 53)).unwrap(),
        Value::Float64(9_007_199_254_740_992.0)
    );
    assert!(to_value(&((1u64 << 53) + 1)).is_err());
    assert_eq!(to_value(&7usize).unwrap(), Value::Float64(7.0));
    assert_eq!(to_value(&-7i32).unwrap(), Value::Float64(-7.0));
    assert_eq!(to_value(&7i64).unwrap(), Value::Int64(7));
    assert_eq!(to_value(&1.5f32).unwrap(), Value::Float64(1.5));
    // JS clients send integers as float64; integer fields accept integral floats only.
    assert_eq!(from_value::<u32>(&Value::Float64(5.0)).unwrap(), 5);
    assert!(from_value::<u32>(&Value::Float64(5.5)).is_err());
    assert!(from_value::<u8>(&Value::Float64(300.0)).is_err());
    assert!(from_value::<i64>(&Value::Float64(f64::NAN)).is_err());
    assert!(from_value::<i64>(&Value::Float64(9.3e18)).is_err());
    assert_eq!(from_value::<f64>(&Value::Int64(3)).unwrap(), 3.0);
    assert!(from_value::<f64>(&Value::Float64(f64::NAN))
        .unwrap()
        .is_nan());
}

#[test]
fn bytes_and_missing_fields() {
    assert_eq!(
        from_value::<Vec<u8>>(&Value::Bytes(vec![1, 2])).unwrap(),
        vec![1, 2]
    );
    // Without serde_bytes a Vec<u8> is a sequence of integers.
    assert_eq!(
        to_value(&vec![1u8]).unwrap(),
        Value::Array(vec![Value::Float64(1.0)])
    );
    #[derive(Deserialize, Debug)]
    struct Partial {
        a: Option<String>,
    }
    let partial: Partial = from_value(&Value::Object(Default::default())).unwrap();
    assert_eq!(partial.a, None);
}

#[test]
fn none_fields_are_left_out_and_none_elsewhere_is_null() {
    #[derive(Serialize)]
    struct Shape {
        gone: Option<String>,
        kept: crate::typed::Nullable<String>,
        list: Vec<Option<f64>>,
        inner: Option<Box<Shape>>,
    }
    let value = to_value(&Shape {
        gone: None,
        kept: None.into(),
        list: vec![None, Some(1.0)],
        inner: Some(Box::new(Shape {
            gone: Some("x".into()),
            kept: Some("y".to_owned()).into(),
            list: vec![],
            inner: None,
        })),
    })
    .unwrap();
    assert_eq!(
        value,
        Value::object([
            ("kept", Value::Null),
            ("list", Value::Array(vec![Value::Null, Value::Float64(1.0)])),
            (
                "inner",
                Value::object([
                    ("gone", Value::from("x")),
                    ("kept", Value::from("y")),
                    ("list", Value::Array(vec![])),
                ])
            ),
        ])
    );
    assert_eq!(to_value(&None::<String>).unwrap(), Value::Null);
}

#[test]
fn errors_are_clear() {
    let err = from_value::<Incident>(&Value::object([("title", 3.0)])).unwrap_err();
    assert!(err.to_string().contains("invalid type"), "{err}");
    #[derive(Serialize)]
    struct Bad {
        #[serde(rename = "$bad")]
        x: i64,
    }
    let err = to_value(&Bad { x: 1 }).unwrap_err();
    assert!(err.to_string().contains("$bad"), "{err}");
    let keyed = BTreeMap::from([(vec![1u8], 1.0)]);
    assert!(to_value(&keyed)
        .unwrap_err()
        .to_string()
        .contains("keys must be strings"));
    assert_eq!(
        to_value(&BTreeMap::from([(3, true)])).unwrap(),
        Value::object([("3", true)])
    );
}
