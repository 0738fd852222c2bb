//! The PostgreSQL backend: serializable mutations retried on conflict, commit timestamps assigned in
//! commit order, a commit log other nodes can follow, and repeatable-read snapshot queries.

use std::any::Any;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use postgres::error::SqlState;
use postgres::types::{ToSql, Type};
use postgres::{NoTls, SimpleQueryMessage};
use r2d2_postgres::PostgresConnectionManager;
use rand::Rng;

use super::{
    apply_plan, CatalogConn, Finish, Persistence, ReadJob, RunOutcome, Shared, StoredDoc, TxConn,
    WriteJob,
};
use crate::catalog::{plan, Catalog, CatalogRows, IndexRow};
use crate::keys::{key_successor, prefix_successor};
use crate::query::Order;
use crate::readset::{IndexId, KeyRange, WriteSet};
use crate::schema::Schema;
use crate::store::Opened;
use crate::{Result, StoreError, Ts};

type PgPool = r2d2::Pool<PostgresConnectionManager<NoTls>>;
type PgConn = r2d2::PooledConnection<PostgresConnectionManager<NoTls>>;

/// Serializes catalog migrations between nodes opening at the same time.
const CATALOG_LOCK: i64 = 0x5353_0001;
/// How long a mutation that keeps losing serialization conflicts is retried before it reports
/// `Conflict`. A budget of time rather than a count of attempts: under heavy contention on one row
/// (many sign-ins of one account) each attempt is slow, and a count would give up too early.
const CONFLICT_BUDGET: Duration = Duration::from_secs(5);

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
    include_str!("sql/postgres_001.sql"),
    include_str!("sql/postgres_002.sql"),
];

/// How long commit log rows are kept. Every node's feed tails the log; a feed further behind than
/// this (a node cut off from the database, a stalled process) may find rows it needed gone and
/// resets, re-running every live query. Ten minutes rides out network blips and slow restarts
/// while keeping the log (and its index) small.
const COMMIT_LOG_RETENTION: Duration = Duration::from_secs(10 * 60);
/// How often each node prunes the commit log.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);
/// Rows deleted per pruning transaction, so one never holds locks or builds WAL for long.
const PRUNE_BATCH: i64 = 5000;

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
}

/// A stop signal the pruner sleeps on.
#[derive(Default)]
struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    fn stop(&self) {
        *self.stopped.lock() = true;
        self.wake.notify_all();
    }

    fn is_stopped(&self) -> bool {
        *self.stopped.lock()
    }

    /// Sleeps up to `timeout`; false once stopped.
    fn wait(&self, timeout: Duration) -> bool {
        let mut stopped = self.stopped.lock();
        if !*stopped {
            self.wake.wait_for(&mut stopped, timeout);
        }
        !*stopped
    }
}

/// Prunes the commit log every `PRUNE_INTERVAL` until the backend closes or goes away.
fn prune_periodically(inner: Weak<PgInner>, stop: Arc<Stop>) {
    while stop.wait(PRUNE_INTERVAL) {
        let Some(inner) = inner.upgrade() else { return };
        match inner.prune_commit_log(COMMIT_LOG_RETENTION) {
            Ok(0) => {}
            Ok(rows) => tracing::debug!(rows, "pruned the commit log"),
            Err(error) => tracing::warn!(%error, "pruning the commit log failed"),
        }
    }
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

    /// Deletes commit log rows older than `older_than` (by the database clock, which assigns the ts),
    /// batch by batch, always keeping the newest row: reads take the largest ts in the log as their
    /// snapshot ts. Returns how many rows this call deleted.
    fn prune_commit_log(&self, older_than: Duration) -> Result<u64> {
        let older_than = i64::try_from(older_than.as_nanos()).unwrap_or(i64::MAX);
        let mut total = 0;
        while !self.stop.is_stopped() {
            match self.prune_batch(older_than) {
                Ok(Some(deleted)) => {
                    total += deleted;
                    if deleted < PRUNE_BATCH as u64 {
                        break;
                    }
                }
                // Another node is pruning right now; what is left is the next round's.
                Ok(None) => break,
                Err(StoreError::Conflict) => break,
                Err(error) => return Err(error),
            }
        }
        Ok(total)
    }

    /// One pruning transaction; `None` when another pruner holds the marker.
    fn prune_batch(&self, older_than: i64) -> Result<Option<u64>> {
        // READ COMMITTED: the DELETE takes its snapshot after the marker lock is held, so it sees
        // everything the previous pruner committed.
        let (mut tx, _) = self.begin("BEGIN ISOLATION LEVEL READ COMMITTED")?;
        let result = (|| {
            // The marker row lock serializes pruners across nodes; one that finds it taken skips
            // instead of waiting on a pooled connection.
            let rows = tx.query(
                "SELECT pruned_through FROM ss_commit_log_pruned FOR UPDATE SKIP LOCKED",
                &[],
            )?;
            let Some(marker) = rows.first().map(|row| row.get::<_, i64>(0)) else {
                return Ok(None);
            };
            // Deleting the rows and raising the marker in one statement (so one transaction) is
            // what lets a feed reader tell a gap from a quiet log. `now()` is the database clock,
            // the one `ss_next_commit_ts()` reads.
            let sql = "WITH doomed AS ( \
                    SELECT ts FROM ss_commit_log \
                    WHERE ts > $1 \
                      AND ts < (extract(epoch FROM now()) * 1000000000)::BIGINT - $2 \
                      AND ts < (SELECT max(ts) FROM ss_commit_log) \
                    ORDER BY ts LIMIT $3 \
                ), gone AS ( \
                    DELETE FROM ss_commit_log WHERE ts IN (SELECT ts FROM doomed) RETURNING ts \
                ) \
                UPDATE ss_commit_log_pruned \
                SET pruned_through = GREATEST(pruned_through, COALESCE((SELECT max(ts) FROM gone), 0)) \
                RETURNING (SELECT count(*) FROM gone)";
            let rows = tx.query(
                sql,
                &[
                    (&marker, Type::INT8),
                    (&older_than, Type::INT8),
                    (&PRUNE_BATCH, Type::INT8),
                ],
            )?;
            let deleted = rows.first().map_or(0, |row| row.get::<_, i64>(0));
            tx.exec("COMMIT")?;
            Ok(Some(deleted as u64))
        })();
        if !matches!(result, Ok(Some(_))) {
            let _ = tx.exec("ROLLBACK");
        }
        result
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
        let committed = tx
            .query("INSERT INTO ss_commit_log (ts, writes) VALUES (ss_next_commit_ts(), $1) RETURNING ts", &[(&bytes, Type::BYTEA)])
            .and_then(|rows| {
                let ts: i64 = rows.first().map(|row| row.get(0)).unwrap_or(0);
                tx.exec("COMMIT")?;
                Ok(Ts(ts as u64))
            });
        match committed {
            Ok(ts) => {
                self.shared.publish(ts, &writes);
                Attempt::Committed(ts, writes)
            }
            Err(error) => {
                let _ = tx.exec("ROLLBACK");
                match error {
                    StoreError::Conflict => Attempt::Conflict,
                    error => Attempt::Failed(error),
                }
            }
        }
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

/// A transaction on a pooled connection.
struct PgTx {
    conn: PgConn,
}

type Params<'a> = [(&'a (dyn ToSql + Sync), Type)];

