//! The `Store` handle: opens a backend, applies migrations, runs queries and mutations.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::catalog::Catalog;
use crate::faults::Fault;
use crate::persistence::{
    now_ns, postgres, sqlite, Finish, Persistence, RunOutcome, Shared, TxConn, WriteJob,
};
use crate::readset::{ReadSet, WriteSet};
use crate::schema::Schema;
use crate::txn::{CreationClock, IdLayout, Mode, Txn};
use crate::{Result, StoreError, Ts};

#[derive(Clone, Debug)]
pub enum Backend {
    /// The embedded default: a SQLite database file (WAL, synchronous=FULL).
    Sqlite { path: PathBuf },
    /// `postgres://...`; several server nodes may share it.
    Postgres { url: String },
}

#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub backend: Backend,
    /// Reader connections (SQLite) or pool size (PostgreSQL).
    pub pool_size: usize,
}

/// A committed mutation, announced to in-process subscribers (live queries).
#[derive(Clone, Debug)]
pub struct Commit {
    pub ts: Ts,
    pub writes: WriteSet,
}

/// Cheap to clone; all clones share the backend.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Arc<dyn Persistence>,
    /// What the store was opened on (the commit feed of PostgreSQL opens its own connection).
    config: Backend,
    catalog: Arc<Catalog>,
    clock: Arc<CreationClock>,
    shared: Arc<Shared>,
    schema: Schema,
    closed: AtomicBool,
    writes: Arc<WriteHealth>,
    /// One write probe at a time; concurrent health checks share its outcome.
    probing: tokio::sync::Mutex<()>,
}

/// How long the outcome of the last write (a mutation's commit or a probe) answers for the
/// database's writability before a health check probes again.
const WRITE_PROBE_AFTER: Duration = Duration::from_secs(10);
/// Longest a write probe may take before it counts as failed.
const WRITE_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The outcome of the latest write that reached the database: a commit, or a failure of the
/// database itself (not a conflict, nor a mutation's own error).
#[derive(Default)]
struct WriteHealth {
    last: Mutex<Option<(Instant, Result<()>)>>,
}

impl WriteHealth {
    fn record(&self, outcome: Result<()>) {
        *self.last.lock() = Some((Instant::now(), outcome));
    }

    /// The last outcome, while it is recent enough to stand for the present.
    fn fresh(&self) -> Option<Result<()>> {
        match &*self.last.lock() {
            Some((at, outcome)) if at.elapsed() < WRITE_PROBE_AFTER => Some(outcome.clone()),
            _ => None,
        }
    }
}

/// Copies a SQLite database file, consistently even while a server writes to it, to `to` (which
/// must not exist); returns the copy's size in bytes. PostgreSQL has its own tools (`pg_dump`).
pub fn backup_sqlite(path: &std::path::Path, to: &std::path::Path) -> Result<u64> {
    crate::persistence::sqlite::backup(path, to)
}

