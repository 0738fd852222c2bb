//! The PostgreSQL backend: serializable mutations retried on conflict, commit timestamps assigned in
//! commit order, a commit log other nodes can follow, and repeatable-read snapshot queries. The
//! log's pruning is in `prune`; the SQL of a transaction is in `tx`.

mod prune;
mod tx;

use std::any::Any;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use postgres::error::SqlState;
use postgres::types::Type;
use postgres::{NoTls, SimpleQueryMessage};
use r2d2_postgres::PostgresConnectionManager;
use rand::Rng;

use super::{
    apply_plan, CatalogConn, Finish, Persistence, ReadJob, RunOutcome, Shared, TxConn, WriteJob,
};
use crate::catalog::{plan, Catalog};
use crate::faults::{Fault, Faults};
use crate::readset::WriteSet;
use crate::schema::Schema;
use crate::store::Opened;
use crate::{Result, StoreError, Ts};
use prune::{prune_periodically, Stop};
use tx::PgTx;

type PgPool = r2d2::Pool<PostgresConnectionManager<NoTls>>;
type PgConn = r2d2::PooledConnection<PostgresConnectionManager<NoTls>>;

/// Serializes catalog migrations between nodes opening at the same time.
const CATALOG_LOCK: i64 = 0x5353_0001;
/// How long a mutation that keeps losing serialization conflicts is retried before it reports
/// `Conflict`. A budget of time rather than a count of attempts: under heavy contention on one row
/// (many sign-ins of one account) each attempt is slow, and a count would give up too early.
const CONFLICT_BUDGET: Duration = Duration::from_secs(5);
/// How long the outcome of a commit whose connection was lost is looked for before the mutation
/// answers `CommitUnknown`.
const RESOLVE_BUDGET: Duration = Duration::from_secs(10);

/// Versioned migrations; `ss_meta.schema_version` counts how many have run.
///
/// Commit timestamps: `ss_next_commit_ts()` runs just before COMMIT. It takes a transaction-scoped
/// advisory lock, which PostgreSQL releases only after the commit is visible, so between taking a ts
/// and becoming visible no other transaction (on any node) can take one: ts order is commit order,
/// and a snapshot that sees a commit sees every commit with a smaller ts. The last ts lives in a
/// sequence because sequences are not transactional: reading or advancing one never creates a
/// serialization conflict, and its value is current regardless of the reader's snapshot (a meta
/// row would be invisible to snapshots taken earlier and would make every pair of commits conflict).
/// The ts comes from the database clock, the one clock all nodes share.
///
/// Version 2 adds `ss_commit_log_pruned`, the marker of how far the commit log has been pruned.
const MIGRATIONS: &[&str] = &[
    include_str!("../sql/postgres_001.sql"),
    include_str!("../sql/postgres_002.sql"),
];

pub(crate) fn open(url: &str, pool_size: usize, schema: &Schema) -> Result<Opened> {
    let mut config: postgres::Config = url
        .parse()
        .map_err(|e| StoreError::Invalid(format!("Invalid PostgreSQL URL: {e}")))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    let pool = r2d2::Pool::builder()
        .max_size(pool_size as u32)
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(5))
        // A stale connection fails at BEGIN, where we retry on another one; skipping the check saves
        // a round trip per transaction.
        .test_on_check_out(false)
        .build(PostgresConnectionManager::new(config, NoTls))
        .map_err(|e| StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}")))?;
    let conn = pool.get().map_err(unavailable)?;
    let mut tx = PgTx { conn };
    tx.exec("BEGIN")?;
    let migrated = migrate(&mut tx, schema);
    match &migrated {
        Ok(_) => tx.exec("COMMIT")?,
        Err(_) => {
            let _ = tx.exec("ROLLBACK");
        }
    }
    let (catalog, last_ts) = migrated?;
    let shared = Arc::new(Shared::new(last_ts));
    let inner = Arc::new(PgInner {
        pool: Mutex::new(Some(pool)),
        shared: shared.clone(),
        commit_order: Mutex::new(()),
        inflight: Mutex::new(Inflight {
            running: 0,
            closed: false,
        }),
        idle: Condvar::new(),
        stop: Arc::new(Stop::default()),
        pruner: Mutex::new(None),
        faults: Faults::default(),
    });
    // A weak handle: a store dropped without `close` still goes away (its drop stops the pruner).
    let (weak, stop) = (Arc::downgrade(&inner), inner.stop.clone());
    let pruner = std::thread::Builder::new()
        .name("store-pg-pruner".into())
        .spawn(move || prune_periodically(weak, stop))
        .map_err(|e| StoreError::Internal(format!("cannot start the commit log pruner: {e}")))?;
    *inner.pruner.lock() = Some(pruner);
    let backend = PgBackend { inner };
    Ok(Opened {
        backend: Arc::new(backend),
        catalog,
        shared,
    })
}

