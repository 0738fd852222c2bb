//! The narrow persistence layer: what a backend provides (snapshot read transactions, serialized
//! write transactions, a catalog), implemented on SQLite and PostgreSQL with the same SQL schema.

pub(crate) mod postgres;
pub(crate) mod sqlite;

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::catalog::{CatalogRows, IndexRow, Plan};
use crate::faults::Faults;
use crate::query::Order;
use crate::readset::{IndexId, KeyRange, WriteSet};
use crate::store::Commit;
use crate::{Result, StoreError, Ts};

/// A document row: the raw Id, its table, its creation time and its user fields as
/// `convex_encoded_json` text.
#[derive(Clone, Debug)]
pub(crate) struct StoredDoc {
    pub id: Vec<u8>,
    pub table_number: u32,
    pub creation_time: f64,
    pub value: String,
}

/// One open transaction on a backend connection; every call runs inside it. A transaction owns its
/// connection, so `Txn` needs no lifetime.
pub(crate) trait TxConn: Any + Send {
    fn get(&mut self, id: &[u8]) -> Result<Option<StoredDoc>>;
    /// Up to `limit` entries of `index` within `range`, in key order (reversed for `Desc`), each with
    /// its document.
    fn scan(
        &mut self,
        index: IndexId,
        range: &KeyRange,
        order: Order,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, StoredDoc)>>;
    /// How many entries of `index` lie within `range` (no documents are read).
    fn count(&mut self, index: IndexId, range: &KeyRange) -> Result<u64>;
    fn insert_doc(&mut self, doc: &StoredDoc) -> Result<()>;
    fn update_doc(&mut self, doc: &StoredDoc) -> Result<()>;
    fn delete_doc(&mut self, id: &[u8]) -> Result<()>;
    fn insert_entry(&mut self, index: IndexId, key: &[u8], doc_id: &[u8]) -> Result<()>;
    fn delete_entry(&mut self, index: IndexId, key: &[u8]) -> Result<()>;
}

/// Catalog maintenance, run inside the migration transaction at open.
pub(crate) trait CatalogConn: TxConn {
    fn load_catalog(&mut self) -> Result<CatalogRows>;
    fn add_table(&mut self, name: &str, number: u32) -> Result<()>;
    fn rename_table(&mut self, old: &str, new: &str) -> Result<()>;
    fn add_index(&mut self, row: &IndexRow) -> Result<()>;
    /// Removes the index row and all its entries.
    fn drop_index(&mut self, id: IndexId) -> Result<()>;
    /// Documents of a table with an id above `after`, in id order (for backfills).
    fn table_documents(
        &mut self,
        table_number: u32,
        after: &[u8],
        limit: usize,
    ) -> Result<Vec<StoredDoc>>;
}

/// What running a mutation closure once produced.
pub(crate) enum RunOutcome {
    /// Keep the writes.
    Commit(WriteSet),
    /// Roll back; `retry` when the failure was a serialization conflict worth running again.
    Abort { retry: bool },
}

/// How a write job ended, from the backend's point of view.
pub(crate) enum Finish {
    Committed(Ts, WriteSet),
    /// The closure failed on its own; the job answers with its own error.
    Aborted,
    /// The backend failed (commit error, conflicts exhausted, store closed).
    Failed(StoreError),
}

/// A type-erased mutation: the backend decides where and how often it runs.
pub(crate) trait WriteJob: Send {
    fn run(&mut self, conn: Box<dyn TxConn>) -> (Box<dyn TxConn>, RunOutcome);
    fn finish(self: Box<Self>, finish: Finish);
}

/// A read-only job: it gets a snapshot transaction with the last commit ts it sees (or the error
/// that prevented opening one), runs, and hands the connection back so its transaction can end.
pub(crate) type ReadJob =
    Box<dyn FnOnce(Result<(Box<dyn TxConn>, Ts)>) -> Option<Box<dyn TxConn>> + Send>;