impl PgTx {
    fn exec(&mut self, sql: &str) -> Result<()> {
        self.conn.batch_execute(sql).map_err(map_err)
    }

    /// One round trip: `query_typed` skips the separate prepare step.
    fn query(&mut self, sql: &str, params: &Params<'_>) -> Result<Vec<postgres::Row>> {
        self.conn.query_typed(sql, params).map_err(map_err)
    }
}

fn doc_from_row(row: &postgres::Row, first: usize) -> StoredDoc {
    StoredDoc {
        id: row.get(first),
        table_number: row.get::<_, i32>(first + 1) as u32,
        creation_time: row.get(first + 2),
        value: row.get(first + 3),
    }
}

impl TxConn for PgTx {
    fn get(&mut self, id: &[u8]) -> Result<Option<StoredDoc>> {
        let sql = "SELECT id, table_number, creation_time, value FROM ss_documents WHERE id = $1";
        Ok(self
            .query(sql, &[(&id, Type::BYTEA)])?
            .first()
            .map(|row| doc_from_row(row, 0)))
    }

    fn scan(
        &mut self,
        index: IndexId,
        range: &KeyRange,
        order: Order,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, StoredDoc)>> {
        let direction = match order {
            Order::Asc => "ASC",
            Order::Desc => "DESC",
        };
        let upper = if range.end.is_some() {
            "AND e.key < $4"
        } else {
            ""
        };
        let sql = format!(
            "SELECT e.key, d.id, d.table_number, d.creation_time, d.value \
             FROM ss_index_entries e JOIN ss_documents d ON d.id = e.doc_id \
             WHERE e.index_id = $1 AND e.key >= $2 {upper} ORDER BY e.key {direction} LIMIT $3"
        );
        let index = index as i32;
        let limit = limit.min(i64::MAX as usize) as i64;
        let rows = match &range.end {
            Some(end) => self.query(
                &sql,
                &[
                    (&index, Type::INT4),
                    (&range.start, Type::BYTEA),
                    (&limit, Type::INT8),
                    (end, Type::BYTEA),
                ],
            )?,
            None => self.query(
                &sql,
                &[
                    (&index, Type::INT4),
                    (&range.start, Type::BYTEA),
                    (&limit, Type::INT8),
                ],
            )?,
        };
        Ok(rows
            .iter()
            .map(|row| (row.get(0), doc_from_row(row, 1)))
            .collect())
    }

    fn count(&mut self, index: IndexId, range: &KeyRange) -> Result<u64> {
        let index = index as i32;
        let rows = match &range.end {
            Some(end) => self.query(
                "SELECT count(*) FROM ss_index_entries WHERE index_id = $1 AND key >= $2 AND key < $3",
                &[(&index, Type::INT4), (&range.start, Type::BYTEA), (end, Type::BYTEA)],
            )?,
            None => self.query(
                "SELECT count(*) FROM ss_index_entries WHERE index_id = $1 AND key >= $2",
                &[(&index, Type::INT4), (&range.start, Type::BYTEA)],
            )?,
        };
        Ok(rows.first().map_or(0, |row| row.get::<_, i64>(0)) as u64)
    }

