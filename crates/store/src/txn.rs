//! A transaction over the store: reads (recorded in the read set) and, for mutations, writes
//! (validated against the schema, index entries maintained, recorded in the write set).

use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;

use values::{DocumentId, Object, Value};

use crate::catalog::{Catalog, TableInfo};
use crate::keys::id_bytes;
use crate::persistence::{decode_doc, encode_fields, now_ns, StoredDoc, TxConn};
use crate::query::{Order, Query};
use crate::readset::{IndexId, KeyRange, ReadSet, WriteSet};
use crate::{Result, StoreError};

/// A stored document: its table, system fields and user fields.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    pub table: String,
    pub id: DocumentId,
    /// Milliseconds since the Unix epoch (float, as Convex's `_creationTime`).
    pub creation_time: f64,
    pub fields: Object,
}

impl Document {
    /// The document as clients see it: user fields plus `_id` (string) and `_creationTime`.
    pub fn to_value(&self) -> Value {
        self.clone().into_value()
    }

    /// As `to_value`, without copying the fields (lists of documents spend most of their time here).
    pub fn into_value(self) -> Value {
        let mut fields = self.fields;
        fields.insert("_id".to_string(), Value::String(self.id.encode()));
        fields.insert(
            "_creationTime".to_string(),
            Value::Float64(self.creation_time),
        );
        Value::Object(fields)
    }
    /// A user field.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.fields.get(field)
    }
}

/// Fields to set (`Some`) or remove (`None`) in a `patch`.
pub type Patch = std::collections::BTreeMap<String, Option<Value>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Read,
    Write,
}

/// Hands out creation times that increase within this process, so documents inserted in one
/// mutation (or in quick succession) keep their insertion order in `by_creation_time`; and Ids in
/// the layout that suits the backend.
#[derive(Debug)]
pub(crate) struct CreationClock {
    last_us: AtomicU64,
    ids: IdLayout,
}

/// How new Ids are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IdLayout {
    /// Random: PostgreSQL's serializable transactions lock index pages they read, so Ids that
    /// land on one page make concurrent inserts conflict (measured: time-ordered Ids took
    /// concurrent incident creation from 351 to 273/s at 16 clients).
    Random,
    /// Clock first: SQLite has one writer, and appending at the right edge of the id B-trees
    /// writes several times fewer pages per commit (insert p99 at 16 clients 1.7-3.7 ms -> 1.5-2 ms).
    TimeOrdered,
}

impl CreationClock {
    pub fn new(ids: IdLayout) -> CreationClock {
        CreationClock {
            last_us: AtomicU64::new(0),
            ids,
        }
    }

    pub fn new_id(&self, table_number: u32) -> DocumentId {
        match self.ids {
            IdLayout::Random => DocumentId::new(table_number),
            IdLayout::TimeOrdered => DocumentId::new_time_ordered(table_number),
        }
    }

    pub fn next_ms(&self) -> f64 {
        let now = now_ns() / 1000;
        let mut last = self.last_us.load(AtomicOrdering::SeqCst);
        loop {
            let next = (last + 1).max(now);
            match self.last_us.compare_exchange_weak(
                last,
                next,
                AtomicOrdering::SeqCst,
                AtomicOrdering::SeqCst,
            ) {
                // Distinct microseconds stay distinct and ordered as f64 milliseconds (well below 2^53).
                Ok(_) => return next as f64 / 1000.0,
                Err(actual) => last = actual,
            }
        }
    }
}

/// What a finished transaction leaves behind.
pub(crate) struct TxnParts {
    pub conn: Box<dyn TxConn>,
    pub reads: ReadSet,
    pub writes: WriteSet,
    /// The first storage error; the transaction must not commit after one.
    pub failure: Option<StoreError>,
}

/// One transaction. Read-only for queries (writes return an error), read-write for mutations.
pub struct Txn {
    conn: Box<dyn TxConn>,
    catalog: Arc<Catalog>,
    clock: Arc<CreationClock>,
    mode: Mode,
    now_ms: f64,
    reads: ReadSet,
    writes: WriteSet,
    failure: Option<StoreError>,
}

impl Txn {
    pub(crate) fn new(
        conn: Box<dyn TxConn>,
        catalog: Arc<Catalog>,
        clock: Arc<CreationClock>,
        mode: Mode,
        now_ms: f64,
    ) -> Txn {
        Txn {
            conn,
            catalog,
            clock,
            mode,
            now_ms,
            reads: ReadSet::default(),
            writes: WriteSet::default(),
            failure: None,
        }
    }

    pub(crate) fn into_parts(self) -> TxnParts {
        TxnParts {
            conn: self.conn,
            reads: self.reads,
            writes: self.writes,
            failure: self.failure,
        }
    }

    /// A document by Id; `None` when missing. Ids of tables outside the schema are treated as missing.
    pub fn get(&mut self, id: &DocumentId) -> Result<Option<Document>> {
        let Some(table) = self.catalog.table_by_number(id.table_number).cloned() else {
            return Ok(None);
        };
        let key = id_bytes(id);
        self.reads.record(table.by_id().id, KeyRange::point(&key));
        match self.storage(|conn| conn.get(&key))? {
            Some(stored) => Ok(Some(to_document(&table, &stored)?)),
            None => Ok(None),
        }
    }

