//! Which subscriptions a commit can affect, found without looking at the others.
//!
//! Every key inside a range `[start, end)` starts with the longest common prefix of `start` and
//! `end` (a key differing earlier would sort outside the range). Ranges are bucketed per index by
//! that prefix, and identical ranges share one entry. A written key then only needs the buckets of
//! its own prefixes: one hash lookup per prefix length in use on that index (a company's list, a
//! document by id and a session by token each have one length), and a containment check of the few
//! distinct ranges in each. Subscriptions reading other companies' ranges are never looked at.

use std::collections::{BTreeMap, HashMap, HashSet};

use store::{IndexId, KeyRange, ReadSet, WriteSet};

pub type SubId = u64;

type RangeKey = (Vec<u8>, Option<Vec<u8>>);

#[derive(Default)]
pub struct ReadIndex {
    indexes: HashMap<IndexId, PerIndex>,
}

#[derive(Default)]
struct PerIndex {
    buckets: HashMap<Vec<u8>, HashMap<RangeKey, HashSet<SubId>>>,
    /// How many buckets have each prefix length.
    lengths: BTreeMap<usize, usize>,
}

/// The prefix every key of the range shares.
fn shared_prefix(range: &KeyRange) -> &[u8] {
    match &range.end {
        None => &[],
        Some(end) => {
            let n = range
                .start
                .iter()
                .zip(end)
                .take_while(|(a, b)| a == b)
                .count();
            &range.start[..n]
        }
    }
}

impl ReadIndex {
    pub fn insert(&mut self, sub: SubId, reads: &ReadSet) {
        for (index, range) in &reads.ranges {
            let per = self.indexes.entry(*index).or_default();
            let prefix = shared_prefix(range);
            let bucket = match per.buckets.get_mut(prefix) {
                Some(bucket) => bucket,
                None => {
                    *per.lengths.entry(prefix.len()).or_default() += 1;
                    per.buckets.entry(prefix.to_vec()).or_default()
                }
            };
            bucket
                .entry((range.start.clone(), range.end.clone()))
                .or_default()
                .insert(sub);
        }
    }

    pub fn remove(&mut self, sub: SubId, reads: &ReadSet) {
        for (index, range) in &reads.ranges {
            let Some(per) = self.indexes.get_mut(index) else {
                continue;
            };
            let prefix = shared_prefix(range);
            let Some(bucket) = per.buckets.get_mut(prefix) else {
                continue;
            };
            let key = (range.start.clone(), range.end.clone());
            if let Some(subs) = bucket.get_mut(&key) {
                subs.remove(&sub);
                if subs.is_empty() {
                    bucket.remove(&key);
                }
            }
            if bucket.is_empty() {
                per.buckets.remove(prefix);
                if let Some(count) = per.lengths.get_mut(&prefix.len()) {
                    *count -= 1;
                    if *count == 0 {
                        per.lengths.remove(&prefix.len());
                    }
                }
            }
            if per.buckets.is_empty() {
                self.indexes.remove(index);
            }
        }
    }

    /// Adds to `hits` every subscription with a range containing a written key.
    pub fn affected(&self, writes: &WriteSet, hits: &mut HashSet<SubId>) {
        for (index, key) in &writes.keys {
            let Some(per) = self.indexes.get(index) else {
                continue;
            };
            for &len in per.lengths.range(..=key.len()).map(|(len, _)| len) {
                let Some(bucket) = per.buckets.get(&key[..len]) else {
                    continue;
                };
                for ((start, end), subs) in bucket {
                    let inside = key.as_slice() >= start.as_slice()
                        && end.as_deref().is_none_or(|end| key.as_slice() < end);
                    if inside {
                        hits.extend(subs);
                    }
                }
            }
        }
    }

