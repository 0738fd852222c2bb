//! Index range queries: equality on a prefix of an index's fields, then an optional range on the next
//! field; ascending or descending; take, first, unique, collect, paginate.

use std::sync::Arc;

use base64::Engine;
use values::{DocumentId, Value};

use crate::catalog::{IndexInfo, TableInfo, ID_FIELD};
use crate::keys::{encode_value, id_bytes, key_successor, prefix_successor};
use crate::readset::KeyRange;
use crate::txn::{Document, Txn};
use crate::{Result, StoreError};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    Asc,
    Desc,
}

/// Convex's `paginationOpts`.
#[derive(Clone, Debug, PartialEq)]
pub struct PaginationOpts {
    pub num_items: usize,
    /// `None` starts at the beginning; otherwise the `continue_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Convex's pagination result `{page, isDone, continueCursor}`.
#[derive(Clone, Debug)]
pub struct PaginationResult {
    pub page: Vec<Document>,
    pub is_done: bool,
    pub continue_cursor: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
}

/// Builds the range of `with_index(name, |q| q.eq("a", x).gte("b", y))`. Field order must follow the
/// index: `eq` on a prefix, then at most one lower and one upper bound on the next field.
#[derive(Clone, Debug, Default)]
pub struct RangeBuilder {
    ops: Vec<(Op, String, Value)>,
}

impl RangeBuilder {
    pub fn eq(self, field: &str, value: impl Into<Value>) -> RangeBuilder {
        self.push(Op::Eq, field, value.into())
    }
    pub fn gt(self, field: &str, value: impl Into<Value>) -> RangeBuilder {
        self.push(Op::Gt, field, value.into())
    }
    pub fn gte(self, field: &str, value: impl Into<Value>) -> RangeBuilder {
        self.push(Op::Gte, field, value.into())
    }
    pub fn lt(self, field: &str, value: impl Into<Value>) -> RangeBuilder {
        self.push(Op::Lt, field, value.into())
    }
    pub fn lte(self, field: &str, value: impl Into<Value>) -> RangeBuilder {
        self.push(Op::Lte, field, value.into())
    }

    fn push(mut self, op: Op, field: &str, value: Value) -> RangeBuilder {
        self.ops.push((op, field.to_string(), value));
        self
    }

