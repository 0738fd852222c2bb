//! The document store: tables declared in Rust, order-preserving index keys, serializable
//! transactions, read and write sets, over SQLite (embedded default) or PostgreSQL (scale-out).

mod catalog;
mod feed;
pub mod keys;
mod persistence;
pub mod query;
pub mod readset;
pub mod schema;
mod store;
mod txn;

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
    /// The database cannot be reached or refused the operation (full disk, connection lost, ...).
    #[error("Database unavailable: {0}")]
    Unavailable(String),
    #[error("Internal store error: {0}")]
    Internal(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
