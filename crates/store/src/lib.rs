//! The document store: tables declared in Rust, order-preserving index keys, serializable
//! transactions, read and write sets, over SQLite (embedded default) or PostgreSQL (scale-out).

mod catalog;
mod faults;
mod feed;
pub mod keys;
mod persistence;
pub mod query;
pub mod readset;
pub mod schema;
mod store;
mod txn;

pub use faults::Fault;
pub use feed::{CommitFeed, FeedEvent};
pub use query::{Order, PaginationOpts, PaginationResult, Query, RangeBuilder};
pub use readset::{IndexId, KeyRange, ReadSet, WriteSet};
pub use schema::{IndexDef, Schema, TableDef, INDEX_BY_CREATION_TIME, INDEX_BY_ID};
pub use store::{backup_sqlite, Backend, Commit, Store, StoreConfig, Tables};
pub use txn::{Document, Patch, Txn, MAX_INDEX_KEY_BYTES};

/// A commit timestamp: nanoseconds since the Unix epoch, strictly increasing across commits and
/// restarts. It is the protocol's `ts`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ts(pub u64);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A write that does not match its table's schema, or a bad query (unknown table, index or field).
    #[error("{message}")]
    Validation { path: String, message: String },
    /// A document over the size or nesting limits (the platform's limits, not a table's schema).
    #[error("{0}")]
    Limit(String),
    /// `unique()` found more than one document, or an Id names a document of another table.
    #[error("{0}")]
    Invalid(String),
    /// The document to patch, replace or delete does not exist.
    #[error("Document not found: {0}")]
    NotFound(String),
    /// A serialization conflict that survived every retry.
    #[error("Transaction conflicted with concurrent writes; try again")]
    Conflict,
    /// The database cannot be reached or refused the operation (connection lost, too many
    /// connections, shutting down, ...). Nothing was written; trying again later is safe.
    #[error("Database unavailable: {0}")]
    Unavailable(String),
    /// The database has no room for the write (disk or file system full). Nothing was written.
    #[error("Database storage is full: {0}")]
    StorageFull(String),
    /// The database accepts reads only (a read-only file or mount, a PostgreSQL standby or
    /// `default_transaction_read_only`). Nothing was written.
    #[error("Database is read-only: {0}")]
    ReadOnly(String),
    /// The connection was lost while COMMIT was in flight and the outcome could not be found out
    /// afterwards: the write may or may not have been applied. Repeating it blindly may apply it
    /// twice.
    #[error("Commit outcome unknown: {0}")]
    CommitUnknown(String),
    #[error("Internal store error: {0}")]
    Internal(String),
}

impl StoreError {
    /// Whether this is a failure of the database to take writes at all (as opposed to a problem
    /// of one transaction): what the write health (`Store::write_health`) remembers.
    pub fn is_storage_failure(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_)
                | StoreError::StorageFull(_)
                | StoreError::ReadOnly(_)
                | StoreError::CommitUnknown(_)
        )
    }

    /// The same kind of error with `context` in front of its detail.
    pub(crate) fn context(self, context: &str) -> StoreError {
        match self {
            StoreError::Unavailable(d) => StoreError::Unavailable(format!("{context}: {d}")),
            StoreError::StorageFull(d) => StoreError::StorageFull(format!("{context}: {d}")),
            StoreError::ReadOnly(d) => StoreError::ReadOnly(format!("{context}: {d}")),
            StoreError::Internal(d) => StoreError::Internal(format!("{context}: {d}")),
            other => other,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