    /// The key range these constraints select in `index`.
    fn compile(&self, table: &TableInfo, index: &IndexInfo) -> Result<KeyRange> {
        let fields = index.range_fields();
        let error = |field: &str, problem: String| StoreError::Validation {
            path: field.to_string(),
            message: format!(
                "Invalid range on index {}.{} (fields: {}): {problem}",
                table.name,
                index.name,
                fields.join(", ")
            ),
        };
        let mut prefix = Vec::new();
        let mut position = 0;
        let mut lower: Option<(Op, Vec<u8>)> = None;
        let mut upper: Option<(Op, Vec<u8>)> = None;
        for (op, field, value) in &self.ops {
            let Some(expected) = fields.get(position) else {
                return Err(error(
                    field,
                    format!("`{field}` is past the last index field"),
                ));
            };
            if field != expected {
                return Err(error(field, format!("expected a constraint on `{expected}`, got `{field}`; constrain fields in index order")));
            }
            let encoded =
                encode_bound(table, field, value).map_err(|problem| error(field, problem))?;
            let slot = match op {
                Op::Eq if lower.is_none() && upper.is_none() => {
                    prefix.extend_from_slice(&encoded);
                    position += 1;
                    continue;
                }
                Op::Eq => {
                    return Err(error(
                        field,
                        format!("`eq` on `{field}` must come before range bounds"),
                    ))
                }
                Op::Gt | Op::Gte => &mut lower,
                Op::Lt | Op::Lte => &mut upper,
            };
            if slot.is_some() {
                return Err(error(
                    field,
                    format!("`{field}` has two lower or two upper bounds"),
                ));
            }
            *slot = Some((*op, encoded));
        }
        let with_prefix = |bytes: &[u8]| [prefix.as_slice(), bytes].concat();
        let start = match &lower {
            None => Some(prefix.clone()),
            Some((Op::Gte, bytes)) => Some(with_prefix(bytes)),
            // Past every key whose field equals the bound: keys continue after the value's encoding.
            Some((_, bytes)) => prefix_successor(&with_prefix(bytes)),
        };
        let end = match &upper {
            None => prefix_successor(&prefix),
            Some((Op::Lt, bytes)) => Some(with_prefix(bytes)),
            Some((_, bytes)) => prefix_successor(&with_prefix(bytes)),
        };
        Ok(match start {
            Some(start) => KeyRange { start, end },
            None => KeyRange {
                start: Vec::new(),
                end: Some(Vec::new()),
            },
        })
    }
}

/// The key bytes of one constrained field. `_id` is stored raw; everything else is a tagged encoding.
fn encode_bound(
    table: &TableInfo,
    field: &str,
    value: &Value,
) -> std::result::Result<Vec<u8>, String> {
    if field == ID_FIELD {
        let id = value
            .as_str()
            .and_then(|s| DocumentId::decode(s).ok())
            .filter(|id| id.table_number == table.number);
        return id
            .map(|id| id_bytes(&id).to_vec())
            .ok_or_else(|| format!("`_id` must be an Id of table {}", table.name));
    }
    let mut out = Vec::new();
    encode_value(Some(value), &mut out);
    Ok(out)
}

/// A position in a paginated scan, carried in the opaque cursor string.
enum Cursor {
    Start,
    After(Vec<u8>),
    End,
}

impl Cursor {
    fn encode(&self) -> String {
        let bytes = match self {
            Cursor::Start => vec![0],
            Cursor::After(key) => [&[1u8][..], key].concat(),
            Cursor::End => vec![2],
        };
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn decode(text: &str) -> Result<Cursor> {
        let invalid = || StoreError::Invalid(format!("Invalid pagination cursor: {text:?}"));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| invalid())?;
        match bytes.split_first() {
            Some((0, [])) => Ok(Cursor::Start),
            Some((1, key)) => Ok(Cursor::After(key.to_vec())),
            Some((2, [])) => Ok(Cursor::End),
            _ => Err(invalid()),
        }
    }
}

/// A query on one table: `txn.query("t")?.with_index("by_x", |q| q.eq("x", 1.0))?.order(Order::Desc).take(10)?`.
/// Without `with_index` it scans `by_creation_time`. Everything it reads is recorded in the
/// transaction's read set.
pub struct Query<'t> {
    txn: &'t mut Txn,
    table: Arc<TableInfo>,
    index: IndexInfo,
    range: KeyRange,
    order: Order,
    filter: Option<Predicate>,
}

type Predicate = Box<dyn Fn(&Document) -> bool>;

/// Documents a scan returned, with their keys, and whether the range ran out.
struct Fetched {
    docs: Vec<(Vec<u8>, Document)>,
    exhausted: bool,
}