/// Runs pending migrations and reconciles the catalog. Runs in READ COMMITTED, so after the lock
/// every statement sees what another node committed before.
fn migrate(tx: &mut PgTx, schema: &Schema) -> Result<(Catalog, Ts)> {
    tx.query(
        "SELECT pg_advisory_xact_lock($1)",
        &[(&CATALOG_LOCK, Type::INT8)],
    )?;
    tx.exec("CREATE TABLE IF NOT EXISTS ss_meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)")?;
    let rows = tx.query(
        "SELECT value FROM ss_meta WHERE key = 'schema_version'",
        &[],
    )?;
    let version = rows.first().map(|row| row.get::<_, i64>(0)).unwrap_or(0) as usize;
    if version > MIGRATIONS.len() {
        return Err(StoreError::Internal(format!(
            "database schema version {version} is newer than this build knows"
        )));
    }
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.exec(migration)?;
        let version = i as i64 + 1;
        let sql = "INSERT INTO ss_meta (key, value) VALUES ('schema_version', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value";
        tx.query(sql, &[(&version, Type::INT8)])?;
    }
    let rows = tx.load_catalog()?;
    let plan = plan(schema, &rows);
    apply_plan(tx, &plan)?;
    let rows = tx.query(
        "SELECT COALESCE(pg_sequence_last_value('ss_commit_ts'), 0)",
        &[],
    )?;
    let last_ts = rows.first().map(|row| row.get::<_, i64>(0)).unwrap_or(0);
    Ok((plan.catalog, Ts(last_ts as u64)))
}

struct PgBackend {
    inner: Arc<PgInner>,
}

struct PgInner {
    /// Taken out on drop: the sync client's drop blocks on its own runtime, which panics on an async
    /// worker thread, so the pool is dropped on a plain thread.
    pool: Mutex<Option<PgPool>>,
    shared: Arc<Shared>,
    /// Makes this process publish its commits in ts order (the advisory lock already serializes
    /// the commit step, so this costs no concurrency).
    commit_order: Mutex<()>,
    inflight: Mutex<Inflight>,
    idle: Condvar,
    /// Ends the periodic pruner (on close or drop).
    stop: Arc<Stop>,
    /// Joined on close, so no pruning runs once `close` returns.
    pruner: Mutex<Option<JoinHandle<()>>>,
    faults: Faults,
}

struct Inflight {
    running: usize,
    closed: bool,
}

impl Drop for PgInner {
    fn drop(&mut self) {
        // Not joined: the last handle may be the pruner's own.
        self.stop.stop();
        if let Some(pool) = self.pool.lock().take() {
            let _ = std::thread::Builder::new()
                .name("store-pg-drop".into())
                .spawn(move || drop(pool));
        }
    }
}

/// How one attempt at a mutation ended.
enum Attempt {
    Committed(Ts, WriteSet),
    Aborted,
    Conflict,
    Failed(StoreError),
}

impl PgInner {
    fn pool(&self) -> Result<PgPool> {
        self.pool
            .lock()
            .clone()
            .ok_or_else(|| StoreError::Unavailable("the store is closed".into()))
    }

