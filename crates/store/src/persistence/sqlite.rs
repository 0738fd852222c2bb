//! The SQLite backend: WAL with `synchronous=FULL`, one writer thread that group-commits mutations,
//! and a pool of read-only connections for snapshot queries.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension};

use super::{
    apply_plan, now_ns, CatalogConn, Finish, Persistence, ReadJob, RunOutcome, Shared, StoredDoc,
    TxConn, WriteJob,
};
use crate::catalog::{plan, CatalogRows, IndexRow};
use crate::keys::{key_successor, prefix_successor};
use crate::query::Order;
use crate::readset::{IndexId, KeyRange, WriteSet};
use crate::schema::Schema;
use crate::store::Opened;
use crate::{Result, StoreError, Ts};

/// Versioned migrations; `ss_meta.schema_version` counts how many have run.
const MIGRATIONS: &[&str] = &[include_str!("sql/sqlite_001.sql")];

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
    let (jobs, queue) = crossbeam_channel::unbounded();
    let writer = Writer {
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
    };
    Ok(Opened {
        backend: Arc::new(backend),
        catalog,
        shared,
    })
}

/// The checkpointer thread: after commits, waits a little so several batches share one
/// checkpoint, then copies the WAL into the database file without blocking readers or the writer
/// (PASSIVE). Once a checkpoint has caught up, the writer's next commit starts the WAL over, so it
/// stays small. Exits when the writer drops its end of `wanted`.
fn run_checkpointer(conn: Connection, wanted: Receiver<()>) {
    while wanted.recv().is_ok() {
        std::thread::sleep(CHECKPOINT_DELAY);
        // Commits during the delay are covered by this checkpoint.
        let _ = wanted.try_recv();
        let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
        });
        match done {
            Ok((log, copied)) if log > BACKSTOP_CHECKPOINT_PAGES / 2 => {
                tracing::warn!(
                    log,
                    copied,
                    "the SQLite WAL is large; checkpoints are falling behind"
                )
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "SQLite checkpoint failed"),
        }
    }
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
}

/// Work for a reader thread.
enum ReaderTask {
    Read(ReadJob),
    /// A trivial query, answered on the channel (health checks).
    Ping(Sender<Result<()>>),
}