/// A backend. Blocking methods are called from `spawn_blocking` (or the backend's own threads).
pub(crate) trait Persistence: Send + Sync {
    /// Runs `job` on a snapshot read transaction, on a thread where blocking is fine. Does not block.
    fn read(self: Arc<Self>, job: ReadJob);
    /// Queues a mutation; it is answered through `WriteJob::finish`. Does not block.
    fn submit(&self, job: Box<dyn WriteJob>);
    fn health_check(&self) -> Result<()>;
    /// A small durable write outside any mutation (a row of `ss_meta`), proving the database
    /// takes writes. Blocking.
    fn write_probe(&self) -> Result<()>;
    /// The injected fault switch (tests only).
    fn faults(&self) -> &Faults;
    /// Lets in-flight writes finish, then refuses new ones.
    fn close(&self) -> Result<()>;
    /// Deletes commit log entries older than `older_than`, returning how many. Only PostgreSQL
    /// keeps a commit log.
    fn prune_commit_log(&self, _older_than: Duration) -> Result<u64> {
        Ok(0)
    }
}

/// Process-local commit bookkeeping shared by the backend and the `Store`.
pub(crate) struct Shared {
    pub commits: tokio::sync::broadcast::Sender<Commit>,
    pub last_ts: AtomicU64,
}

impl Shared {
    pub fn new(last_ts: Ts) -> Shared {
        Shared {
            commits: tokio::sync::broadcast::channel(4096).0,
            last_ts: AtomicU64::new(last_ts.0),
        }
    }

    /// Records a commit; callers publish in ts order.
    pub fn publish(&self, ts: Ts, writes: &WriteSet) {
        self.last_ts.fetch_max(ts.0, AtomicOrdering::SeqCst);
        if self.commits.receiver_count() > 0 {
            let _ = self.commits.send(Commit {
                ts,
                writes: writes.clone(),
            });
        }
    }
}

/// Nanoseconds since the Unix epoch.
pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Applies a reconciliation plan: catalog rows, dropped indexes, and backfills of new indexes from
/// the documents already stored.
pub(crate) fn apply_plan(conn: &mut dyn CatalogConn, plan: &Plan) -> Result<()> {
    for (old, new) in &plan.renamed {
        conn.rename_table(old, new)?;
        tracing::info!(from = %old, to = %new, "renamed table");
    }
    for (name, number) in &plan.new_tables {
        conn.add_table(name, *number)?;
    }
    for id in &plan.dropped {
        conn.drop_index(*id)?;
    }
    for row in &plan.new_indexes {
        conn.add_index(row)?;
    }
    for (table_number, index_id) in &plan.backfill {
        let table = plan
            .catalog
            .table_by_number(*table_number)
            .ok_or_else(|| StoreError::Internal("backfill of an unknown table".into()))?;
        let index = table
            .indexes
            .iter()
            .find(|i| i.id == *index_id)
            .ok_or_else(|| StoreError::Internal("backfill of an unknown index".into()))?;
        let mut after = Vec::new();
        loop {
            let docs = conn.table_documents(*table_number, &after, 500)?;
            for doc in &docs {
                let (id, fields) = decode_doc(doc)?;
                conn.insert_entry(
                    index.id,
                    &index.key(&id, doc.creation_time, &fields),
                    &doc.id,
                )?;
            }
            match docs.last() {
                Some(last) if docs.len() == 500 => after = last.id.clone(),
                _ => break,
            }
        }
        tracing::info!(table = %table.name, index = %index.name, "backfilled new index");
    }
    Ok(())
}

/// The Id and user fields of a stored row.
pub(crate) fn decode_doc(doc: &StoredDoc) -> Result<(values::DocumentId, values::Object)> {
    let id = crate::keys::id_from_bytes(&doc.id)
        .ok_or_else(|| StoreError::Internal("stored document has a malformed id".into()))?;
    let fields = values::stored::from_encoded_str(&doc.value)
        .map_err(|e| StoreError::Internal(format!("stored document does not decode: {e}")))?
        .into_object()
        .ok_or_else(|| StoreError::Internal("stored document is not an object".into()))?;
    Ok((id, fields))
}

/// Encodes a document's user fields (an object value) for storage.
pub(crate) fn encode_fields(fields: &values::Value) -> String {
    values::Format::Encoded.encode_to_string(fields)
}