    /// A connection with `begin` (the first statements of a transaction, or a probe) run on it.
    /// After a database restart pooled connections are dead; those fail here, before any work, so
    /// trying another one is safe.
    fn begin(&self, begin: &str) -> Result<(PgTx, Vec<SimpleQueryMessage>)> {
        let pool = self.pool()?;
        let mut last_error = None;
        for _ in 0..=pool.max_size() {
            let conn = pool.get().map_err(unavailable)?;
            let mut tx = PgTx { conn };
            match tx.conn.simple_query(begin) {
                Ok(messages) => return Ok((tx, messages)),
                Err(e) if tx.conn.is_closed() || connection_lost(&e) => {
                    last_error = Some(map_err(e))
                }
                Err(e) => return Err(map_err(e)),
            }
        }
        Err(last_error
            .unwrap_or_else(|| StoreError::Unavailable("no PostgreSQL connection".into())))
    }

    fn run_job(&self, mut job: Box<dyn WriteJob>) {
        let mut attempt = 1;
        let started = Instant::now();
        let finish = loop {
            match self.attempt(&mut *job) {
                Attempt::Committed(ts, writes) => break Finish::Committed(ts, writes),
                Attempt::Aborted => break Finish::Aborted,
                Attempt::Failed(error) => break Finish::Failed(error),
                Attempt::Conflict if started.elapsed() >= CONFLICT_BUDGET => {
                    break Finish::Failed(StoreError::Conflict)
                }
                Attempt::Conflict => {
                    // Randomized, growing backoff spreads the retries of transactions that collided.
                    let cap = 1u64 << attempt.min(6);
                    std::thread::sleep(Duration::from_millis(
                        rand::thread_rng().gen_range(1..=cap),
                    ));
                    attempt += 1;
                }
            }
        };
        job.finish(finish);
    }

    fn attempt(&self, job: &mut dyn WriteJob) -> Attempt {
        let tx = match self.begin("BEGIN ISOLATION LEVEL SERIALIZABLE") {
            Ok((tx, _)) => tx,
            Err(error) => return Attempt::Failed(error),
        };
        let (conn, outcome) = job.run(Box::new(tx));
        let conn: Box<dyn Any> = conn;
        let mut tx = conn
            .downcast::<PgTx>()
            .expect("a job hands back its own connection");
        let writes = match outcome {
            RunOutcome::Abort { retry } => {
                let _ = tx.exec("ROLLBACK");
                return if retry {
                    Attempt::Conflict
                } else {
                    Attempt::Aborted
                };
            }
            RunOutcome::Commit(writes) => writes,
        };
        let _order = self.commit_order.lock();
        let bytes = writes.to_bytes();
        // The transaction id comes back with the ts, so that a COMMIT whose answer is lost can be
        // looked up afterwards (`resolve`).
        let sql = "INSERT INTO ss_commit_log (ts, writes) VALUES (ss_next_commit_ts(), $1) RETURNING ts, txid_current()";
        let (ts, xid) = match tx.query(sql, &[(&bytes, Type::BYTEA)]) {
            Ok(rows) => match rows.first() {
                Some(row) => (Ts(row.get::<_, i64>(0) as u64), row.get::<_, i64>(1)),
                None => {
                    let _ = tx.exec("ROLLBACK");
                    return Attempt::Failed(StoreError::Internal(
                        "the commit log insert returned no row".into(),
                    ));
                }
            },
            // COMMIT was never sent: whatever happened, nothing was written.
            Err(error) => {
                let _ = tx.exec("ROLLBACK");
                return match error {
                    StoreError::Conflict => Attempt::Conflict,
                    error => Attempt::Failed(error),
                };
            }
        };
        let fault = self.faults.get();
        if fault == Some(Fault::DiskFull) {
            let _ = tx.exec("ROLLBACK");
            return Attempt::Failed(StoreError::StorageFull(
                "PostgreSQL: could not extend file: No space left on device (53100, injected)"
                    .into(),
            ));
        }
        if fault == Some(Fault::CommitConnectionKilled) {
            // The session ends here, so the transaction aborts; the COMMIT below fails as if the
            // connection had dropped on its way.
            let _ = tx.exec("SELECT pg_terminate_backend(pg_backend_pid())");
        }
        let committed = match tx.conn.batch_execute("COMMIT") {
            Ok(())
                if matches!(
                    fault,
                    Some(Fault::CommitReplyLost | Fault::CommitUnknowable)
                ) =>
            {
                Err(None)
            }
            Ok(()) => Ok(()),
            Err(e) if tx.conn.is_closed() || connection_lost(&e) => Err(None),
            Err(e) => Err(Some(map_err(e))),
        };
        let outcome = match committed {
            Ok(()) => Ok(()),
            // The COMMIT may or may not have been applied: find out before answering.
            Err(None) => {
                drop(tx);
                self.resolve(xid, fault == Some(Fault::CommitUnknowable))
            }
            Err(Some(error)) => {
                let _ = tx.exec("ROLLBACK");
                Err(error)
            }
        };
        match outcome {
            Ok(()) => {
                self.shared.publish(ts, &writes);
                Attempt::Committed(ts, writes)
            }
            Err(StoreError::Conflict) => Attempt::Conflict,
            Err(error) => Attempt::Failed(error),
        }
    }

