//! The SQLite backend: WAL with `synchronous=FULL`, one writer thread that group-commits mutations,
//! reader threads with a read-only connection each, and a checkpointer thread (`threads`); the SQL
//! of a transaction is in `tx`.

mod threads;
mod tx;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use rusqlite::{Connection, ErrorCode};

use super::{apply_plan, CatalogConn, Finish, Persistence, ReadJob, Shared, WriteJob};
use crate::catalog::plan;
use crate::faults::Faults;
use crate::schema::Schema;
use crate::store::Opened;
use crate::{Result, StoreError, Ts};
use threads::{open_reader, run_checkpointer, run_reader, ReaderTask, Writer};
use tx::SqliteTx;

/// Versioned migrations; `ss_meta.schema_version` counts how many have run.
const MIGRATIONS: &[&str] = &[include_str!("../sql/sqlite_001.sql")];

/// Most jobs one group commit takes; bounds the latency a long batch adds to its first job.
const MAX_BATCH: usize = 256;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// WAL pages (4 KiB) after which a commit checkpoints by itself.
const BACKSTOP_CHECKPOINT_PAGES: i64 = 20_000;
/// How long the checkpointer lets commits accumulate before copying them into the database file.
/// Fewer, larger checkpoints: at 200 ms their fsyncs showed up in the insert p99 at 16 clients
/// (4.7-5.3 ms); at 1 s it measured 2.7-3.5 ms.
const CHECKPOINT_DELAY: Duration = Duration::from_millis(1000);