fn open_reader(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(map_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(map_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// A reader thread: runs read jobs one at a time on its own connection until the backend closes.
fn run_reader(conn: Connection, path: &Path, queue: Receiver<ReaderTask>) {
    let mut tx = Some(Box::new(SqliteTx { conn }));
    while let Ok(task) = queue.recv() {
        // A job that lost the connection (it panicked, or kept it) gets a fresh one next time.
        let current = match tx.take() {
            Some(current) => Ok(current),
            None => open_reader(path).map(|conn| Box::new(SqliteTx { conn })),
        };
        tx = match (task, current) {
            (ReaderTask::Ping(reply), Ok(current)) => {
                let _ = reply.send(
                    current
                        .conn
                        .query_row("SELECT 1", [], |_| Ok(()))
                        .map_err(map_err),
                );
                Some(current)
            }
            (ReaderTask::Ping(reply), Err(e)) => {
                let _ = reply.send(Err(e));
                None
            }
            (ReaderTask::Read(job), Ok(current)) => read_on(current, job),
            (ReaderTask::Read(job), Err(e)) => {
                job(Err(e));
                None
            }
        };
    }
}

/// Runs one read job in a snapshot transaction on `tx`; returns the connection when it came back.
fn read_on(tx: Box<SqliteTx>, job: ReadJob) -> Option<Box<SqliteTx>> {
    if !tx.conn.is_autocommit() {
        // Left mid-transaction by an earlier failure; start clean.
        let _ = tx.exec("ROLLBACK");
    }
    // The first read pins the WAL snapshot, so the ts and every later read agree.
    let begun = tx
        .exec_cached("BEGIN DEFERRED")
        .and_then(|_| tx.meta("last_ts"));
    let ts = match begun {
        Ok(ts) => Ts(ts.unwrap_or(0) as u64),
        Err(e) => {
            let _ = tx.exec("ROLLBACK");
            job(Err(e));
            return Some(tx);
        }
    };
    let back = catch_unwind(AssertUnwindSafe(|| job(Ok((tx, ts))))).ok()??;
    let back: Box<dyn Any> = back;
    let tx = back.downcast::<SqliteTx>().ok()?;
    if tx.exec_cached("COMMIT").is_err() {
        let _ = tx.exec("ROLLBACK");
    }
    Some(tx)
}

enum Msg {
    Job(Box<dyn WriteJob>),
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

/// The writer thread: owns the only write connection and group-commits queued mutations.
struct Writer {
    /// Kept boxed so it can be lent to jobs as a `dyn TxConn` without reallocating.
    tx: Option<Box<SqliteTx>>,
    queue: Receiver<Msg>,
    shared: Arc<Shared>,
    last_ts: u64,
    /// Wakes the checkpointer; dropped at shutdown so it exits.
    checkpoint: Option<Sender<()>>,
}

impl Writer {
    fn run(mut self) {
        while let Ok(msg) = self.queue.recv() {
            let mut batch = match msg {
                Msg::Job(job) => vec![job],
                Msg::Close(reply) => return self.shutdown(reply),
            };
            let mut close = None;
            while batch.len() < MAX_BATCH {
                match self.queue.try_recv() {
                    Ok(Msg::Job(job)) => batch.push(job),
                    Ok(Msg::Close(reply)) => {
                        close = Some(reply);
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.commit_batch(batch);
            if let Some(reply) = close {
                return self.shutdown(reply);
            }
        }
    }

    fn shutdown(mut self, reply: Sender<Result<()>>) {
        self.checkpoint.take();
        let result = match self.tx.take() {
            Some(tx) => tx
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .map_err(map_err),
            None => Ok(()),
        };
        let _ = reply.send(result);
    }

    /// Runs every job in its own savepoint inside one transaction and commits once, so the batch
    /// shares one fsync. A job that fails rolls back to its savepoint without affecting the others.
    fn commit_batch(&mut self, batch: Vec<Box<dyn WriteJob>>) {
        let Some(mut tx) = self.tx.take() else {
            for job in batch {
                job.finish(Finish::Failed(StoreError::Unavailable(
                    "the writer connection is gone".into(),
                )));
            }
            return;
        };
        let mut committed: Vec<(Box<dyn WriteJob>, Ts, WriteSet)> = Vec::with_capacity(batch.len());
        let mut aborted = Vec::new();
        let mut unrun = Vec::new();
        let mut failure = tx.exec("BEGIN IMMEDIATE").err();
        if failure.is_none() {
            // Another process (a CLI command, a second server by mistake) may have committed since
            // our last batch; its ts is the floor for ours.
            match tx.meta("last_ts") {
                Ok(stored) => self.last_ts = self.last_ts.max(stored.unwrap_or(0) as u64),
                Err(e) => failure = Some(e),
            }
        }
        let mut pending = batch.into_iter();
        if failure.is_none() {
            for mut job in pending.by_ref() {
                if let Err(e) = tx.exec("SAVEPOINT job") {
                    failure = Some(e);
                    unrun.push(job);
                    break;
                }
                let (conn, outcome) = job.run(tx);
                let conn: Box<dyn Any> = conn;
                tx = conn
                    .downcast()
                    .expect("a job hands back the writer's own connection");
                let closed = match outcome {
                    RunOutcome::Commit(writes) => {
                        self.last_ts = (self.last_ts + 1).max(now_ns());
                        committed.push((job, Ts(self.last_ts), writes));
                        tx.exec("RELEASE job")
                    }
                    RunOutcome::Abort { .. } => {
                        aborted.push(job);
                        tx.exec("ROLLBACK TO job")
                            .and_then(|_| tx.exec("RELEASE job"))
                    }
                };
                if let Err(e) = closed {
                    failure = Some(e);
                    break;
                }
            }
        }
        if failure.is_none() && !committed.is_empty() {
            failure = tx
                .set_meta("last_ts", self.last_ts as i64)
                .and_then(|_| tx.exec("COMMIT"))
                .err();
        } else if failure.is_none() {
            failure = tx.exec("ROLLBACK").err();
        }
        if failure.is_some() && !tx.conn.is_autocommit() {
            let _ = tx.exec("ROLLBACK");
        }
        self.tx = Some(tx);
        match failure {
            None => {
                if let (Some(checkpoint), false) = (&self.checkpoint, committed.is_empty()) {
                    // Full means a checkpoint is already due; nothing more to ask.
                    let _ = checkpoint.try_send(());
                }
                for (job, ts, writes) in committed {
                    self.shared.publish(ts, &writes);
                    job.finish(Finish::Committed(ts, writes));
                }
            }
            Some(error) => {
                tracing::error!(%error, "SQLite group commit failed");
                let error = StoreError::Unavailable(format!("the commit failed: {error}"));
                for (job, _, _) in committed {
                    job.finish(Finish::Failed(error.clone()));
                }
                for job in unrun.into_iter().chain(pending) {
                    job.finish(Finish::Failed(error.clone()));
                }
            }
        }
        for job in aborted {
            job.finish(Finish::Aborted);
        }
    }
}

struct SqliteTx {
    conn: Connection,
}

impl SqliteTx {
    fn conn(&self) -> &Connection {
        &self.conn
    }

    fn exec(&self, sql: &str) -> Result<()> {
        self.conn().execute_batch(sql).map_err(map_err)
    }

    /// A single statement, prepared once per connection (BEGIN, COMMIT, savepoints: run per query).
    fn exec_cached(&self, sql: &str) -> Result<()> {
        self.run(sql, [])
    }

    fn meta(&self, key: &str) -> Result<Option<i64>> {
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT value FROM ss_meta WHERE key = ?1")
            .map_err(map_err)?;
        stmt.query_row([key], |row| row.get(0))
            .optional()
            .map_err(map_err)
    }

    fn set_meta(&self, key: &str, value: i64) -> Result<()> {
        let sql = "INSERT INTO ss_meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value";
        self.run(sql, params![key, value])
    }

    fn run(&self, sql: &str, params: impl rusqlite::Params) -> Result<()> {
        let mut stmt = self.conn().prepare_cached(sql).map_err(map_err)?;
        stmt.execute(params).map(|_| ()).map_err(map_err)
    }
}

fn doc_from_row(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<StoredDoc> {
    Ok(StoredDoc {
        id: row.get(first)?,
        table_number: row.get(first + 1)?,
        creation_time: row.get(first + 2)?,
        value: row.get(first + 3)?,
    })
}

impl TxConn for SqliteTx {
    fn get(&mut self, id: &[u8]) -> Result<Option<StoredDoc>> {
        let mut stmt = self
            .conn()
            .prepare_cached(
                "SELECT id, table_number, creation_time, value FROM ss_documents WHERE id = ?1",
            )
            .map_err(map_err)?;
        stmt.query_row([id], |row| doc_from_row(row, 0))
            .optional()
            .map_err(map_err)
    }

    fn scan(
        &mut self,
        index: IndexId,
        range: &KeyRange,
        order: Order,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, StoredDoc)>> {
        // CROSS JOIN keeps the entries as the outer loop, so SQLite walks the index range in order.
        let direction = match order {
            Order::Asc => "ASC",
            Order::Desc => "DESC",
        };
        let upper = if range.end.is_some() {
            "AND e.key < ?4"
        } else {
            ""
        };
        let sql = format!(
            "SELECT e.key, d.id, d.table_number, d.creation_time, d.value \
             FROM ss_index_entries e CROSS JOIN ss_documents d ON d.id = e.doc_id \
             WHERE e.index_id = ?1 AND e.key >= ?2 {upper} ORDER BY e.key {direction} LIMIT ?3"
        );
        let mut stmt = self.conn().prepare_cached(&sql).map_err(map_err)?;
        let limit = limit.min(i64::MAX as usize) as i64;
        let map = |row: &rusqlite::Row<'_>| Ok((row.get(0)?, doc_from_row(row, 1)?));
        let rows = match &range.end {
            Some(end) => stmt.query_map(params![index, range.start, limit, end], map),
            None => stmt.query_map(params![index, range.start, limit], map),
        };
        rows.and_then(|rows| rows.collect()).map_err(map_err)
    }

    fn count(&mut self, index: IndexId, range: &KeyRange) -> Result<u64> {
        let count = |row: &rusqlite::Row<'_>| row.get::<_, i64>(0);
        let counted = match &range.end {
            Some(end) => self
                .conn()
                .prepare_cached("SELECT count(*) FROM ss_index_entries WHERE index_id = ?1 AND key >= ?2 AND key < ?3")
                .and_then(|mut stmt| stmt.query_row(params![index, range.start, end], count)),
            None => self
                .conn()
                .prepare_cached("SELECT count(*) FROM ss_index_entries WHERE index_id = ?1 AND key >= ?2")
                .and_then(|mut stmt| stmt.query_row(params![index, range.start], count)),
        };
        counted.map(|n| n as u64).map_err(map_err)
    }

    fn insert_doc(&mut self, doc: &StoredDoc) -> Result<()> {
        let sql = "INSERT INTO ss_documents (id, table_number, creation_time, value) VALUES (?1, ?2, ?3, ?4)";
        self.run(
            sql,
            params![doc.id, doc.table_number, doc.creation_time, doc.value],
        )
    }

    fn update_doc(&mut self, doc: &StoredDoc) -> Result<()> {
        self.run(
            "UPDATE ss_documents SET value = ?2 WHERE id = ?1",
            params![doc.id, doc.value],
        )
    }

    fn delete_doc(&mut self, id: &[u8]) -> Result<()> {
        self.run("DELETE FROM ss_documents WHERE id = ?1", params![id])
    }

    fn insert_entry(&mut self, index: IndexId, key: &[u8], doc_id: &[u8]) -> Result<()> {
        self.run(
            "INSERT INTO ss_index_entries (index_id, key, doc_id) VALUES (?1, ?2, ?3)",
            params![index, key, doc_id],
        )
    }

    fn delete_entry(&mut self, index: IndexId, key: &[u8]) -> Result<()> {
        self.run(
            "DELETE FROM ss_index_entries WHERE index_id = ?1 AND key = ?2",
            params![index, key],
        )
    }
}

impl CatalogConn for SqliteTx {
    fn load_catalog(&mut self) -> Result<CatalogRows> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT name, number FROM ss_tables")
            .map_err(map_err)?;
        let tables = stmt
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(map_err)?;
        let mut stmt = conn
            .prepare("SELECT id, table_number, name, fields FROM ss_indexes")
            .map_err(map_err)?;
        let raw: Vec<(IndexId, u32, String, String)> = stmt
            .query_map([], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .and_then(|rows| rows.collect())
            .map_err(map_err)?;
        let indexes = raw
            .into_iter()
            .map(|(id, table_number, name, fields)| {
                let fields = serde_json::from_str(&fields)
                    .map_err(|e| StoreError::Internal(format!("bad index catalog row: {e}")))?;
                Ok(IndexRow {
                    id,
                    table_number,
                    name,
                    fields,
                })
            })
            .collect::<Result<_>>()?;
        Ok(CatalogRows { tables, indexes })
    }

    fn add_table(&mut self, name: &str, number: u32) -> Result<()> {
        self.run(
            "INSERT INTO ss_tables (name, number) VALUES (?1, ?2)",
            params![name, number],
        )
    }

    fn add_index(&mut self, row: &IndexRow) -> Result<()> {
        let fields =
            serde_json::to_string(&row.fields).map_err(|e| StoreError::Internal(e.to_string()))?;
        let sql = "INSERT INTO ss_indexes (id, table_number, name, fields) VALUES (?1, ?2, ?3, ?4)";
        self.run(sql, params![row.id, row.table_number, row.name, fields])
    }

    fn drop_index(&mut self, id: IndexId) -> Result<()> {
        self.run(
            "DELETE FROM ss_index_entries WHERE index_id = ?1",
            params![id],
        )?;
        self.run("DELETE FROM ss_indexes WHERE id = ?1", params![id])
    }

    fn table_documents(
        &mut self,
        table_number: u32,
        after: &[u8],
        limit: usize,
    ) -> Result<Vec<StoredDoc>> {
        // Raw Ids start with the big-endian table number, so a table's documents form one id range.
        let prefix = table_number.to_be_bytes();
        let start = if after.is_empty() {
            prefix.to_vec()
        } else {
            key_successor(after)
        };
        let end = prefix_successor(&prefix).unwrap_or_else(|| vec![0xFF; 5]);
        let sql = "SELECT id, table_number, creation_time, value FROM ss_documents WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT ?3";
        let mut stmt = self.conn().prepare_cached(sql).map_err(map_err)?;
        let rows = stmt.query_map(params![start, end, limit as i64], |row| {
            doc_from_row(row, 0)
        });
        rows.and_then(|rows| rows.collect()).map_err(map_err)
    }
}

/// Resource problems (busy, full, I/O) are `Unavailable`: the caller may retry later. Anything else
/// is a bug or corruption.
fn map_err(error: rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure
            | ErrorCode::CannotOpen
            | ErrorCode::ReadOnly
            | ErrorCode::OutOfMemory,
        ) => StoreError::Unavailable(error.to_string()),
        _ => StoreError::Internal(format!("SQLite: {error}")),
    }
}
