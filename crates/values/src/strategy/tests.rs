//! Property tests over the whole crate: encodings round trip, the order is total, Ids round trip,
//! validators accept what they describe.

use std::cmp::Ordering;

use proptest::prelude::*;

use super::*;
use crate::json::{from_clean_json, from_encoded_json, to_clean_json, to_encoded_json};
use crate::{serde_bridge, Format};

/// Clean JSON loses int64, bytes and non-finite floats; everything else must survive it.
fn clean_safe(value: &Value) -> bool {
    match value {
        Value::Int64(_) | Value::Bytes(_) => false,
        Value::Float64(f) => f.is_finite(),
        Value::Array(items) => items.iter().all(clean_safe),
        Value::Object(fields) => fields.values().all(clean_safe),
        _ => true,
    }
}

/// Exact equality, including the NaN payload, so round trips cannot hide a changed bit.
fn identical(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float64(x), Value::Float64(y)) => {
            x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| identical(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, a), (kb, b))| ka == kb && identical(a, b))
        }
        _ => a == b,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encoded_json_round_trips(value in arb_value()) {
        let json = to_encoded_json(&value);
        let back = from_encoded_json(&json).unwrap();
        prop_assert!(identical(&back, &value), "{} became {}", value, back);
        // And through text, as it travels on the wire.
        let text = Format::Encoded.encode_to_string(&value);
        let reparsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        let back = from_encoded_json(&reparsed).unwrap();
        prop_assert!(identical(&back, &value), "{} became {} via {}", value, back, text);
    }

    #[test]
    fn clean_json_round_trips_when_lossless(value in arb_clean_value()) {
        let text = serde_json::to_string(&to_clean_json(&value)).unwrap();
        let reparsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        let back = from_clean_json(&reparsed).unwrap();
        prop_assert!(identical(&back, &value), "{} became {} via {}", value, back, text);
    }

    #[test]
    fn total_cmp_is_a_total_order(a in arb_value(), b in arb_value(), c in arb_value()) {
        prop_assert_eq!(a.total_cmp(&a), Ordering::Equal);
        prop_assert_eq!(a.total_cmp(&a.clone()), Ordering::Equal);
        prop_assert_eq!(a.total_cmp(&b), b.total_cmp(&a).reverse());
        prop_assert_eq!(a == b, a.total_cmp(&b) == Ordering::Equal);
        let mut sorted = [a, b, c];
        sorted.sort();
        prop_assert!(sorted[0] <= sorted[1] && sorted[1] <= sorted[2]);
        prop_assert!(sorted[0] <= sorted[2], "transitivity");
    }

    #[test]
    fn clean_strategy_is_clean(value in arb_clean_value()) {
        prop_assert!(clean_safe(&value));
    }

    #[test]
    fn equal_values_encode_equally(a in arb_value(), b in arb_value()) {
        if a == b {
            prop_assert_eq!(Format::Encoded.encode_to_string(&a), Format::Encoded.encode_to_string(&b));
        }
    }

    #[test]
    fn document_ids_round_trip(id in arb_document_id()) {
        let text = id.encode();
        prop_assert_eq!(DocumentId::decode(&text).unwrap(), id);
        if id.table_number >= 10001 && id.table_number < 1 << 14 {
            prop_assert_eq!(text.len(), 32);
        }
    }

    #[test]
    fn mutated_ids_are_rejected(id in arb_document_id(), position in any::<prop::sample::Index>(), digit in 0usize..32) {
        let text = id.encode();
        let i = position.index(text.len());
        let replacement = b"0123456789abcdefghjkmnpqrstvwxyz"[digit];
        prop_assume!(text.as_bytes()[i] != replacement);
        let mut mutated = text.into_bytes();
        mutated[i] = replacement;
        prop_assert!(DocumentId::decode(std::str::from_utf8(&mutated).unwrap()).is_err());
    }

    #[test]
    fn id_decode_never_panics(text in "[0-9a-zA-Z]{0,40}") {
        let _ = DocumentId::decode(&text);
    }

    #[test]
    fn validators_accept_their_values(
        (validator, value) in arb_validator().prop_flat_map(|v| {
            let values = arb_value_for(&v, &test_tables());
            (Just(v), values)
        })
    ) {
        let tables = test_tables();
        if let Err(e) = validator.check(&value, &tables) {
            prop_assert!(false, "{} rejected {}: {}", validator, value, e);
        }
    }

    #[test]
    fn validator_json_round_trips(validator in arb_validator()) {
        prop_assert_eq!(Validator::from_json(&validator.to_json()).unwrap(), validator);
    }

    #[test]
    fn serde_bridge_keeps_values(value in arb_clean_value()) {
        // `serde_json::Value` has no int64 distinct from numbers, bytes or non-finite floats.
        let json: serde_json::Value = serde_bridge::from_value(&value).unwrap();
        let back = serde_bridge::to_value(&json).unwrap();
        prop_assert!(identical(&back, &value), "{} became {}", value, back);
    }
}