    /// Distinct (index, range) entries held, for tests.
    #[cfg(test)]
    fn entries(&self) -> usize {
        self.indexes
            .values()
            .flat_map(|per| per.buckets.values())
            .map(|bucket| bucket.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use store::keys::{encode_one, key_successor, prefix_successor};
    use values::Value;

    fn prefix_range(value: &str) -> KeyRange {
        let start = encode_one(Some(&Value::String(value.into())));
        KeyRange {
            end: prefix_successor(&start),
            start,
        }
    }

    fn key_in(value: &str, suffix: u8) -> Vec<u8> {
        let mut key = encode_one(Some(&Value::String(value.into())));
        key.push(suffix);
        key
    }

    fn reads(ranges: &[(IndexId, KeyRange)]) -> ReadSet {
        ReadSet {
            ranges: ranges.to_vec(),
        }
    }

    fn writes(keys: &[(IndexId, Vec<u8>)]) -> WriteSet {
        WriteSet {
            keys: keys.to_vec(),
        }
    }

    fn affected(index: &ReadIndex, keys: &[(IndexId, Vec<u8>)]) -> Vec<SubId> {
        let mut hits = HashSet::new();
        index.affected(&writes(keys), &mut hits);
        let mut hits: Vec<_> = hits.into_iter().collect();
        hits.sort();
        hits
    }

    #[test]
    fn a_company_write_reaches_only_that_companys_readers() {
        let mut index = ReadIndex::default();
        index.insert(1, &reads(&[(7, prefix_range("company-a"))]));
        index.insert(2, &reads(&[(7, prefix_range("company-a"))]));
        index.insert(3, &reads(&[(7, prefix_range("company-b"))]));
        // Same bytes in another index, and an unbounded scan of index 8.
        index.insert(4, &reads(&[(9, prefix_range("company-a"))]));
        index.insert(
            5,
            &reads(&[(
                8,
                KeyRange {
                    start: vec![],
                    end: None,
                },
            )]),
        );
        assert_eq!(affected(&index, &[(7, key_in("company-a", 3))]), vec![1, 2]);
        assert_eq!(affected(&index, &[(7, key_in("company-b", 3))]), vec![3]);
        assert!(affected(&index, &[(7, key_in("company-c", 3))]).is_empty());
        assert_eq!(affected(&index, &[(8, vec![1, 2, 3])]), vec![5]);

        index.remove(1, &reads(&[(7, prefix_range("company-a"))]));
        assert_eq!(affected(&index, &[(7, key_in("company-a", 3))]), vec![2]);
        index.remove(2, &reads(&[(7, prefix_range("company-a"))]));
        index.remove(3, &reads(&[(7, prefix_range("company-b"))]));
        index.remove(4, &reads(&[(9, prefix_range("company-a"))]));
        index.remove(
            5,
            &reads(&[(
                8,
                KeyRange {
                    start: vec![],
                    end: None,
                },
            )]),
        );
        assert_eq!(index.entries(), 0);
        assert!(index.indexes.is_empty(), "nothing is left behind");
    }

    #[test]
    fn point_reads_match_only_their_key() {
        let mut index = ReadIndex::default();
        index.insert(1, &reads(&[(1, KeyRange::point(&[5, 5, 5]))]));
        assert_eq!(affected(&index, &[(1, vec![5, 5, 5])]), vec![1]);
        assert!(affected(&index, &[(1, vec![5, 5, 5, 0])]).is_empty());
        assert!(affected(&index, &[(1, vec![5, 5])]).is_empty());
    }

    fn arb_key() -> impl Strategy<Value = Vec<u8>> {
        // Few distinct bytes, so ranges and keys collide often.
        prop::collection::vec(prop::sample::select(vec![0u8, 1, 2, 0xFE, 0xFF]), 0..5)
    }

    fn arb_range() -> impl Strategy<Value = KeyRange> {
        prop_oneof![
            (arb_key(), arb_key()).prop_map(|(a, b)| {
                let (start, end) = if a <= b { (a, b) } else { (b, a) };
                KeyRange {
                    start,
                    end: Some(end),
                }
            }),
            arb_key().prop_map(|start| KeyRange { start, end: None }),
            arb_key().prop_map(|k| KeyRange::point(&k)),
            arb_key().prop_map(|k| KeyRange {
                end: prefix_successor(&k),
                start: k,
            }),
            arb_key().prop_map(|k| KeyRange {
                end: Some(key_successor(&k)),
                start: vec![],
            }),
        ]
    }

    proptest! {
        /// The index answers exactly what checking every subscription's read set would.
        #[test]
        fn agrees_with_the_plain_intersection(
            subs in prop::collection::vec(prop::collection::vec((0u32..3, arb_range()), 1..4), 1..12),
            keys in prop::collection::vec((0u32..3, arb_key()), 1..6),
            removed in prop::collection::vec(any::<bool>(), 12),
        ) {
            let mut index = ReadIndex::default();
            let sets: Vec<ReadSet> = subs.iter().map(|ranges| {
                let mut set = ReadSet::default();
                for (i, r) in ranges { set.record(*i, r.clone()); }
                set
            }).collect();
            for (id, set) in sets.iter().enumerate() {
                index.insert(id as SubId, set);
            }
            for (id, set) in sets.iter().enumerate() {
                if removed[id] {
                    index.remove(id as SubId, set);
                }
            }
            let written = writes(&keys);
            let expected: Vec<SubId> = sets
                .iter()
                .enumerate()
                .filter(|(id, set)| !removed[*id] && set.intersects(&written))
                .map(|(id, _)| id as SubId)
                .collect();
            prop_assert_eq!(affected(&index, &keys), expected);
        }
    }
}