    fn insert_doc(&mut self, doc: &StoredDoc) -> Result<()> {
        let sql = "INSERT INTO ss_documents (id, table_number, creation_time, value) VALUES ($1, $2, $3, $4)";
        let table = doc.table_number as i32;
        let params: &Params<'_> = &[
            (&doc.id, Type::BYTEA),
            (&table, Type::INT4),
            (&doc.creation_time, Type::FLOAT8),
            (&doc.value, Type::TEXT),
        ];
        self.query(sql, params).map(drop)
    }

    fn update_doc(&mut self, doc: &StoredDoc) -> Result<()> {
        let sql = "UPDATE ss_documents SET value = $2 WHERE id = $1";
        self.query(sql, &[(&doc.id, Type::BYTEA), (&doc.value, Type::TEXT)])
            .map(drop)
    }

    fn delete_doc(&mut self, id: &[u8]) -> Result<()> {
        self.query(
            "DELETE FROM ss_documents WHERE id = $1",
            &[(&id, Type::BYTEA)],
        )
        .map(drop)
    }

    fn insert_entry(&mut self, index: IndexId, key: &[u8], doc_id: &[u8]) -> Result<()> {
        let sql = "INSERT INTO ss_index_entries (index_id, key, doc_id) VALUES ($1, $2, $3)";
        let index = index as i32;
        self.query(
            sql,
            &[
                (&index, Type::INT4),
                (&key, Type::BYTEA),
                (&doc_id, Type::BYTEA),
            ],
        )
        .map(drop)
    }

    fn delete_entry(&mut self, index: IndexId, key: &[u8]) -> Result<()> {
        let index = index as i32;
        self.query(
            "DELETE FROM ss_index_entries WHERE index_id = $1 AND key = $2",
            &[(&index, Type::INT4), (&key, Type::BYTEA)],
        )
        .map(drop)
    }
}

impl CatalogConn for PgTx {
    fn load_catalog(&mut self) -> Result<CatalogRows> {
        let tables = self.query("SELECT name, number FROM ss_tables", &[])?;
        let tables = tables
            .iter()
            .map(|row| (row.get(0), row.get::<_, i32>(1) as u32))
            .collect();
        let indexes = self.query("SELECT id, table_number, name, fields FROM ss_indexes", &[])?;
        let indexes = indexes
            .iter()
            .map(|row| {
                let fields: String = row.get(3);
                let fields = serde_json::from_str(&fields)
                    .map_err(|e| StoreError::Internal(format!("bad index catalog row: {e}")))?;
                Ok(IndexRow {
                    id: row.get::<_, i32>(0) as u32,
                    table_number: row.get::<_, i32>(1) as u32,
                    name: row.get(2),
                    fields,
                })
            })
            .collect::<Result<_>>()?;
        Ok(CatalogRows { tables, indexes })
    }

    fn add_table(&mut self, name: &str, number: u32) -> Result<()> {
        let number = number as i32;
        self.query(
            "INSERT INTO ss_tables (name, number) VALUES ($1, $2)",
            &[(&name, Type::TEXT), (&number, Type::INT4)],
        )
        .map(drop)
    }

    fn add_index(&mut self, row: &IndexRow) -> Result<()> {
        let fields =
            serde_json::to_string(&row.fields).map_err(|e| StoreError::Internal(e.to_string()))?;
        let (id, table) = (row.id as i32, row.table_number as i32);
        let sql = "INSERT INTO ss_indexes (id, table_number, name, fields) VALUES ($1, $2, $3, $4)";
        self.query(
            sql,
            &[
                (&id, Type::INT4),
                (&table, Type::INT4),
                (&row.name, Type::TEXT),
                (&fields, Type::TEXT),
            ],
        )
        .map(drop)
    }

    fn drop_index(&mut self, id: IndexId) -> Result<()> {
        let id = id as i32;
        self.query(
            "DELETE FROM ss_index_entries WHERE index_id = $1",
            &[(&id, Type::INT4)],
        )?;
        self.query("DELETE FROM ss_indexes WHERE id = $1", &[(&id, Type::INT4)])
            .map(drop)
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
        let limit = limit as i64;
        let sql = "SELECT id, table_number, creation_time, value FROM ss_documents WHERE id >= $1 AND id < $2 ORDER BY id LIMIT $3";
        let rows = self.query(
            sql,
            &[
                (&start, Type::BYTEA),
                (&end, Type::BYTEA),
                (&limit, Type::INT8),
            ],
        )?;
        Ok(rows.iter().map(|row| doc_from_row(row, 0)).collect())
    }
}

fn unavailable(error: r2d2::Error) -> StoreError {
    StoreError::Unavailable(format!("no PostgreSQL connection: {error}"))
}

/// Serialization failures and deadlocks are conflicts (the mutation runs again); lost connections
/// and resource exhaustion are `Unavailable`; anything else is internal.
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