pub(crate) fn open(path: &Path, readers: usize, schema: &Schema) -> Result<Opened> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            StoreError::Unavailable(format!("cannot create {}: {e}", parent.display()))
        })?;
    }
    let conn = Connection::open(path).map_err(map_err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(map_err)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(map_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(map_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    // Each job of a group commit runs in a savepoint, whose journal otherwise spills to a temp file
    // after 64 KiB, i.e. after a couple of jobs: keep it in memory.
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(map_err)?;
    // Checkpoints run on their own thread (see `run_checkpointer`), so a commit never waits for one;
    // this automatic one is only a backstop should that thread fall far behind.
    conn.pragma_update(None, "wal_autocheckpoint", BACKSTOP_CHECKPOINT_PAGES)
        .map_err(map_err)?;

    let mut tx = SqliteTx { conn };
    tx.exec("BEGIN IMMEDIATE")?;
    let migrated = migrate(&mut tx, schema);
    match &migrated {
        Ok(_) => tx.exec("COMMIT")?,
        Err(_) => {
            let _ = tx.exec("ROLLBACK");
        }
    }
    let (catalog, last_ts) = migrated?;

    // Each reader thread owns one read-only connection, so a query runs where its connection is,
    // without a pool checkout or a hop through the general blocking pool.
    let (reads, read_queue) = crossbeam_channel::unbounded();
    for n in 0..readers.max(1) {
        let conn = open_reader(path)?;
        let queue: Receiver<ReaderTask> = read_queue.clone();
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name(format!("store-sqlite-reader-{n}"))
            .spawn(move || run_reader(conn, &path, queue))
            .map_err(|e| StoreError::Internal(format!("cannot start a reader thread: {e}")))?;
    }

    let (checkpoint, checkpoint_wanted) = crossbeam_channel::bounded(1);
    let conn = Connection::open(path).map_err(map_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(map_err)?;
    std::thread::Builder::new()
        .name("store-sqlite-checkpointer".into())
        .spawn(move || run_checkpointer(conn, checkpoint_wanted))
        .map_err(|e| StoreError::Internal(format!("cannot start the checkpointer: {e}")))?;

    let shared = Arc::new(Shared::new(last_ts));
    let faults = Arc::new(Faults::default());
    let (jobs, queue) = crossbeam_channel::unbounded();
    let writer = Writer {
        faults: faults.clone(),
        tx: Some(Box::new(tx)),
        queue,
        shared: shared.clone(),
        last_ts: last_ts.0,
        checkpoint: Some(checkpoint),
    };
    std::thread::Builder::new()
        .name("store-sqlite-writer".into())
        .spawn(move || writer.run())
        .map_err(|e| StoreError::Internal(format!("cannot start the writer thread: {e}")))?;
    let backend = SqliteBackend {
        reads: Mutex::new(Some(reads)),
        jobs: Mutex::new(Some(jobs)),
        faults,
    };
    Ok(Opened {
        backend: Arc::new(backend),
        catalog,
        shared,
    })
}

/// Writes a consistent, compacted copy of the database at `path` to `to` with `VACUUM INTO`, from
/// a read transaction of its own: writers (a running server) go on meanwhile, and the copy is the
/// database as of one commit. The copy is checked (`quick_check`) before this returns its size.
pub(crate) fn backup(path: &Path, to: &Path) -> Result<u64> {
    if !path.exists() {
        return Err(StoreError::Invalid(format!(
            "no database at {}",
            path.display()
        )));
    }
    if to.exists() {
        return Err(StoreError::Invalid(format!(
            "{} exists already; a backup never overwrites a file",
            to.display()
        )));
    }
    let target = to
        .to_str()
        .ok_or_else(|| StoreError::Invalid(format!("{} is not UTF-8", to.display())))?;
    let conn = open_reader(path)?;
    conn.execute("VACUUM INTO ?1", [target]).map_err(map_err)?;
    let copy = open_reader(to)?;
    let verdict: String = copy
        .query_row("PRAGMA quick_check", [], |row| row.get(0))
        .map_err(map_err)?;
    if verdict != "ok" {
        return Err(StoreError::Internal(format!(
            "the backup at {} fails its check: {verdict}",
            to.display()
        )));
    }
    std::fs::metadata(to)
        .map(|m| m.len())
        .map_err(|e| StoreError::Unavailable(format!("cannot read {}: {e}", to.display())))
}

/// Runs pending migrations and reconciles the catalog, inside the caller's transaction.
fn migrate(tx: &mut SqliteTx, schema: &Schema) -> Result<(crate::catalog::Catalog, Ts)> {
    tx.exec("CREATE TABLE IF NOT EXISTS ss_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")?;
    let version = tx.meta("schema_version")?.unwrap_or(0) as usize;
    if version > MIGRATIONS.len() {
        return Err(StoreError::Internal(format!(
            "database schema version {version} is newer than this build knows"
        )));
    }
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.exec(migration)?;
        tx.set_meta("schema_version", i as i64 + 1)?;
    }
    let rows = tx.load_catalog()?;
    let plan = plan(schema, &rows);
    apply_plan(tx, &plan)?;
    let last_ts = Ts(tx.meta("last_ts")?.unwrap_or(0) as u64);
    Ok((plan.catalog, last_ts))
}

struct SqliteBackend {
    /// `None` once closed.
    reads: Mutex<Option<Sender<ReaderTask>>>,
    /// `None` once closed.
    jobs: Mutex<Option<Sender<Msg>>>,
    faults: Arc<Faults>,
}

enum Msg {
    Job(Box<dyn WriteJob>),
    /// A write probe, answered on the channel (health checks).
    Probe(Sender<Result<()>>),
    Close(Sender<Result<()>>),
}

impl Persistence for SqliteBackend {
    fn read(self: Arc<Self>, job: ReadJob) {
        let sent = match &*self.reads.lock() {
            Some(reads) => reads
                .send(ReaderTask::Read(job))
                .map_err(|e| e.into_inner()),
            None => Err(ReaderTask::Read(job)),
        };
        if let Err(ReaderTask::Read(job)) = sent {
            job(Err(StoreError::Unavailable("the store is closed".into())));
        }
    }

    fn submit(&self, job: Box<dyn WriteJob>) {
        let sent = match &*self.jobs.lock() {
            Some(jobs) => jobs.send(Msg::Job(job)).map_err(|e| e.into_inner()),
            None => Err(Msg::Job(job)),
        };
        if let Err(Msg::Job(job)) = sent {
            job.finish(Finish::Failed(StoreError::Unavailable(
                "the store is closed".into(),
            )));
        }
    }

    fn health_check(&self) -> Result<()> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        match &*self.reads.lock() {
            Some(reads) => reads
                .send(ReaderTask::Ping(reply))
                .map_err(|_| StoreError::Unavailable("the SQLite readers stopped".into()))?,
            None => return Err(StoreError::Unavailable("the store is closed".into())),
        }
        answer
            .recv_timeout(BUSY_TIMEOUT)
            .map_err(|_| StoreError::Unavailable("no SQLite reader answered".into()))?
    }

    fn write_probe(&self) -> Result<()> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        match &*self.jobs.lock() {
            Some(jobs) => jobs
                .send(Msg::Probe(reply))
                .map_err(|_| StoreError::Unavailable("the SQLite writer stopped".into()))?,
            None => return Err(StoreError::Unavailable("the store is closed".into())),
        }
        // Queued behind the mutations already submitted, so it waits as long as they take.
        answer
            .recv_timeout(BUSY_TIMEOUT * 2)
            .map_err(|_| StoreError::Unavailable("the SQLite writer did not answer".into()))?
    }

    fn faults(&self) -> &Faults {
        &self.faults
    }

    fn close(&self) -> Result<()> {
        // Reader threads finish what is queued, then exit and close their connections.
        self.reads.lock().take();
        let Some(jobs) = self.jobs.lock().take() else {
            return Ok(());
        };
        let (reply, done) = crossbeam_channel::bounded(1);
        // Jobs queued before the close message still run: the queue is FIFO.
        if jobs.send(Msg::Close(reply)).is_err() {
            return Ok(());
        }
        done.recv().unwrap_or(Ok(()))
    }
}

/// A full disk is `StorageFull` and a read-only file `ReadOnly`; other resource problems (busy, I/O)
/// are `Unavailable`: the caller may retry later. Anything else is a bug or corruption.
fn map_err(error: rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StoreError::StorageFull(error.to_string()),
        Some(ErrorCode::ReadOnly) => StoreError::ReadOnly(error.to_string()),
        Some(
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::SystemIoFailure
            | ErrorCode::CannotOpen
            | ErrorCode::OutOfMemory,
        ) => StoreError::Unavailable(error.to_string()),
        _ => StoreError::Internal(format!("SQLite: {error}")),
    }
}

/// What SQLite answers when the disk is full (for `Fault::DiskFull`).
fn disk_full() -> StoreError {
    map_err(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
        Some("database or disk is full (injected)".into()),
    ))
}
