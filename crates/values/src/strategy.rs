//! Proptest strategies for values, field names, Ids and validators, for this crate's property tests
//! and for other crates' (enable the `proptest` feature).

use std::collections::BTreeMap;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

use crate::validator::TableNumbers;
use crate::{DocumentId, FieldValidator, Object, Validator, Value};

/// Floats with the awkward ones (NaN, ±Inf, ±0, extremes) much more likely than chance.
pub fn arb_f64() -> BoxedStrategy<f64> {
    prop_oneof![
        4 => any::<f64>(),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(-0.0),
        1 => Just(0.0),
        1 => Just(f64::MAX),
        1 => Just(f64::MIN_POSITIVE),
        2 => (-1000i32..1000).prop_map(f64::from),
    ]
    .boxed()
}

/// Integers with the extremes and small numbers more likely than chance.
pub fn arb_i64() -> BoxedStrategy<i64> {
    prop_oneof![4 => any::<i64>(), 1 => Just(i64::MIN), 1 => Just(i64::MAX), 2 => -5i64..5].boxed()
}

/// Valid wire field names: printable ASCII, not starting with `$` (may be empty or start with `_`).
pub fn arb_field_name() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[a-z_][a-zA-Z0-9_]{0,6}",
        1 => "([ -#%-~][ -~]{0,6})?",
    ]
    .boxed()
}

/// Scalars only.
pub fn arb_scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        arb_i64().prop_map(Value::Int64),
        arb_f64().prop_map(Value::Float64),
        any::<bool>().prop_map(Value::Boolean),
        ".{0,8}".prop_map(Value::String),
        vec(any::<u8>(), 0..8).prop_map(Value::Bytes),
    ]
    .boxed()
}

/// Any value, at most `max_depth` levels deep, with valid field names.
pub fn arb_value_with_depth(max_depth: u32) -> BoxedStrategy<Value> {
    arb_scalar()
        .prop_recursive(max_depth, 64, 6, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..6).prop_map(Value::Array),
                btree_map(arb_field_name(), inner, 0..6).prop_map(Value::Object),
            ]
        })
        .boxed()
}

/// Any value, at most four levels deep.
pub fn arb_value() -> BoxedStrategy<Value> {
    arb_value_with_depth(4)
}

/// Values that survive clean JSON and `serde_json::Value`: no int64, no bytes, only finite floats.
pub fn arb_clean_value() -> BoxedStrategy<Value> {
    let finite = arb_f64().prop_filter("finite", |f| f.is_finite());
    let scalar = prop_oneof![
        Just(Value::Null),
        finite.prop_map(Value::Float64),
        any::<bool>().prop_map(Value::Boolean),
        ".{0,8}".prop_map(Value::String),
    ];
    scalar
        .prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..6).prop_map(Value::Array),
                btree_map(arb_field_name(), inner, 0..6).prop_map(Value::Object),
            ]
        })
        .boxed()
}

pub fn arb_document_id() -> BoxedStrategy<DocumentId> {
    (any::<u32>(), any::<[u8; 16]>())
        .prop_map(|(table_number, internal)| DocumentId {
            table_number,
            internal,
        })
        .boxed()
}

/// The tables `arb_validator` names in `v.id(...)`, with their numbers.
pub fn test_tables() -> BTreeMap<String, u32> {
    BTreeMap::from([("users".to_owned(), 10001), ("incidents".to_owned(), 10002)])
}

fn arb_table() -> impl Strategy<Value = String> {
    prop_oneof![Just("users".to_owned()), Just("incidents".to_owned())]
}

/// Validators whose Ids name tables in `test_tables()`. Unions are never empty.
pub fn arb_validator() -> BoxedStrategy<Validator> {
    let leaf = prop_oneof![
        Just(Validator::Any),
        Just(Validator::Null),
        Just(Validator::Float64),
        Just(Validator::Int64),
        Just(Validator::Boolean),
        Just(Validator::String),
        Just(Validator::Bytes),
        arb_table().prop_map(Validator::Id),
        arb_scalar().prop_map(Validator::Literal),
    ];
    let record_key = prop_oneof![
        Just(Validator::String),
        arb_table().prop_map(Validator::Id),
        arb_field_name().prop_map(|name| Validator::Literal(Value::String(name))),
    ];
    leaf.prop_recursive(3, 32, 4, move |inner| {
        let field =
            (inner.clone(), any::<bool>()).prop_map(|(validator, optional)| FieldValidator {
                validator,
                optional,
            });
        prop_oneof![
            inner.clone().prop_map(|e| Validator::Array(Box::new(e))),
            btree_map(arb_field_name(), field, 0..4).prop_map(Validator::Object),
            vec(inner.clone(), 1..4).prop_map(Validator::Union),
            (record_key.clone(), inner)
                .prop_map(|(k, v)| Validator::Record(Box::new(k), Box::new(v))),
        ]
    })
    .boxed()
}

/// Values that `validator` accepts, given the same `tables`. An Id of an unknown table, or an empty
/// union, has no valid value; those produce null, which the validator then rejects.
pub fn arb_value_for(validator: &Validator, tables: &dyn TableNumbers) -> BoxedStrategy<Value> {
    match validator {
        Validator::Any => arb_value_with_depth(2),
        Validator::Null => Just(Value::Null).boxed(),
        Validator::Float64 => arb_f64().prop_map(Value::Float64).boxed(),
        Validator::Int64 => arb_i64().prop_map(Value::Int64).boxed(),
        Validator::Boolean => any::<bool>().prop_map(Value::Boolean).boxed(),
        Validator::String => ".{0,8}".prop_map(Value::String).boxed(),
        Validator::Bytes => vec(any::<u8>(), 0..8).prop_map(Value::Bytes).boxed(),
        Validator::Id(table) => match tables.table_number(table) {
            Some(table_number) => any::<[u8; 16]>()
                .prop_map(move |internal| {
                    Value::from(DocumentId {
                        table_number,
                        internal,
                    })
                })
                .boxed(),
            None => Just(Value::Null).boxed(),
        },
        Validator::Literal(value) => Just(value.clone()).boxed(),
        Validator::Array(element) => vec(arb_value_for(element, tables), 0..4)
            .prop_map(Value::Array)
            .boxed(),
        Validator::Object(fields) => {
            let fields: Vec<_> = fields
                .iter()
                .map(|(name, field)| {
                    let name = name.clone();
                    let value = arb_value_for(&field.validator, tables);
                    let value = if field.optional {
                        proptest::option::of(value).boxed()
                    } else {
                        value.prop_map(Some).boxed()
                    };
                    value.prop_map(move |v| v.map(|v| (name.clone(), v)))
                })
                .collect();
            fields
                .prop_map(|fields| Value::Object(fields.into_iter().flatten().collect()))
                .boxed()
        }
        Validator::Union(members) if members.is_empty() => Just(Value::Null).boxed(),
        Validator::Union(members) => {
            proptest::strategy::Union::new(members.iter().map(|m| arb_value_for(m, tables))).boxed()
        }
        Validator::Record(keys, values) => {
            let key =
                arb_value_for(keys, tables).prop_filter_map(
                    "record keys are strings",
                    |k| match k {
                        Value::String(s) => Some(s),
                        _ => None,
                    },
                );
            vec((key, arb_value_for(values, tables)), 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Object>()))
                .boxed()
        }
    }
}

#[cfg(test)]
mod tests;