impl<'t> Query<'t> {
    pub(crate) fn new(txn: &'t mut Txn, table: Arc<TableInfo>) -> Query<'t> {
        let index = table.by_creation_time().clone();
        Query {
            txn,
            table,
            index,
            range: KeyRange {
                start: Vec::new(),
                end: None,
            },
            order: Order::Asc,
            filter: None,
        }
    }

    pub fn with_index(
        mut self,
        index: &str,
        range: impl FnOnce(RangeBuilder) -> RangeBuilder,
    ) -> Result<Query<'t>> {
        let Some(info) = self.table.index(index).cloned() else {
            return Err(StoreError::Validation {
                path: String::new(),
                message: format!("Index {}.{index} is not declared", self.table.name),
            });
        };
        self.range = range(RangeBuilder::default()).compile(&self.table, &info)?;
        self.index = info;
        Ok(self)
    }
    pub fn order(mut self, order: Order) -> Query<'t> {
        self.order = order;
        self
    }
    /// Post-filter on the documents the index range yields (reads still count the whole scanned range).
    pub fn filter(mut self, predicate: impl Fn(&Document) -> bool + 'static) -> Query<'t> {
        self.filter = Some(match self.filter.take() {
            Some(previous) => Box::new(move |doc| previous(doc) && predicate(doc)),
            None => Box::new(predicate),
        });
        self
    }
    pub fn take(self, n: usize) -> Result<Vec<Document>> {
        Ok(self
            .fetch(None, Some(n))?
            .docs
            .into_iter()
            .map(|(_, doc)| doc)
            .collect())
    }
    pub fn first(self) -> Result<Option<Document>> {
        Ok(self.take(1)?.pop())
    }
    /// The only match, `None` for none, an `Invalid` error for more than one.
    pub fn unique(self) -> Result<Option<Document>> {
        let table = self.table.name.clone();
        let index = self.index.name.clone();
        let mut docs = self.take(2)?;
        if docs.len() > 1 {
            return Err(StoreError::Invalid(format!(
                "unique() query on {table}.{index} returned more than one document: {} and {}",
                docs[0].id, docs[1].id
            )));
        }
        Ok(docs.pop())
    }
    pub fn collect(self) -> Result<Vec<Document>> {
        Ok(self
            .fetch(None, None)?
            .docs
            .into_iter()
            .map(|(_, doc)| doc)
            .collect())
    }
    /// How many documents match. Without a filter only the index is counted (no document is read
    /// or decoded), so totals stay cheap on large tables; with a filter every document is checked.
    pub fn count(self) -> Result<u64> {
        if self.filter.is_some() {
            return Ok(self.fetch(None, None)?.docs.len() as u64);
        }
        self.txn.count(self.index.id, &self.range)
    }
    /// A page after the cursor. Cursors are opaque strings that stay valid as documents are added or
    /// removed; a malformed cursor is an `Invalid` error.
    pub fn paginate(self, opts: PaginationOpts) -> Result<PaginationResult> {
        let cursor = match &opts.cursor {
            None => Cursor::Start,
            Some(text) => Cursor::decode(text)?,
        };
        let after = match cursor {
            Cursor::Start => None,
            Cursor::After(key) => Some(key),
            Cursor::End => {
                return Ok(PaginationResult {
                    page: Vec::new(),
                    is_done: true,
                    continue_cursor: Cursor::End.encode(),
                })
            }
        };
        if opts.num_items == 0 {
            let continue_cursor = after.map_or(Cursor::Start, Cursor::After).encode();
            return Ok(PaginationResult {
                page: Vec::new(),
                is_done: false,
                continue_cursor,
            });
        }
        let fetched = self.fetch(after, Some(opts.num_items))?;
        let continue_cursor = match fetched.docs.last() {
            Some((key, _)) if !fetched.exhausted => Cursor::After(key.clone()),
            _ => Cursor::End,
        };
        Ok(PaginationResult {
            page: fetched.docs.into_iter().map(|(_, doc)| doc).collect(),
            is_done: fetched.exhausted,
            continue_cursor: continue_cursor.encode(),
        })
    }

    /// Scans the range (strictly after `after` in scan order) until `limit` documents pass the
    /// filter or the range ends, and records the part of the range the result depends on.
    fn fetch(self, after: Option<Vec<u8>>, limit: Option<usize>) -> Result<Fetched> {
        let Query {
            txn,
            table,
            index,
            mut range,
            order,
            filter,
        } = self;
        if let Some(after) = after {
            match order {
                Order::Asc => range.start = range.start.max(key_successor(&after)),
                Order::Desc => {
                    range.end = Some(range.end.map_or(after.clone(), |end| end.min(after)))
                }
            }
        }
        let base = range.clone();
        let mut docs: Vec<(Vec<u8>, Document)> = Vec::new();
        let mut exhausted = false;
        if limit != Some(0) {
            loop {
                let remaining = limit.map(|n| n - docs.len());
                // Without a filter every row counts, so ask for exactly what is missing.
                let batch = match (remaining, &filter) {
                    (Some(n), None) => n,
                    (Some(n), Some(_)) => n.clamp(64, 1024),
                    (None, _) => 512,
                };
                let rows = txn.scan(&table, index.id, &range, order, batch)?;
                let got = rows.len();
                let mut last_scanned = None;
                for (key, doc) in rows {
                    if filter.as_ref().is_none_or(|keep| keep(&doc)) {
                        docs.push((key.clone(), doc));
                    }
                    last_scanned = Some(key);
                    if limit == Some(docs.len()) {
                        break;
                    }
                }
                if limit == Some(docs.len()) {
                    break;
                }
                let Some(last) = last_scanned.filter(|_| got == batch) else {
                    exhausted = true;
                    break;
                };
                match order {
                    Order::Asc => range.start = key_successor(&last),
                    Order::Desc => range.end = Some(last),
                }
            }
        }
        // The result depends on the range up to its last document, or on all of it when it ran out.
        let covered = match (exhausted, docs.last()) {
            (true, _) => base,
            (false, None) => return Ok(Fetched { docs, exhausted }),
            (false, Some((last, _))) => match order {
                Order::Asc => KeyRange {
                    start: base.start,
                    end: Some(key_successor(last)),
                },
                Order::Desc => KeyRange {
                    start: last.clone(),
                    end: base.end,
                },
            },
        };
        txn.record_read(index.id, covered);
        Ok(Fetched { docs, exhausted })
    }
}
