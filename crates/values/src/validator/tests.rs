//! Checking values, error messages, and the §D JSON form.

use serde_json::json;

use super::*;

fn tables(name: &str) -> Option<u32> {
    match name {
        "users" => Some(10001),
        "incidents" => Some(10002),
        _ => None,
    }
}

fn check(validator: &Validator, value: &Value) -> Result<(), ValidationError> {
    validator.check(value, &tables)
}

#[test]
fn scalars() {
    let cases = [
        (v::string(), Value::from("x"), Value::Float64(1.0)),
        (v::number(), Value::Float64(f64::NAN), Value::Int64(1)),
        (v::int64(), Value::Int64(1), Value::Float64(1.0)),
        (v::boolean(), Value::from(false), Value::Null),
        (v::null(), Value::Null, Value::from(false)),
        (v::bytes(), Value::Bytes(vec![]), Value::from("")),
        (v::literal("a"), Value::from("a"), Value::from("b")),
        (v::literal(2.0), Value::Float64(2.0), Value::Int64(2)),
    ];
    for (validator, good, bad) in cases {
        assert!(
            check(&validator, &good).is_ok(),
            "{validator} should accept {good}"
        );
        assert!(
            check(&validator, &bad).is_err(),
            "{validator} should reject {bad}"
        );
    }
    assert!(check(&v::any(), &Value::Bytes(vec![1])).is_ok());
}

#[test]
fn message_names_path_value_and_validator() {
    let validator = v::object([("email", v::string())]);
    let err = check(&validator, &Value::object([("email", 12.0)])).unwrap_err();
    assert_eq!(
        err.message,
        "Value does not match validator. Path: .email. Value: 12. Validator: v.string()"
    );
    assert_eq!(err.path, ".email");
    let err = check(&v::string(), &Value::Int64(3)).unwrap_err();
    assert_eq!(
        err.message,
        "Value does not match validator. Value: 3n. Validator: v.string()"
    );
    assert_eq!(err.path, "");
}

#[test]
fn nested_paths() {
    let validator = v::object([("a", v::object([("b", v::array(v::number()))]))]);
    let value = Value::object([(
        "a",
        Value::object([(
            "b",
            Value::Array(vec![1.0.into(), 2.0.into(), 3.0.into(), "x".into()]),
        )]),
    )]);
    assert_eq!(check(&validator, &value).unwrap_err().path, ".a.b[3]");
}

#[test]
fn objects_missing_extra_optional() {
    let validator = v::object([
        ("x", v::string().into()),
        ("maybe", v::optional(v::number())),
    ]);
    assert!(check(&validator, &Value::object([("x", "s")])).is_ok());
    assert!(check(
        &validator,
        &Value::object([("x", Value::from("s")), ("maybe", 1.0.into())])
    )
    .is_ok());
    // Present but null is not absent.
    assert!(check(
        &validator,
        &Value::object([("x", Value::from("s")), ("maybe", Value::Null)])
    )
    .is_err());
    let err = check(&validator, &Value::object([("maybe", 1.0)])).unwrap_err();
    assert!(
        err.message
            .starts_with("Object is missing the required field `x`"),
        "{}",
        err.message
    );
    assert_eq!(err.path, ".x");
    let err = check(&validator, &Value::object([("x", "s"), ("y", "t")])).unwrap_err();
    assert!(
        err.message
            .starts_with("Object contains extra field `y` that is not in the validator."),
        "{}",
        err.message
    );
    assert!(check(&validator, &Value::Array(vec![])).is_err());
}

#[test]
fn ids_check_their_table() {
    let user = Value::from(DocumentId::new(10001));
    let incident = Value::from(DocumentId::new(10002));
    assert!(check(&v::id("users"), &user).is_ok());
    let err = check(&v::id("users"), &incident).unwrap_err();
    assert!(err.message.contains("different table"), "{}", err.message);
    let err = check(&v::id("nope"), &user).unwrap_err();
    assert!(err.message.contains("does not exist"), "{}", err.message);
    assert!(check(&v::id("users"), &Value::from("not-an-id")).is_err());
    assert!(check(&v::id("users"), &Value::Float64(1.0)).is_err());
}