impl Store {
    /// Opens the backend, creates or upgrades its tables, reconciles the catalog with `schema`
    /// (new tables and indexes get numbers; new indexes are backfilled), and recovers the last ts.
    pub async fn open(config: StoreConfig, schema: Schema) -> Result<Store> {
        schema
            .validate()
            .map_err(|message| StoreError::Invalid(format!("Invalid schema: {message}")))?;
        let declared = schema.clone();
        let pool_size = config.pool_size.max(1);
        let backend_config = config.backend.clone();
        let ids = match config.backend {
            Backend::Sqlite { .. } => IdLayout::TimeOrdered,
            Backend::Postgres { .. } => IdLayout::Random,
        };
        let opened = tokio::task::spawn_blocking(move || match config.backend {
            Backend::Sqlite { path } => sqlite::open(&path, pool_size, &declared),
            Backend::Postgres { url } => postgres::open(&url, pool_size, &declared),
        })
        .await
        .map_err(|e| StoreError::Internal(format!("opening the store panicked: {e}")))??;
        Ok(Store {
            inner: Arc::new(Inner {
                backend: opened.backend,
                config: backend_config,
                catalog: Arc::new(opened.catalog),
                clock: Arc::new(CreationClock::new(ids)),
                shared: opened.shared,
                schema,
                closed: AtomicBool::new(false),
                writes: Arc::default(),
                probing: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Runs a read-only transaction on a consistent snapshot. Returns the result, what it read and
    /// the snapshot's ts.
    pub async fn query<R, E>(
        &self,
        f: impl FnOnce(&mut Txn) -> Result<R, E> + Send + 'static,
    ) -> Result<(R, ReadSet, Ts), E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.check_open()?;
        let (reply, answer) = oneshot::channel();
        let catalog = self.inner.catalog.clone();
        let clock = self.inner.clock.clone();
        let job = move |opened: Result<(Box<dyn TxConn>, Ts)>| {
            let (conn, ts) = match opened {
                Ok(opened) => opened,
                Err(e) => {
                    let _ = reply.send(Err(e.into()));
                    return None;
                }
            };
            let mut txn = Txn::new(conn, catalog, clock, Mode::Read, now_ms());
            let result = catch_unwind(AssertUnwindSafe(|| f(&mut txn)));
            let parts = txn.into_parts();
            let answer = match (result, parts.failure) {
                (Err(panic), _) => Err(panicked("query", panic).into()),
                (Ok(Err(e)), _) => Err(e),
                // A swallowed storage error may have left the read set incomplete.
                (Ok(Ok(_)), Some(failure)) => Err(failure.into()),
                (Ok(Ok(value)), None) => Ok((value, parts.reads, ts)),
            };
            // Answer before the read transaction ends: ending it is the backend's bookkeeping.
            let _ = reply.send(answer);
            Some(parts.conn)
        };
        self.inner.backend.clone().read(Box::new(job));
        answer.await.unwrap_or_else(|_| {
            Err(
                StoreError::Unavailable("the store stopped before the query finished".into())
                    .into(),
            )
        })
    }

    /// Runs a read-write transaction. It commits whole (durably, before this returns Ok) or not at all:
    /// when `f` returns Err nothing is written. On a serialization conflict `f` runs again (so it must
    /// be repeatable). Returns the result, its commit ts and its write set.
    ///
    /// On SQLite `f` runs on the single writer thread, so it must not wait for other store calls.
    pub async fn mutate<R, E>(
        &self,
        f: impl Fn(&mut Txn) -> Result<R, E> + Send + Sync + 'static,
    ) -> Result<(R, Ts, WriteSet), E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.check_open()?;
        let (reply, answer) = oneshot::channel();
        let job = MutationJob {
            f,
            catalog: self.inner.catalog.clone(),
            clock: self.inner.clock.clone(),
            now_ms: now_ms(),
            result: None,
            reply,
            health: self.inner.writes.clone(),
        };
        self.inner.backend.submit(Box::new(job));
        answer.await.unwrap_or_else(|_| {
            Err(
                StoreError::Unavailable("the store stopped before the mutation finished".into())
                    .into(),
            )
        })
    }

    pub(crate) fn backend_config(&self) -> &Backend {
        &self.inner.config
    }

    /// The latest committed ts.
    pub fn last_ts(&self) -> Ts {
        Ts(self.inner.shared.last_ts.load(AtomicOrdering::SeqCst))
    }

    /// Commits as they happen in this process (for live queries).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Commit> {
        self.inner.shared.commits.subscribe()
    }

    /// Whether the database answers a trivial query.
    pub async fn health_check(&self) -> Result<()> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.backend.health_check())
            .await
            .map_err(|e| StoreError::Internal(format!("health check task failed: {e}")))?
    }

    /// Whether the database takes writes: the outcome of the last write if it is recent (under
    /// 10 s), else that of a small write probe made now (a row of the store's own meta table).
    /// So a server that writes often never probes, and an idle one probes at most every 10 s.
    /// A full disk answers `StorageFull`, a read-only database `ReadOnly`, an unreachable one
    /// `Unavailable`.
    pub async fn write_health(&self) -> Result<()> {
        if let Some(outcome) = self.inner.writes.fresh() {
            return outcome;
        }
        let _probing = self.inner.probing.lock().await;
        // Another health check may have probed while this one waited.
        if let Some(outcome) = self.inner.writes.fresh() {
            return outcome;
        }
        self.check_open()?;
        let inner = self.inner.clone();
        let probe = tokio::task::spawn_blocking(move || inner.backend.write_probe());
        let outcome = match tokio::time::timeout(WRITE_PROBE_TIMEOUT, probe).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => Err(StoreError::Internal(format!(
                "write probe task failed: {e}"
            ))),
            Err(_) => Err(StoreError::Unavailable(
                "a write probe did not finish within 10 s".into(),
            )),
        };
        self.inner.writes.record(outcome.clone());
        outcome
    }

    /// Makes the store simulate `fault` from now on (`None` ends it). For tests of the failure
    /// paths only; nothing in the server calls it.
    #[doc(hidden)]
    pub fn inject_fault(&self, fault: Option<Fault>) {
        self.inner.backend.faults().set(fault);
    }

    /// Deletes PostgreSQL commit log entries older than `older_than` (always keeping the newest) and
    /// returns how many this call deleted: 0 on SQLite, which has no log, and when another node is
    /// pruning at that moment. The PostgreSQL backend already runs this every minute with a
    /// ten-minute retention; a commit feed that falls behind a prune delivers `FeedEvent::Reset`.
    pub async fn prune_commit_log(&self, older_than: Duration) -> Result<u64> {
        self.check_open()?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.backend.prune_commit_log(older_than))
            .await
            .map_err(|e| StoreError::Internal(format!("pruning task failed: {e}")))?
    }

    /// Waits for in-flight writes and closes connections (SQLite checkpoints its WAL).
    pub async fn close(&self) -> Result<()> {
        self.inner.closed.store(true, AtomicOrdering::SeqCst);
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.backend.close())
            .await
            .map_err(|e| StoreError::Internal(format!("close task failed: {e}")))?
    }

    pub fn schema(&self) -> &Schema {
        &self.inner.schema
    }

    /// The declared tables' numbers, for checking `v.id(table)` validators outside a transaction
    /// (function arguments, results).
    pub fn table_numbers(&self) -> Tables {
        Tables(self.inner.catalog.clone())
    }

    /// The catalog number of a declared table (the number its Ids carry).
    pub fn table_number(&self, table: &str) -> Option<u32> {
        self.inner.catalog.table(table).map(|t| t.number)
    }

    /// The name of the declared table with this number.
    pub fn table_name(&self, number: u32) -> Option<&str> {
        self.inner
            .catalog
            .table_by_number(number)
            .map(|t| t.name.as_str())
    }

    fn check_open(&self) -> Result<()> {
        match self.inner.closed.load(AtomicOrdering::SeqCst) {
            true => Err(StoreError::Unavailable("the store is closed".into())),
            false => Ok(()),
        }
    }
}

