//! Convex-format document Ids (protocol §D): varint table number ‖ 16 internal bytes ‖ fletcher16
//! footer, in Crockford-like base32 (`0123456789abcdefghjkmnpqrstvwxyz`). User tables are numbered
//! from 10001. Internal bytes are random, or a 48-bit millisecond clock then 80 random bits.

use std::fmt;
use std::str::FromStr;

use crate::ValueError;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const INTERNAL_LEN: usize = 16;
const FOOTER_LEN: usize = 2;
/// A u32 takes at most 5 LEB128 bytes.
const MAX_VARINT_LEN: usize = 5;
const MIN_BYTES: usize = 1 + INTERNAL_LEN + FOOTER_LEN;
const MAX_BYTES: usize = MAX_VARINT_LEN + INTERNAL_LEN + FOOTER_LEN;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentId {
    pub table_number: u32,
    pub internal: [u8; 16],
}

impl DocumentId {
    /// A fresh Id of 128 random bits in the given table.
    pub fn new(table_number: u32) -> DocumentId {
        DocumentId {
            table_number,
            internal: rand::random(),
        }
    }

    /// A fresh Id whose internal bytes start with the wall clock in ms, then 80 random bits. Ids
    /// made later sort later (to the ms), so id-keyed B-trees grow at their right edge instead of
    /// dirtying a random page per insert. The time adds nothing a client cannot already see
    /// (`_creationTime`), and 80 bits stay unguessable.
    pub fn new_time_ordered(table_number: u32) -> DocumentId {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let mut internal = [0u8; INTERNAL_LEN];
        internal[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
        internal[6..].copy_from_slice(&rand::random::<[u8; 10]>());
        DocumentId {
            table_number,
            internal,
        }
    }
    /// The 32-character string form (for user tables).
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(MAX_BYTES);
        let mut n = self.table_number;
        loop {
            let low = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                bytes.push(low);
                break;
            }
            bytes.push(low | 0x80);
        }
        bytes.extend_from_slice(&self.internal);
        let footer = fletcher16(&bytes);
        bytes.extend_from_slice(&footer.to_le_bytes());
        base32_encode(&bytes)
    }
    /// Parses and checks the footer; rejects any non-canonical encoding.
    pub fn decode(s: &str) -> Result<DocumentId, ValueError> {
        let invalid =
            |why: &str| ValueError::Invalid(format!("Invalid document Id {:?}: {why}", shorten(s)));
        let (min, max) = (base32_len(MIN_BYTES), base32_len(MAX_BYTES));
        if s.len() < min || s.len() > max {
            return Err(invalid(&format!(
                "expected {min} to {max} characters, found {}",
                s.len()
            )));
        }
        let bytes = base32_decode(s).map_err(&invalid)?;
        let (table_number, varint_len) = read_varint(&bytes).map_err(&invalid)?;
        let rest = &bytes[varint_len..];
        if rest.len() != INTERNAL_LEN + FOOTER_LEN {
            return Err(invalid("wrong length for its table number"));
        }
        let (body, footer) = bytes.split_at(bytes.len() - FOOTER_LEN);
        if u16::from_le_bytes([footer[0], footer[1]]) != fletcher16(body) {
            return Err(invalid("checksum does not match"));
        }
        let internal = rest[..INTERNAL_LEN]
            .try_into()
            .expect("length checked above");
        Ok(DocumentId {
            table_number,
            internal,
        })
    }
}

/// Two running sums mod 256: c0 over the bytes, c1 over c0. Returns `(c1 << 8) | c0`.
fn fletcher16(bytes: &[u8]) -> u16 {
    let (mut c0, mut c1) = (0u8, 0u8);
    for &b in bytes {
        c0 = c0.wrapping_add(b);
        c1 = c1.wrapping_add(c0);
    }
    (u16::from(c1) << 8) | u16::from(c0)
}

/// Reads a canonical LEB128 u32; returns it and how many bytes it took.
fn read_varint(bytes: &[u8]) -> Result<(u32, usize), &'static str> {
    let mut value: u64 = 0;
    for (i, &b) in bytes.iter().take(MAX_VARINT_LEN).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            // A zero final byte after others is a padded, non-canonical varint.
            if b == 0 && i > 0 {
                return Err("table number is not minimally encoded");
            }
            let n = u32::try_from(value).map_err(|_| "table number is too large")?;
            return Ok((n, i + 1));
        }
    }
    Err("table number is too large")
}

/// Characters needed for `n` bytes: one per 5 bits, rounded up.
fn base32_len(n: usize) -> usize {
    (n * 8).div_ceil(5)
}

fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(base32_len(bytes.len()));
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

