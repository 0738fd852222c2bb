//! Order-preserving byte encoding of values for index keys: comparing encodings byte-wise gives the
//! same order as `Value::total_cmp`, and every encoding is prefix-free, so one range scan path serves
//! equality prefixes and ranges on every backend.

use values::{DocumentId, Value};

// Type tags, in Convex's cross-type order. `END` closes arrays and objects and sorts below every tag,
// so a shorter sequence sorts before any longer one that extends it.
const END: u8 = 0x00;
const ABSENT: u8 = 0x01;
const NULL: u8 = 0x02;
const INT64: u8 = 0x03;
const FLOAT64: u8 = 0x04;
const BOOLEAN: u8 = 0x05;
const STRING: u8 = 0x06;
const BYTES: u8 = 0x07;
const ARRAY: u8 = 0x08;
const OBJECT: u8 = 0x09;
/// Starts each object entry; above `END` so `{}` sorts before `{"": ...}`.
const ENTRY: u8 = 0x01;

/// Length of the raw Id form used in keys and as the documents' primary key.
pub const ID_BYTES: usize = 20;

/// Appends the encoding of `value` (or of an absent field when `None`, which sorts before null).
pub fn encode_value(value: Option<&Value>, out: &mut Vec<u8>) {
    let Some(value) = value else {
        out.push(ABSENT);
        return;
    };
    match value {
        Value::Null => out.push(NULL),
        Value::Int64(i) => {
            out.push(INT64);
            // Flipping the sign bit makes two's complement sort as unsigned big-endian.
            out.extend_from_slice(&((*i as u64) ^ (1 << 63)).to_be_bytes());
        }
        Value::Float64(f) => {
            out.push(FLOAT64);
            out.extend_from_slice(&float_key(*f).to_be_bytes());
        }
        Value::Boolean(b) => {
            out.push(BOOLEAN);
            out.push(u8::from(*b));
        }
        Value::String(s) => {
            out.push(STRING);
            encode_escaped(s.as_bytes(), out);
        }
        Value::Bytes(b) => {
            out.push(BYTES);
            encode_escaped(b, out);
        }
        Value::Array(items) => {
            out.push(ARRAY);
            for item in items {
                encode_value(Some(item), out);
            }
            out.push(END);
        }
        Value::Object(fields) => {
            out.push(OBJECT);
            for (name, field) in fields {
                out.push(ENTRY);
                encode_escaped(name.as_bytes(), out);
                encode_value(Some(field), out);
            }
            out.push(END);
        }
    }
}

/// The encoding of one value, as a new vector.
pub fn encode_one(value: Option<&Value>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_value(value, &mut out);
    out
}

/// Maps a float to an unsigned integer with the same order as IEEE total order; every NaN maps to
/// the canonical positive NaN because `Value::total_cmp` treats all NaNs as one value above +Inf.
fn float_key(f: f64) -> u64 {
    let f = if f.is_nan() { f64::NAN } else { f };
    let bits = f.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits ^ (1 << 63)
    }
}

/// 0x00 becomes 0x00 0xFF and the string ends with 0x00 0x00, so no encoding is a prefix of another
/// and byte order is preserved.
fn encode_escaped(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x00]);
}

/// The smallest byte string greater than every string that starts with `prefix`; `None` when no such
/// string exists (all bytes 0xFF).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let keep = prefix.iter().rposition(|&b| b != 0xFF)?;
    let mut out = prefix[..=keep].to_vec();
    out[keep] += 1;
    Some(out)
}

/// The smallest byte string greater than `key` itself (an exclusive bound just after it).
pub fn key_successor(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 1);
    out.extend_from_slice(key);
    out.push(0x00);
    out
}

/// The raw form of an Id: big-endian table number, then the 16 internal bytes. Ids of one table thus
/// share a prefix, and the form has a fixed length, so it can end a key without a terminator.
pub fn id_bytes(id: &DocumentId) -> [u8; ID_BYTES] {
    let mut out = [0u8; ID_BYTES];
    out[..4].copy_from_slice(&id.table_number.to_be_bytes());
    out[4..].copy_from_slice(&id.internal);
    out
}