    /// The Id an Id string names, if it is a well-formed Id of `table`.
    pub fn normalize_id(&self, table: &str, id: &str) -> Option<DocumentId> {
        let number = self.catalog.table(table)?.number;
        DocumentId::decode(id)
            .ok()
            .filter(|id| id.table_number == number)
    }

    pub fn query(&mut self, table: &str) -> Result<Query<'_>> {
        let table = self.table(table)?;
        Ok(Query::new(self, table))
    }

    /// Inserts a document after validating it against the table's schema (and the size/nesting limits).
    pub fn insert(&mut self, table: &str, fields: Object) -> Result<DocumentId> {
        self.check_writable()?;
        let table = self.table(table)?;
        let value = Value::Object(fields);
        self.validate(&table, &value)?;
        let Value::Object(fields) = &value else {
            unreachable!("built as an object above")
        };
        let id = self.clock.new_id(table.number);
        let creation_time = self.clock.next_ms();
        let keys = index_keys(&table, &id, creation_time, fields)?;
        let stored = StoredDoc {
            id: id_bytes(&id).to_vec(),
            table_number: table.number,
            creation_time,
            value: encode_fields(&value),
        };
        self.storage(|conn| conn.insert_doc(&stored))?;
        for (index, key) in keys {
            self.storage(|conn| conn.insert_entry(index, &key, &stored.id))?;
            self.writes.record(index, key);
        }
        Ok(id)
    }

    /// Shallow-merges fields; the result is validated.
    pub fn patch(&mut self, id: &DocumentId, patch: Patch) -> Result<()> {
        self.check_writable()?;
        let (table, old) = self.load_for_write(id)?;
        let mut fields = old.fields.clone();
        for (name, value) in patch {
            match value {
                Some(value) => fields.insert(name, value),
                None => fields.remove(&name),
            };
        }
        self.rewrite(&table, &old, fields)
    }

    /// Replaces all user fields; the result is validated.
    pub fn replace(&mut self, id: &DocumentId, fields: Object) -> Result<()> {
        self.check_writable()?;
        let (table, old) = self.load_for_write(id)?;
        self.rewrite(&table, &old, fields)
    }

    pub fn delete(&mut self, id: &DocumentId) -> Result<()> {
        self.check_writable()?;
        let (table, old) = self.load_for_write(id)?;
        let raw = id_bytes(id);
        self.storage(|conn| conn.delete_doc(&raw))?;
        for index in &table.indexes {
            let key = index.key(id, old.creation_time, &old.fields);
            self.storage(|conn| conn.delete_entry(index.id, &key))?;
            self.writes.record(index.id, key);
        }
        Ok(())
    }

    /// What this transaction has read so far.
    pub fn read_set(&self) -> &ReadSet {
        &self.reads
    }

    pub fn write_set(&self) -> &WriteSet {
        &self.writes
    }

    /// Wall-clock time of the transaction's start in ms (stable within the transaction, so retries
    /// and re-runs see one "now").
    pub fn now_ms(&self) -> f64 {
        self.now_ms
    }

    /// Whether this transaction may write.
    /// The tenant field a table declares (see `TableDef::tenant`); `None` for unscoped or unknown tables.
    pub fn tenant_field(&self, table: &str) -> Option<&str> {
        self.catalog.table(table)?.tenant_field.as_deref()
    }

    /// The declared fields of an index (empty for `by_id` / `by_creation_time`); `None` if unknown.
    pub fn index_fields(&self, table: &str, index: &str) -> Option<&[String]> {
        Some(&self.catalog.table(table)?.index(index)?.fields)
    }

    pub fn is_read_only(&self) -> bool {
        self.mode == Mode::Read
    }

    pub(crate) fn record_read(&mut self, index: IndexId, range: KeyRange) {
        self.reads.record(index, range);
    }

    /// How many entries an index range holds; the whole range joins the read set.
    pub(crate) fn count(&mut self, index: IndexId, range: &KeyRange) -> Result<u64> {
        let n = self.storage(|conn| conn.count(index, range))?;
        self.record_read(index, range.clone());
        Ok(n)
    }

    /// Entries of an index range with their documents.
    pub(crate) fn scan(
        &mut self,
        table: &TableInfo,
        index: IndexId,
        range: &KeyRange,
        order: Order,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Document)>> {
        let rows = self.storage(|conn| conn.scan(index, range, order, limit))?;
        rows.into_iter()
            .map(|(key, stored)| Ok((key, to_document(table, &stored)?)))
            .collect()
    }

    fn table(&self, name: &str) -> Result<Arc<TableInfo>> {
        self.catalog
            .table(name)
            .cloned()
            .ok_or_else(|| StoreError::Validation {
                path: String::new(),
                message: format!("Table \"{name}\" is not declared in the schema"),
            })
    }

    fn check_writable(&self) -> Result<()> {
        match self.mode {
            Mode::Write => Ok(()),
            Mode::Read => Err(StoreError::Invalid(
                "Queries cannot write to the database; use a mutation".into(),
            )),
        }
    }

    /// Runs a backend call and remembers its failure: after a storage error the transaction's state
    /// is unknown (PostgreSQL aborts it), so it must not commit even if the caller swallows the error.
    fn storage<T>(&mut self, op: impl FnOnce(&mut dyn TxConn) -> Result<T>) -> Result<T> {
        let result = op(&mut *self.conn);
        if let Err(error) = &result {
            self.failure.get_or_insert_with(|| error.clone());
        }
        result
    }

    fn validate(&self, table: &TableInfo, value: &Value) -> Result<()> {
        let context = |message: String| {
            format!("Failed to insert or update a document in table \"{}\" because it does not match the schema: {message}", table.name)
        };
        let Value::Object(fields) = value else {
            return Err(StoreError::Validation {
                path: String::new(),
                message: context("a document must be an object".into()),
            });
        };
        values::check_document(fields).map_err(|error| match &error {
            values::ValueError::TooDeep { .. } | values::ValueError::TooLarge { .. } => {
                StoreError::Limit(format!(
                    "Failed to insert or update a document in table \"{}\": {error}",
                    table.name
                ))
            }
            values::ValueError::FieldName { name, .. } => StoreError::Validation {
                path: format!(".{name}"),
                message: context(error.to_string()),
            },
            _ => StoreError::Validation {
                path: String::new(),
                message: context(error.to_string()),
            },
        })?;
        table
            .validator
            .check(value, &*self.catalog)
            .map_err(|error| StoreError::Validation {
                path: error.path,
                message: context(error.message),
            })
    }

    fn load_for_write(&mut self, id: &DocumentId) -> Result<(Arc<TableInfo>, Document)> {
        let not_found = || StoreError::NotFound(id.encode());
        let table = self
            .catalog
            .table_by_number(id.table_number)
            .cloned()
            .ok_or_else(not_found)?;
        let raw = id_bytes(id);
        let stored = self.storage(|conn| conn.get(&raw))?.ok_or_else(not_found)?;
        let doc = to_document(&table, &stored)?;
        Ok((table, doc))
    }

    /// Stores new user fields for an existing document and moves its index entries.
    fn rewrite(&mut self, table: &TableInfo, old: &Document, fields: Object) -> Result<()> {
        let value = Value::Object(fields);
        self.validate(table, &value)?;
        let Value::Object(fields) = &value else {
            unreachable!("built as an object above")
        };
        let new_keys = index_keys(table, &old.id, old.creation_time, fields)?;
        let stored = StoredDoc {
            id: id_bytes(&old.id).to_vec(),
            table_number: table.number,
            creation_time: old.creation_time,
            value: encode_fields(&value),
        };
        self.storage(|conn| conn.update_doc(&stored))?;
        for (index, (id, new_key)) in table.indexes.iter().zip(new_keys) {
            let old_key = index.key(&old.id, old.creation_time, &old.fields);
            // Readers of the old and the new position both see a change, even when the key stays.
            if old_key != new_key {
                self.storage(|conn| conn.delete_entry(id, &old_key))?;
                self.storage(|conn| conn.insert_entry(id, &new_key, &stored.id))?;
                self.writes.record(id, new_key);
            }
            self.writes.record(id, old_key);
        }
        Ok(())
    }
}

