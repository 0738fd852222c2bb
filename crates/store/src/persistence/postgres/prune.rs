//! Pruning the commit log: rows older than the retention go in small batches, each node trying
//! every minute, with the marker a feed reader checks for gaps raised in the same transaction.

use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use postgres::types::Type;

use super::PgInner;
use crate::{Result, StoreError};

/// How long commit log rows are kept. Every node's feed tails the log; a feed further behind than
/// this (a node cut off from the database, a stalled process) may find rows it needed gone and
/// resets, re-running every live query. Ten minutes rides out network blips and slow restarts
/// while keeping the log (and its index) small.
const COMMIT_LOG_RETENTION: Duration = Duration::from_secs(10 * 60);
/// How often each node prunes the commit log.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);
/// Rows deleted per pruning transaction, so one never holds locks or builds WAL for long.
const PRUNE_BATCH: i64 = 5000;

/// A stop signal the pruner sleeps on.
#[derive(Default)]
pub(super) struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    pub(super) fn stop(&self) {
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
pub(super) fn prune_periodically(inner: Weak<PgInner>, stop: Arc<Stop>) {
    while stop.wait(PRUNE_INTERVAL) {
        let Some(inner) = inner.upgrade() else { return };
        match inner.prune_commit_log(COMMIT_LOG_RETENTION) {
            Ok(0) => {}
            Ok(rows) => tracing::debug!(rows, "pruned the commit log"),
            Err(error) => tracing::warn!(%error, "pruning the commit log failed"),
        }
    }
}

impl PgInner {
    /// Deletes commit log rows older than `older_than` (by the database clock, which assigns the ts),
    /// batch by batch, always keeping the newest row: reads take the largest ts in the log as their
    /// snapshot ts. Returns how many rows this call deleted.
    pub(super) fn prune_commit_log(&self, older_than: Duration) -> Result<u64> {
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
}