fn base32_decode(s: &str) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let digit = ALPHABET
            .iter()
            .position(|&a| a == c)
            .ok_or("contains a character outside the base32 alphabet")?;
        buffer = (buffer << 5) | digit as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    // Five or more leftover bits would be a whole unused character; set leftover bits would be
    // ignored data. Either way the string is not the canonical encoding of any bytes.
    if bits >= 5 {
        return Err("has a length that no byte string encodes to");
    }
    if buffer & ((1 << bits) - 1) != 0 {
        return Err("has non-zero trailing bits");
    }
    Ok(out)
}

fn shorten(s: &str) -> String {
    s.chars().take(48).collect()
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

impl fmt::Debug for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

impl FromStr for DocumentId {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<DocumentId, ValueError> {
        DocumentId::decode(s)
    }
}

/// Serde uses the string form, as clients see it.
impl serde::Serialize for DocumentId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.encode())
    }
}

impl<'de> serde::Deserialize<'de> for DocumentId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<DocumentId, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DocumentId::decode(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "j570pc2nfafw9t8e6dc7v8p7xg8kdsw0";

    #[test]
    fn example_from_the_protocol_doc_decodes() {
        let id = DocumentId::decode(EXAMPLE).unwrap();
        assert_eq!(id.table_number, 10001, "the first user table");
        assert_eq!(id.encode(), EXAMPLE);
        assert_eq!(EXAMPLE.len(), 32);
    }

    #[test]
    fn round_trip_and_lengths() {
        for table_number in [0, 1, 127, 128, 9999, 10001, 16383, 16384, u32::MAX] {
            let id = DocumentId::new(table_number);
            let s = id.encode();
            assert_eq!(DocumentId::decode(&s).unwrap(), id, "{s}");
            assert_eq!(s.parse::<DocumentId>().unwrap(), id);
            assert_eq!(format!("{id}"), s);
            assert_eq!(format!("{id:?}"), s);
        }
        assert_eq!(DocumentId::new(10001).encode().len(), 32);
        assert_eq!(DocumentId::new(5).encode().len(), 31);
    }

    #[test]
    fn fletcher16_matches_definition() {
        assert_eq!(fletcher16(&[]), 0);
        assert_eq!(fletcher16(&[1, 2]), (4 << 8) | 3);
        // c0: 200, then 300 mod 256 = 44; c1: 200, then 244.
        assert_eq!(fletcher16(&[200, 100]), (244 << 8) | 44);
    }

    #[test]
    fn rejects_non_canonical_strings() {
        let bad = [
            "",
            &EXAMPLE[..31],
            &format!("{EXAMPLE}0"),
            &EXAMPLE.to_uppercase(),
            &EXAMPLE.replacen('j', "i", 1),
            &EXAMPLE.replacen('j', "u", 1),
            &format!("{}1", &EXAMPLE[..31]),
        ];
        for s in bad {
            assert!(DocumentId::decode(s).is_err(), "{s:?} should be rejected");
        }
        // A varint padded with a zero continuation byte is not canonical even with a good footer.
        let mut padded = vec![0x80 | 5, 0x00];
        padded.extend_from_slice(&[9; 16]);
        let footer = fletcher16(&padded);
        padded.extend_from_slice(&footer.to_le_bytes());
        assert!(DocumentId::decode(&base32_encode(&padded)).is_err());
        // Non-zero trailing bits: a 19-byte id is 31 chars with 3 unused bits.
        let short = DocumentId::new(5).encode();
        let last = short.as_bytes()[30];
        let pos = ALPHABET.iter().position(|&a| a == last).unwrap();
        let tweaked = format!("{}{}", &short[..30], ALPHABET[pos ^ 1] as char);
        assert!(DocumentId::decode(&tweaked)
            .unwrap_err()
            .to_string()
            .contains("trailing bits"));
    }

    #[test]
    fn every_single_character_change_is_rejected() {
        let s = DocumentId {
            table_number: 10001,
            internal: *b"0123456789abcdef",
        }
        .encode();
        for i in 0..s.len() {
            for &c in ALPHABET {
                if s.as_bytes()[i] == c {
                    continue;
                }
                let mut mutated = s.clone().into_bytes();
                mutated[i] = c;
                let mutated = String::from_utf8(mutated).unwrap();
                assert!(DocumentId::decode(&mutated).is_err(), "{mutated} accepted");
            }
        }
    }

    #[test]
    fn later_time_ordered_ids_sort_after_earlier_ones_and_stay_distinct() {
        let first = DocumentId::new_time_ordered(10001);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let later: Vec<DocumentId> = (0..1000)
            .map(|_| DocumentId::new_time_ordered(10001))
            .collect();
        assert!(later.iter().all(|id| id.internal > first.internal));
        let distinct: std::collections::HashSet<_> = later.iter().collect();
        assert_eq!(distinct.len(), later.len(), "80 random bits per ms");
    }

    #[test]
    fn serde_uses_the_string() {
        let id = DocumentId::new(10002);
        let json = serde_json::to_value(id).unwrap();
        assert_eq!(json, serde_json::Value::String(id.encode()));
        assert_eq!(serde_json::from_value::<DocumentId>(json).unwrap(), id);
    }
}