/// Longest index key accepted. PostgreSQL's btree refuses entries above about 2.7 KB; one limit on
/// every backend keeps behaviour identical, and turns the failure into an error naming the index.
pub const MAX_INDEX_KEY_BYTES: usize = 2048;

/// The document's key in every index of its table, in index order; refuses oversized keys.
fn index_keys(
    table: &TableInfo,
    id: &DocumentId,
    creation_time: f64,
    fields: &Object,
) -> Result<Vec<(IndexId, Vec<u8>)>> {
    table
        .indexes
        .iter()
        .map(|index| {
            let key = index.key(id, creation_time, fields);
            if key.len() > MAX_INDEX_KEY_BYTES {
                return Err(StoreError::Validation {
                    path: index.fields.first().map(|f| format!(".{f}")).unwrap_or_default(),
                    message: format!(
                        "The values of index {}.{} ({}) take {} bytes; an index key holds at most {MAX_INDEX_KEY_BYTES}",
                        table.name,
                        index.name,
                        index.fields.join(", "),
                        key.len()
                    ),
                });
            }
            Ok((index.id, key))
        })
        .collect()
}

fn to_document(table: &TableInfo, stored: &StoredDoc) -> Result<Document> {
    if stored.table_number != table.number {
        return Err(StoreError::Internal(format!(
            "index entry of table {} points at a foreign document",
            table.name
        )));
    }
    let (id, fields) = decode_doc(stored)?;
    Ok(Document {
        table: table.name.clone(),
        id,
        creation_time: stored.creation_time,
        fields,
    })
}