#[test]
fn unions_and_records() {
    let validator = v::nullable(v::union(vec![v::literal("a"), v::literal("b")]));
    for ok in [Value::Null, "a".into(), "b".into()] {
        assert!(check(&validator, &ok).is_ok());
    }
    let err = check(&validator, &Value::from("c")).unwrap_err();
    assert!(
        err.message
            .contains(r#"v.union(v.union(v.literal("a"), v.literal("b")), v.null())"#),
        "{}",
        err.message
    );

    let scores = v::record(v::string(), v::number());
    assert!(check(&scores, &Value::object([("a", 1.0), ("b", 2.0)])).is_ok());
    assert_eq!(
        check(&scores, &Value::object([("a", "x")]))
            .unwrap_err()
            .path,
        ".a"
    );
    let by_user = v::record(v::id("users"), v::boolean());
    let err = check(&by_user, &Value::object([("nope", true)])).unwrap_err();
    assert!(
        err.message
            .starts_with("Record key does not match validator. Path: .nope."),
        "{}",
        err.message
    );
    let id = DocumentId::new(10001).encode();
    assert!(check(&by_user, &Value::object([(id.as_str(), true)])).is_ok());
}

#[test]
fn display_forms() {
    let validator = v::object([
        ("a", v::id("users").into()),
        ("b", v::optional(v::array(v::int64()))),
        (
            "c",
            v::record(v::string(), v::literal(Value::Int64(3))).into(),
        ),
        (
            "d",
            v::union(vec![v::bytes(), v::any(), v::boolean()]).into(),
        ),
    ]);
    assert_eq!(
        validator.to_string(),
        r#"v.object({a: v.id("users"), b: v.optional(v.array(v.int64())), c: v.record(v.string(), v.literal(3n)), d: v.union(v.bytes(), v.any(), v.boolean())})"#
    );
}

#[test]
fn json_form_matches_protocol() {
    assert_eq!(v::number().to_json(), json!({"type": "number"}));
    assert_eq!(v::float64().to_json(), json!({"type": "number"}));
    assert_eq!(v::int64().to_json(), json!({"type": "bigint"}));
    assert_eq!(
        v::id("t").to_json(),
        json!({"type": "id", "tableName": "t"})
    );
    assert_eq!(
        v::literal(Value::Int64(42)).to_json(),
        json!({"type": "literal", "value": {"$integer": "KgAAAAAAAAA="}})
    );
    assert_eq!(
        v::array(v::null()).to_json(),
        json!({"type": "array", "value": {"type": "null"}})
    );
    assert_eq!(
        v::object([("k", v::optional(v::string()))]).to_json(),
        json!({"type": "object", "value": {"k": {"fieldType": {"type": "string"}, "optional": true}}})
    );
    assert_eq!(
        v::nullable(v::boolean()).to_json(),
        json!({"type": "union", "value": [{"type": "boolean"}, {"type": "null"}]})
    );
    assert_eq!(
        v::record(v::string(), v::bytes()).to_json(),
        json!({"type": "record", "keys": {"type": "string"},
               "values": {"fieldType": {"type": "bytes"}, "optional": false}})
    );
}

#[test]
fn json_round_trip_and_errors() {
    let validator = v::object([
        ("a", v::id("users").into()),
        ("b", v::optional(v::array(v::int64()))),
        (
            "c",
            v::record(v::string(), v::literal(Value::Float64(-0.0))).into(),
        ),
        (
            "d",
            v::nullable(v::union(vec![v::bytes(), v::any(), v::boolean()])).into(),
        ),
    ]);
    assert_eq!(
        Validator::from_json(&validator.to_json()).unwrap(),
        validator
    );
    let err = Validator::from_json(
        &json!({"type": "object", "value": {"x": {"fieldType": {"type": "wat"}}}}),
    );
    assert_eq!(
        err.unwrap_err(),
        r#"validator.value.x.fieldType: unknown validator type "wat""#
    );
    assert!(Validator::from_json(&json!({"type": "id"}))
        .unwrap_err()
        .contains("tableName"));
    assert!(Validator::from_json(&json!("string")).is_err());
    assert!(Validator::from_json(&json!({"type": "literal", "value": {"$set": []}})).is_err());
}
