//! Derived validators agree with what serde writes, and with the validators written by hand.

use serde::{Deserialize, Serialize};

use crate::serde_bridge::{from_value, to_value};
use crate::validator::v;
use crate::{Nullable, Typed, Validator, Value};

#[derive(Serialize, Deserialize, Typed, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
struct Args {
    participant_id: String,
    #[typed(id = "sites")]
    site_id: Option<String>,
    #[serde(rename = "support_level")]
    level: Level,
    tags: Vec<String>,
    limit: Option<u32>,
    big: i64,
    note: Nullable<String>,
    extra: Value,
    #[serde(skip)]
    cache: u8,
    #[typed(validator = v::union(vec![v::literal("a"), v::literal("b")]))]
    pick: Option<String>,
    #[serde(flatten)]
    page: Page,
}

#[derive(Serialize, Deserialize, Typed, Debug, PartialEq, Default)]
struct Page {
    cursor: Option<String>,
}

#[derive(Serialize, Deserialize, Typed, Debug, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Level {
    Standard,
    HighNeeds,
}

#[derive(Serialize, Deserialize, Typed, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Event {
    Created { by: String },
    Deleted,
}

#[derive(Serialize, Typed)]
struct Wrapper<T> {
    items: Vec<T>,
}

fn tables(name: &str) -> Option<u32> {
    (name == "sites").then_some(10_001)
}

#[test]
fn struct_validator_follows_serde_names_and_options() {
    let expected = v::object([
        ("participantId", v::string().into()),
        ("siteId", v::optional(v::id("sites"))),
        (
            "support_level",
            v::union(vec![v::literal("standard"), v::literal("high_needs")]).into(),
        ),
        ("tags", v::array(v::string()).into()),
        ("limit", v::optional(v::number())),
        ("big", v::int64().into()),
        ("note", v::nullable(v::string()).into()),
        ("extra", v::any().into()),
        (
            "pick",
            v::optional(v::union(vec![v::literal("a"), v::literal("b")])),
        ),
        ("cursor", v::optional(v::string())),
        ("sessionToken", v::optional(v::string())),
    ]);
    assert_eq!(Args::validator(), expected);
}

#[test]
fn serialized_values_pass_their_own_validator() {
    let args = Args {
        participant_id: "p".into(),
        site_id: None,
        level: Level::HighNeeds,
        tags: vec!["x".into()],
        limit: Some(3),
        big: 1 << 60,
        note: Nullable::null(),
        extra: Value::object([("free", 1.0)]),
        cache: 0,
        pick: Some("b".into()),
        page: Page::default(),
    };
    let value = to_value(&args).unwrap();
    Args::validator().check(&value, &tables).unwrap();
    assert_eq!(from_value::<Args>(&value).unwrap(), args);

    let created = to_value(&Event::Created { by: "kim".into() }).unwrap();
    Event::validator().check(&created, &tables).unwrap();
    let deleted = to_value(&Event::Deleted).unwrap();
    Event::validator().check(&deleted, &tables).unwrap();
    assert_eq!(
        Event::validator(),
        v::union(vec![
            v::object([("by", v::string()), ("kind", v::literal("created"))]),
            v::object([("kind", v::literal("deleted"))]),
        ])
    );

    let wrapped = to_value(&Wrapper {
        items: vec![1.5f64],
    })
    .unwrap();
    Wrapper::<f64>::validator()
        .check(&wrapped, &tables)
        .unwrap();
    assert!(matches!(Wrapper::<f64>::validator(), Validator::Object(_)));
}

#[test]
fn a_value_that_disagrees_with_the_type_fails_its_validator() {
    // A hand-built value with a null where the type says "optional": the validator refuses it, as
    // Convex refuses null for `v.optional`.
    let value = Value::object([("cursor", Value::Null)]);
    assert!(Page::validator().check(&value, &tables).is_err());
}
