//! The backend's threads: readers (one connection each), the writer that group-commits, and the
//! checkpointer.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use rusqlite::{Connection, OpenFlags};

use super::tx::SqliteTx;
use super::{
    disk_full, map_err, Msg, BACKSTOP_CHECKPOINT_PAGES, BUSY_TIMEOUT, CHECKPOINT_DELAY, MAX_BATCH,
};
use crate::faults::{Fault, Faults};
use crate::persistence::{now_ns, Finish, ReadJob, RunOutcome, Shared, WriteJob};
use crate::readset::WriteSet;
use crate::{Result, StoreError, Ts};

/// The checkpointer thread: after commits, waits a little so several batches share one
/// checkpoint, then copies the WAL into the database file without blocking readers or the writer
/// (PASSIVE). Once a checkpoint has caught up, the writer's next commit starts the WAL over, so it
/// stays small. Exits when the writer drops its end of `wanted`.
pub(super) fn run_checkpointer(conn: Connection, wanted: Receiver<()>) {
    while wanted.recv().is_ok() {
        std::thread::sleep(CHECKPOINT_DELAY);
        // Commits during the delay are covered by this checkpoint.
        let _ = wanted.try_recv();
        let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
        });
        match done {
            // Frames a checkpoint cannot copy are pinned by a reader's snapshot (a long query); a
            // large WAL that was copied whole is only a busy writer.
            Ok((log, copied)) if log - copied > BACKSTOP_CHECKPOINT_PAGES / 2 => {
                tracing::warn!(
                    log,
                    copied,
                    "SQLite checkpoints are falling behind: long-running reads pin the WAL"
                )
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "SQLite checkpoint failed"),
        }
    }
}

/// Work for a reader thread.
pub(super) enum ReaderTask {
    Read(ReadJob),
    /// A trivial query, answered on the channel (health checks).
    Ping(Sender<Result<()>>),
}

pub(super) fn open_reader(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(map_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(map_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// A reader thread: runs read jobs one at a time on its own connection until the backend closes.
pub(super) fn run_reader(conn: Connection, path: &Path, queue: Receiver<ReaderTask>) {
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

/// The writer thread: owns the only write connection and group-commits queued mutations.
pub(super) struct Writer {
    /// Kept boxed so it can be lent to jobs as a `dyn TxConn` without reallocating.
    pub(super) tx: Option<Box<SqliteTx>>,
    pub(super) queue: Receiver<Msg>,
    pub(super) shared: Arc<Shared>,
    pub(super) last_ts: u64,
    /// Wakes the checkpointer; dropped at shutdown so it exits.
    pub(super) checkpoint: Option<Sender<()>>,
    pub(super) faults: Arc<Faults>,
}

impl Writer {
    pub(super) fn run(mut self) {
        while let Ok(msg) = self.queue.recv() {
            let mut batch = match msg {
                Msg::Job(job) => vec![job],
                Msg::Probe(reply) => {
                    let _ = reply.send(self.probe());
                    continue;
                }
                Msg::Close(reply) => return self.shutdown(reply),
            };
            let (mut close, mut probe) = (None, None);
            while batch.len() < MAX_BATCH {
                match self.queue.try_recv() {
                    Ok(Msg::Job(job)) => batch.push(job),
                    Ok(Msg::Probe(reply)) => {
                        probe = Some(reply);
                        break;
                    }
                    Ok(Msg::Close(reply)) => {
                        close = Some(reply);
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.commit_batch(batch);
            if let Some(reply) = probe {
                let _ = reply.send(self.probe());
            }
            if let Some(reply) = close {
                return self.shutdown(reply);
            }
        }
    }

    /// One small committed write (health checks): what every commit needs, a write lock, a page
    /// in the WAL and its fsync.
    fn probe(&mut self) -> Result<()> {
        if self.faults.is(Fault::DiskFull) {
            return Err(disk_full());
        }
        let Some(tx) = &self.tx else {
            return Err(StoreError::Unavailable(
                "the writer connection is gone".into(),
            ));
        };
        let written = tx
            .exec("BEGIN IMMEDIATE")
            .and_then(|_| tx.set_meta("health_probe", (now_ns() / 1_000_000) as i64))
            .and_then(|_| tx.exec("COMMIT"));
        if written.is_err() && !tx.conn.is_autocommit() {
            let _ = tx.exec("ROLLBACK");
        }
        written
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
        if failure.is_none() && !committed.is_empty() && self.faults.is(Fault::DiskFull) {
            failure = Some(disk_full());
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
                // A full disk or a read-only file keeps its kind: clients are told which.
                let error = match error {
                    error @ (StoreError::StorageFull(_) | StoreError::ReadOnly(_)) => {
                        error.context("the commit failed")
                    }
                    error => StoreError::Unavailable(format!("the commit failed: {error}")),
                };
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
