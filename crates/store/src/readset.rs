//! Read sets (index key ranges a transaction read) and write sets (index keys a commit changed), and
//! their intersection test, which decides which live queries a commit can affect.

use crate::keys::key_successor;

/// Index ids are assigned by the store's catalog and stable across restarts.
pub type IndexId = u32;

/// A half-open key range `[start, end)`; `end = None` means unbounded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRange {
    pub start: Vec<u8>,
    pub end: Option<Vec<u8>>,
}

impl KeyRange {
    /// The range holding exactly `key`.
    pub fn point(key: &[u8]) -> KeyRange {
        KeyRange {
            start: key.to_vec(),
            end: Some(key_successor(key)),
        }
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.start.as_slice() && self.end.as_deref().is_none_or(|end| key < end)
    }

    /// True when no key lies in the range.
    pub fn is_empty(&self) -> bool {
        self.end
            .as_deref()
            .is_some_and(|end| end <= self.start.as_slice())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadSet {
    pub ranges: Vec<(IndexId, KeyRange)>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteSet {
    /// For every written document: its old and new key in every index of its table.
    pub keys: Vec<(IndexId, Vec<u8>)>,
}

impl ReadSet {
    /// True when some written key falls in some read range, i.e. re-running the reader could give a
    /// different result.
    pub fn intersects(&self, writes: &WriteSet) -> bool {
        // Both sides are small for typical functions; a nested scan beats building an interval index.
        writes.keys.iter().any(|(index, key)| {
            self.ranges
                .iter()
                .any(|(read_index, range)| read_index == index && range.contains(key))
        })
    }

    /// Records a scanned range; empty ranges are dropped since no write can fall in them.
    pub fn record(&mut self, index: IndexId, range: KeyRange) {
        if !range.is_empty() {
            self.ranges.push((index, range));
        }
    }

    /// Adds every range of `other` (for functions that combine several transactions' reads).
    pub fn extend(&mut self, other: &ReadSet) {
        self.ranges.extend(other.ranges.iter().cloned());
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

impl WriteSet {
    pub fn record(&mut self, index: IndexId, key: Vec<u8>) {
        self.keys.push((index, key));
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Adds every key of `other`.
    pub fn extend(&mut self, other: &WriteSet) {
        self.keys.extend(other.keys.iter().cloned());
    }

    /// A compact binary form (PostgreSQL's commit log stores it): per key, the index id and the key
    /// length as big-endian u32, then the key.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.keys.iter().map(|(_, k)| k.len() + 8).sum());
        for (index, key) in &self.keys {
            out.extend_from_slice(&index.to_be_bytes());
            out.extend_from_slice(&(key.len() as u32).to_be_bytes());
            out.extend_from_slice(key);
        }
        out
    }

    /// The inverse of `to_bytes`; `None` for a truncated or malformed input.
    pub fn from_bytes(mut bytes: &[u8]) -> Option<WriteSet> {
        let mut keys = Vec::new();
        while !bytes.is_empty() {
            let index = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?);
            let len = u32::from_be_bytes(bytes.get(4..8)?.try_into().ok()?) as usize;
            keys.push((index, bytes.get(8..8 + len)?.to_vec()));
            bytes = &bytes[8 + len..];
        }
        Some(WriteSet { keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{encode_one, id_bytes, prefix_successor};
    use values::{DocumentId, Value};

    const BY_ID: IndexId = 1;
    const BY_STATUS: IndexId = 3;
    const BY_OTHER: IndexId = 4;

    fn status_key(status: &str, id: &DocumentId) -> Vec<u8> {
        let mut key = encode_one(Some(&Value::String(status.into())));
        key.extend(encode_one(Some(&Value::Float64(1.0))));
        key.extend(id_bytes(id));
        key
    }

    fn writes(keys: &[(IndexId, Vec<u8>)]) -> WriteSet {
        WriteSet {
            keys: keys.to_vec(),
        }
    }

    #[test]
    fn which_writes_touch_which_reads() {
        let doc = DocumentId {
            table_number: 10001,
            internal: [1; 16],
        };
        let other_doc = DocumentId {
            table_number: 10001,
            internal: [2; 16],
        };

        // A query for status == "open": the prefix range of that value in by_status.
        let open = encode_one(Some(&Value::String("open".into())));
        let mut by_status_open = ReadSet::default();
        by_status_open.record(
            BY_STATUS,
            KeyRange {
                end: prefix_successor(&open),
                start: open,
            },
        );

        // A point get of `doc`.
        let mut get_doc = ReadSet::default();
        get_doc.record(BY_ID, KeyRange::point(&id_bytes(&doc)));

        // In range: a document whose status becomes (or was) "open".
        assert!(by_status_open.intersects(&writes(&[(BY_STATUS, status_key("open", &other_doc))])));
        // Out of range: "opened" and "closed" sort outside the "open" prefix range.
        assert!(!by_status_open.intersects(&writes(&[(BY_STATUS, status_key("opened", &doc))])));
        assert!(!by_status_open.intersects(&writes(&[(BY_STATUS, status_key("closed", &doc))])));
        // Same key bytes in another index do not count.
        assert!(!by_status_open.intersects(&writes(&[(BY_OTHER, status_key("open", &doc))])));

        // Point get: only that document's by_id key.
        assert!(get_doc.intersects(&writes(&[(BY_ID, id_bytes(&doc).to_vec())])));
        assert!(!get_doc.intersects(&writes(&[(BY_ID, id_bytes(&other_doc).to_vec())])));
        assert!(!get_doc.intersects(&writes(&[(BY_STATUS, id_bytes(&doc).to_vec())])));

        // A commit touching several indexes hits if any key hits.
        let mixed = writes(&[(BY_OTHER, vec![9]), (BY_ID, id_bytes(&doc).to_vec())]);
        assert!(get_doc.intersects(&mixed));
        assert!(!ReadSet::default().intersects(&mixed));
    }

    #[test]
    fn write_sets_round_trip_through_bytes() {
        let set = writes(&[(1, vec![]), (70000, vec![0, 1, 2]), (3, vec![0xFF; 300])]);
        assert_eq!(WriteSet::from_bytes(&set.to_bytes()), Some(set.clone()));
        let bytes = set.to_bytes();
        assert_eq!(WriteSet::from_bytes(&bytes[..bytes.len() - 1]), None);
        assert_eq!(WriteSet::from_bytes(&[]), Some(WriteSet::default()));
    }

    #[test]
    fn range_bounds_are_half_open() {
        let range = KeyRange {
            start: vec![2],
            end: Some(vec![4]),
        };
        assert!(!range.contains(&[1, 9]));
        assert!(range.contains(&[2]));
        assert!(range.contains(&[3, 0xFF]));
        assert!(!range.contains(&[4]));
        let unbounded = KeyRange {
            start: vec![2],
            end: None,
        };
        assert!(unbounded.contains(&[0xFF, 0xFF]));
        let mut set = ReadSet::default();
        set.record(
            1,
            KeyRange {
                start: vec![5],
                end: Some(vec![5]),
            },
        );
        assert!(set.is_empty(), "empty ranges are not recorded");
    }
}