/// The inverse of `id_bytes`; `None` for a wrong length.
pub fn id_from_bytes(bytes: &[u8]) -> Option<DocumentId> {
    if bytes.len() != ID_BYTES {
        return None;
    }
    let table_number = u32::from_be_bytes(bytes[..4].try_into().ok()?);
    let internal = bytes[4..].try_into().ok()?;
    Some(DocumentId {
        table_number,
        internal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Ordering;

    fn value_strategy() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::Int64),
            prop_oneof![
                any::<f64>(),
                Just(f64::NAN),
                Just(-f64::NAN),
                Just(0.0),
                Just(-0.0),
                Just(f64::INFINITY),
                Just(f64::NEG_INFINITY)
            ]
            .prop_map(Value::Float64),
            any::<bool>().prop_map(Value::Boolean),
            "[a\\x00b\\u{e9}\\u{1F600}]{0,4}".prop_map(Value::String),
            proptest::collection::vec(
                prop_oneof![Just(0u8), Just(1u8), Just(0xFFu8), any::<u8>()],
                0..4
            )
            .prop_map(Value::Bytes),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[ab]{0,2}", inner, 0..3).prop_map(Value::Object),
            ]
        })
    }

    fn opt_value() -> impl Strategy<Value = Option<Value>> {
        prop_oneof![1 => Just(None), 8 => value_strategy().prop_map(Some)]
    }

    fn cmp_opt(a: &Option<Value>, b: &Option<Value>) -> Ordering {
        match (a, b) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(a), Some(b)) => a.total_cmp(b),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn byte_order_is_value_order(a in opt_value(), b in opt_value()) {
            let (ea, eb) = (encode_one(a.as_ref()), encode_one(b.as_ref()));
            prop_assert_eq!(ea.cmp(&eb), cmp_opt(&a, &b), "{:?} vs {:?}", a, b);
        }

        #[test]
        fn byte_order_matches_for_the_values_crate_strategy(a in values::strategy::arb_value(), b in values::strategy::arb_value()) {
            let (ea, eb) = (encode_one(Some(&a)), encode_one(Some(&b)));
            prop_assert_eq!(ea.cmp(&eb), a.total_cmp(&b), "{:?} vs {:?}", a, b);
            prop_assert!(ea == eb || !(ea.starts_with(&eb) || eb.starts_with(&ea)));
        }

        #[test]
        fn encodings_are_prefix_free(a in opt_value(), b in opt_value()) {
            let (ea, eb) = (encode_one(a.as_ref()), encode_one(b.as_ref()));
            if ea != eb {
                prop_assert!(!eb.starts_with(&ea) && !ea.starts_with(&eb), "{:?} vs {:?}", a, b);
            }
        }

        #[test]
        fn tuples_order_lexicographically(a in proptest::collection::vec(opt_value(), 0..3),
                                          b in proptest::collection::vec(opt_value(), 0..3)) {
            // Index keys concatenate several encodings; prefix-freeness makes that a tuple order.
            let enc = |t: &[Option<Value>]| t.iter().flat_map(|v| encode_one(v.as_ref())).collect::<Vec<u8>>();
            let expected = a.iter().zip(&b).map(|(x, y)| cmp_opt(x, y)).find(|o| o.is_ne())
                .unwrap_or_else(|| a.len().cmp(&b.len()));
            prop_assert_eq!(enc(&a).cmp(&enc(&b)), expected);
        }

        #[test]
        fn successor_bounds_every_extension(prefix in proptest::collection::vec(any::<u8>(), 0..6),
                                            tail in proptest::collection::vec(any::<u8>(), 0..4)) {
            let mut extended = prefix.clone();
            extended.extend_from_slice(&tail);
            match prefix_successor(&prefix) {
                Some(succ) => prop_assert!(extended < succ && prefix < succ),
                None => prop_assert!(prefix.iter().all(|&b| b == 0xFF)),
            }
        }
    }

    #[test]
    fn successor_examples() {
        assert_eq!(prefix_successor(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_successor(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_successor(&[]), None);
    }

    #[test]
    fn id_bytes_round_trip() {
        let id = DocumentId {
            table_number: 10001,
            internal: [7; 16],
        };
        assert_eq!(id_from_bytes(&id_bytes(&id)), Some(id));
        assert_eq!(id_from_bytes(&[1, 2, 3]), None);
    }
}