    /// The outcome of transaction `xid`, whose COMMIT went out on a connection that was lost
    /// before the answer came: `Ok` when it committed, `Unavailable` when it certainly did not
    /// (retrying is safe), `CommitUnknown` when that cannot be found out within `RESOLVE_BUDGET`.
    ///
    /// `txid_status` answers from the commit log of PostgreSQL itself. A transaction still "in
    /// progress" belongs to a session whose connection this side lost but the server has not
    /// noticed yet (it holds the commit lock, stalling every commit): that session is ended, so
    /// the transaction aborts unless its COMMIT arrived.
    fn resolve(&self, xid: i64, unknowable: bool) -> Result<()> {
        let started = Instant::now();
        let mut wait = Duration::from_millis(50);
        let mut last = String::from("the database did not answer");
        while !unknowable && started.elapsed() < RESOLVE_BUDGET {
            let status = self
                .begin(&format!("SELECT txid_status({xid})"))
                .map(|(_, m)| {
                    m.iter().find_map(|m| match m {
                        SimpleQueryMessage::Row(row) => Some(row.get(0).map(str::to_string)),
                        _ => None,
                    })
                });
            match status {
                Ok(Some(Some(status))) if status == "committed" => {
                    tracing::warn!(
                        xid,
                        "the connection was lost during COMMIT; it had committed"
                    );
                    return Ok(());
                }
                Ok(Some(Some(status))) if status == "aborted" => {
                    tracing::warn!(xid, "the connection was lost during COMMIT; it had aborted");
                    return Err(StoreError::Unavailable(
                        "the connection to PostgreSQL was lost before the commit went through; nothing was written".into(),
                    ));
                }
                Ok(Some(Some(_))) => {
                    last = "the transaction is still in progress on the server".into();
                    // The 32-bit xid PostgreSQL shows in pg_stat_activity.
                    let sql = format!(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_xid::text = '{}'",
                        xid.rem_euclid(1 << 32)
                    );
                    let _ = self.begin(&sql);
                }
                // No status: the id is too old to know, which cannot happen seconds later.
                Ok(_) => {
                    last = "PostgreSQL no longer knows the transaction".into();
                    break;
                }
                Err(error) => last = error.to_string(),
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_secs(1));
        }
        tracing::error!(xid, %last, "the outcome of a commit is unknown");
        Err(StoreError::CommitUnknown(format!(
            "the connection to PostgreSQL was lost during COMMIT and the outcome could not be found out ({last})"
        )))
    }
}

impl PgBackend {
    fn begin_read(&self) -> Result<(Box<dyn TxConn>, Ts)> {
        let sql = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT COALESCE(max(ts), 0)::TEXT FROM ss_commit_log";
        let (tx, messages) = self.inner.begin(sql)?;
        // Commits become visible in ts order, so the largest visible ts describes the snapshot.
        let ts = messages
            .iter()
            .find_map(|m| match m {
                SimpleQueryMessage::Row(row) => row.get(0).and_then(|t| t.parse::<u64>().ok()),
                _ => None,
            })
            .unwrap_or(0);
        Ok((Box::new(tx), Ts(ts)))
    }

    fn end_read(&self, conn: Box<dyn TxConn>) {
        let conn: Box<dyn Any> = conn;
        if let Ok(mut tx) = conn.downcast::<PgTx>() {
            let _ = tx.exec("COMMIT");
        }
    }
}