/// The declared tables and their numbers; cheap to clone.
#[derive(Clone, Debug)]
pub struct Tables(Arc<Catalog>);

impl Tables {
    /// The name of the declared table with this number.
    pub fn name(&self, number: u32) -> Option<&str> {
        self.0.table_by_number(number).map(|t| t.name.as_str())
    }
}

impl values::validator::TableNumbers for Tables {
    fn table_number(&self, table: &str) -> Option<u32> {
        self.0.table(table).map(|t| t.number)
    }
}

/// What a backend opener hands back.
pub(crate) struct Opened {
    pub backend: Arc<dyn Persistence>,
    pub catalog: Catalog,
    pub shared: Arc<Shared>,
}

fn now_ms() -> f64 {
    now_ns() as f64 / 1e6
}

fn panicked(what: &str, panic: Box<dyn Any + Send>) -> StoreError {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    tracing::error!(%message, "{what} panicked");
    StoreError::Internal(format!("{what} panicked: {message}"))
}

/// A mutation closure with its reply channel, erased for the backend.
struct MutationJob<F, R, E> {
    f: F,
    catalog: Arc<Catalog>,
    clock: Arc<CreationClock>,
    now_ms: f64,
    result: Option<Result<R, E>>,
    reply: oneshot::Sender<Result<(R, Ts, WriteSet), E>>,
    health: Arc<WriteHealth>,
}

impl<F, R, E> WriteJob for MutationJob<F, R, E>
where
    F: Fn(&mut Txn) -> Result<R, E> + Send + Sync + 'static,
    R: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    fn run(&mut self, conn: Box<dyn TxConn>) -> (Box<dyn TxConn>, RunOutcome) {
        let mut txn = Txn::new(
            conn,
            self.catalog.clone(),
            self.clock.clone(),
            Mode::Write,
            self.now_ms,
        );
        let result = catch_unwind(AssertUnwindSafe(|| (self.f)(&mut txn)));
        let parts = txn.into_parts();
        let (result, outcome) = match (result, parts.failure) {
            (Err(panic), _) => (
                Err(panicked("mutation", panic).into()),
                RunOutcome::Abort { retry: false },
            ),
            // A conflict anywhere means the run saw an inconsistent state; its own verdict is moot.
            (_, Some(StoreError::Conflict)) => (
                Err(StoreError::Conflict.into()),
                RunOutcome::Abort { retry: true },
            ),
            (Ok(Err(e)), _) => (Err(e), RunOutcome::Abort { retry: false }),
            (Ok(Ok(_)), Some(failure)) => (Err(failure.into()), RunOutcome::Abort { retry: false }),
            (Ok(Ok(value)), None) => (Ok(value), RunOutcome::Commit(parts.writes)),
        };
        self.result = Some(result);
        (parts.conn, outcome)
    }

    fn finish(self: Box<Self>, finish: Finish) {
        match &finish {
            Finish::Committed(..) => self.health.record(Ok(())),
            Finish::Failed(error) if error.is_storage_failure() => {
                self.health.record(Err(error.clone()))
            }
            _ => {}
        }
        let answer = match (finish, self.result) {
            (Finish::Committed(ts, writes), Some(Ok(value))) => Ok((value, ts, writes)),
            // A closure's own error stands even when the batch around it failed too.
            (_, Some(Err(e))) => Err(e),
            (Finish::Failed(error), _) => Err(error.into()),
            (_, _) => Err(StoreError::Internal(
                "mutation finished in an inconsistent state".into(),
            )
            .into()),
        };
        // The caller may have gone away; the outcome stands either way.
        let _ = self.reply.send(answer);
    }
}