impl Persistence for PgBackend {
    fn read(self: Arc<Self>, job: ReadJob) {
        // Pooled connections block on the network; the blocking pool absorbs slow queries.
        tokio::task::spawn_blocking(move || {
            if let Some(conn) = job(self.begin_read()) {
                self.end_read(conn);
            }
        });
    }

    fn submit(&self, job: Box<dyn WriteJob>) {
        {
            let mut inflight = self.inner.inflight.lock();
            if inflight.closed {
                drop(inflight);
                return job.finish(Finish::Failed(StoreError::Unavailable(
                    "the store is closed".into(),
                )));
            }
            inflight.running += 1;
        }
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            inner.run_job(job);
            let mut inflight = inner.inflight.lock();
            inflight.running -= 1;
            if inflight.running == 0 {
                inner.idle.notify_all();
            }
        });
    }

    fn health_check(&self) -> Result<()> {
        self.inner.begin("SELECT 1").map(drop)
    }

    fn write_probe(&self) -> Result<()> {
        if self.inner.faults.is(Fault::DiskFull) {
            return Err(StoreError::StorageFull(
                "PostgreSQL: could not extend file: No space left on device (53100, injected)"
                    .into(),
            ));
        }
        // One autocommit statement: a durable write (WAL and its flush), no commit log entry.
        let sql = "INSERT INTO ss_meta (key, value) VALUES ('health_probe', (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT) ON CONFLICT (key) DO UPDATE SET value = excluded.value";
        self.inner.begin(sql).map(drop)
    }

    fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    fn close(&self) -> Result<()> {
        let mut inflight = self.inner.inflight.lock();
        inflight.closed = true;
        while inflight.running > 0 {
            self.inner.idle.wait(&mut inflight);
        }
        drop(inflight);
        self.inner.stop.stop();
        if let Some(pruner) = self.inner.pruner.lock().take() {
            let _ = pruner.join();
        }
        Ok(())
    }

    fn prune_commit_log(&self, older_than: Duration) -> Result<u64> {
        self.inner.prune_commit_log(older_than)
    }
}

fn unavailable(error: r2d2::Error) -> StoreError {
    StoreError::Unavailable(format!("no PostgreSQL connection: {error}"))
}

/// Serialization failures and deadlocks are conflicts (the mutation runs again); a full disk is
/// `StorageFull`, a read-only server `ReadOnly`; lost connections and other resource exhaustion
/// are `Unavailable`; anything else is internal.
fn map_err(error: postgres::Error) -> StoreError {
    let code = error.code().cloned();
    let closed = error.is_closed() || io_error(&error);
    // `Display` of a server error says only "db error"; the message is in the `DbError`.
    let error = match error.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => error.to_string(),
    };
    match code {
        Some(code)
            if code == SqlState::T_R_SERIALIZATION_FAILURE
                || code == SqlState::T_R_DEADLOCK_DETECTED =>
        {
            StoreError::Conflict
        }
        None if closed => StoreError::Unavailable(format!("PostgreSQL: {error}")),
        Some(code) if code == SqlState::DISK_FULL => {
            StoreError::StorageFull(format!("PostgreSQL: {error}"))
        }
        Some(code) if code == SqlState::READ_ONLY_SQL_TRANSACTION => {
            StoreError::ReadOnly(format!("PostgreSQL: {error}"))
        }
        None => StoreError::Internal(format!("PostgreSQL client: {error}")),
        Some(code) if ["08", "53", "57"].contains(&&code.code()[..2]) => {
            StoreError::Unavailable(format!("PostgreSQL: {error}"))
        }
        Some(_) => StoreError::Internal(format!("PostgreSQL: {error}")),
    }
}

/// The connection itself is gone: closed, an I/O failure, or the server ending the session
/// (class 57P: admin or crash shutdown, which arrives as an error before the socket closes).
fn connection_lost(error: &postgres::Error) -> bool {
    error.is_closed()
        || io_error(error)
        || error.code().is_some_and(|c| c.code().starts_with("57P"))
}

fn io_error(error: &postgres::Error) -> bool {
    std::error::Error::source(error).is_some_and(|source| source.is::<std::io::Error>())
}
