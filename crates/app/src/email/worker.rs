//! The delivery worker: claims due outbox rows, sends them through a `Mailer`, records the outcome,
//! and schedules retries with exponential backoff.
//!
//! Claiming: a mutation moves due rows from `pending` to `sending` and sets `next_attempt_at` to
//! now + lease, incrementing `attempts`. Serializable transactions make that claim exclusive: two
//! nodes sharing PostgreSQL that race for one row conflict, and the retried loser no longer sees it
//! due. A `sending` row whose lease has run out (its worker crashed or lost the database) is due
//! again and is reclaimed by anyone. The outcome is recorded only if the row is still in the state
//! this claim left it (`sending` with the claimed attempt number): a worker whose lease expired
//! cannot overwrite what a later claim did. The status-and-lease scheme was chosen over a separate
//! lock table because the `[status, next_attempt_at]` index then serves the queue, the leases and
//! retention alike.
//!
//! Counting attempts at claim time (not after the send) bounds a message that crashes its worker
//! every time: it fails after `max_attempts` claims instead of circulating forever.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::FutureExt;
use store::{Order, Patch, ReadSet, Store, StoreError};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::task::JoinHandle;

use super::{
    read_row, Delivered, MailError, Mailer, OutboxDoc, QueuedEmail, Status, INDEX_BY_STATUS, TABLE,
};

/// Tuning of the delivery worker. The defaults suit production; tests shorten the backoff.
#[derive(Clone, Debug)]
pub struct DeliveryOptions {
    /// How often to look for due rows without being woken by a commit: retries written by other
    /// nodes, leases that ran out, work left over from before a restart.
    pub poll_interval: Duration,
    /// Rows claimed (and sent concurrently) at once.
    pub batch_size: usize,
    /// Attempts before a row fails for good.
    pub max_attempts: u32,
    /// Wait after the first failed attempt; doubled after each further one.
    pub backoff_base: Duration,
    /// Longest wait between attempts.
    pub backoff_cap: Duration,
    /// Longest one send may take before it counts as a transient failure. Claims last twice as
    /// long, so a row is never reclaimed while its first claimant can still be sending it.
    pub send_timeout: Duration,
}

impl Default for DeliveryOptions {
    fn default() -> DeliveryOptions {
        // 30 s, 1, 2, 4, 8, 16, 32 min: eight attempts span about an hour, long enough to ride out
        // a relay's restart or a short outage, short enough that a reset link is still useful.
        DeliveryOptions {
            poll_interval: Duration::from_secs(5),
            batch_size: 8,
            max_attempts: 8,
            backoff_base: Duration::from_secs(30),
            backoff_cap: Duration::from_secs(60 * 60),
            send_timeout: Duration::from_secs(60),
        }
    }
}

impl DeliveryOptions {
    /// The wait after `attempts` failed attempts (1 → `backoff_base`).
    pub fn backoff(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(31);
        self.backoff_base
            .saturating_mul(1 << doublings)
            .min(self.backoff_cap)
    }

    fn lease(&self) -> Duration {
        self.send_timeout.saturating_mul(2)
    }
}

/// Starts the worker on the current tokio runtime. It runs until `shutdown` completes (it is
/// checked between batches, so a send in progress finishes, bounded by `send_timeout`) and never
/// stops on errors: database and mail problems are logged and retried. Stop it before closing the
/// store.
pub fn spawn_delivery_worker(
    store: Store,
    mailer: Arc<dyn Mailer>,
    options: DeliveryOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(run(store, mailer, options, shutdown))
}

async fn run(
    store: Store,
    mailer: Arc<dyn Mailer>,
    options: DeliveryOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut commits = store.subscribe();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Commits announced so far are visible to the scan below, so they need not wake us again.
        while let Ok(_) | Err(TryRecvError::Lagged(_)) = commits.try_recv() {}
        let (wait, reads) = match scan(&store).await {
            Ok(Scan {
                next_due: Some(due),
                ..
            }) if due <= now_ms() => {
                // Checked before claiming, not raced against the claim: a claim abandoned midway
                // may still commit, and its rows would then wait out a whole lease.
                if shutdown.as_mut().now_or_never().is_some() {
                    return;
                }
                match claim(&store, &options).await {
                    Ok(claimed) => {
                        deliver(&store, &*mailer, &options, claimed).await;
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "email outbox: claiming due emails failed; retrying");
                        (options.poll_interval, ReadSet::default())
                    }
                }
            }
            Ok(Scan { next_due, reads }) => {
                let until_due = next_due.map_or(options.poll_interval, |due| {
                    Duration::from_secs_f64(((due - now_ms()) / 1000.0).max(0.0))
                });
                (until_due.min(options.poll_interval), reads)
            }
            Err(e) => {
                tracing::warn!(error = %e, "email outbox: reading the queue failed; retrying");
                (options.poll_interval, ReadSet::default())
            }
        };
        let timer = tokio::time::sleep(wait);
        tokio::pin!(timer);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = &mut timer => break,
                commit = commits.recv() => match commit {
                    // Only commits that touch the rows the scan looked at can make work due sooner.
                    Ok(commit) if reads.intersects(&commit.writes) => break,
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => {
                        // The store is gone; the timer keeps the loop going until shutdown.
                        tokio::select! {
                            _ = &mut shutdown => return,
                            _ = &mut timer => break,
                        }
                    }
                },
            }
        }
    }
}

/// What the queue looks like: when the next row becomes due, and what was read to find out.
struct Scan {
    next_due: Option<f64>,
    reads: ReadSet,
}

/// The earliest `pending` row and the earliest-expiring `sending` lease; a read-only transaction,
/// so an idle worker commits nothing (and wakes nobody).
async fn scan(store: &Store) -> store::Result<Scan> {
    let (next_due, reads, _) = store
        .query(|txn| {
            let mut next: Option<f64> = None;
            for status in [Status::Pending, Status::Sending] {
                let first = txn
                    .query(TABLE)?
                    .with_index(INDEX_BY_STATUS, |q| q.eq("status", status.as_str()))?
                    .order(Order::Asc)
                    .first()?;
                if let Some(at) = first.map(|doc| read_row(&doc)).transpose()? {
                    let at = at.next_attempt_at;
                    next = Some(next.map_or(at, |n: f64| n.min(at)));
                }
            }
            Ok::<_, StoreError>(next)
        })
        .await?;
    Ok(Scan { next_due, reads })
}

/// Claims up to a batch of due rows (due `pending` ones first, then expired leases). Rows whose
/// attempts are used up are failed here rather than sent again.
async fn claim(store: &Store, options: &DeliveryOptions) -> store::Result<Vec<QueuedEmail>> {
    let (batch, max_attempts) = (options.batch_size.max(1), options.max_attempts.max(1));
    let lease_ms = options.lease().as_secs_f64() * 1000.0;
    let (claimed, _, _) = store
        .mutate(move |txn| {
            let now = txn.now_ms();
            let mut due = Vec::new();
            for status in [Status::Pending, Status::Sending] {
                let rows = txn
                    .query(TABLE)?
                    .with_index(INDEX_BY_STATUS, |q| {
                        q.eq("status", status.as_str()).lte("next_attempt_at", now)
                    })?
                    .take(batch - due.len())?;
                due.extend(rows);
                if due.len() == batch {
                    break;
                }
            }
            let mut claimed = Vec::new();
            for doc in due {
                let row = read_row(&doc)?;
                let attempts = row.attempts as u32;
                let mut patch = Patch::new();
                if attempts >= max_attempts {
                    // Normally a `sending` row whose last claimant never reported back; a `pending`
                    // one only if `max_attempts` was lowered since it was last tried.
                    let previous = row.last_error.as_deref();
                    let error = match (Status::parse(&row.status), previous) {
                        (Some(Status::Sending), _) | (_, None) => format!(
                            "gave up after {attempts} attempts; the last one never reported back"
                        ),
                        (_, Some(previous)) => {
                            format!("gave up after {attempts} attempts; last error: {previous}")
                        }
                    };
                    patch.insert("status".into(), Some(Status::Failed.as_str().into()));
                    patch.insert("next_attempt_at".into(), Some(now.into()));
                    patch.insert("last_error".into(), Some(truncate(&error).into()));
                    txn.patch(&doc.id, patch)?;
                    continue;
                }
                patch.insert("status".into(), Some(Status::Sending.as_str().into()));
                patch.insert("attempts".into(), Some(f64::from(attempts + 1).into()));
                patch.insert("next_attempt_at".into(), Some((now + lease_ms).into()));
                txn.patch(&doc.id, patch)?;
                claimed.push(queued(row, attempts + 1));
            }
            Ok::<_, StoreError>(claimed)
        })
        .await?;
    Ok(claimed)
}

/// Sends the claimed emails concurrently and records each outcome as soon as it is known.
async fn deliver(
    store: &Store,
    mailer: &dyn Mailer,
    options: &DeliveryOptions,
    claimed: Vec<QueuedEmail>,
) {
    let sends = claimed.into_iter().map(|email| async move {
        let outcome = match tokio::time::timeout(options.send_timeout, mailer.send(&email)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(MailError::transient(format!(
                "sending took longer than {} s",
                options.send_timeout.as_secs_f64()
            ))),
        };
        if let Err(e) = record(store, options, &email, outcome).await {
            // The lease runs out and the row is sent again: at-least-once, as documented.
            tracing::warn!(outbox_id = %email.id, error = %e, "email outbox: recording a delivery outcome failed");
        }
    });
    futures::future::join_all(sends).await;
}

/// Writes what happened to one claimed email, if the row is still as the claim left it.
async fn record(
    store: &Store,
    options: &DeliveryOptions,
    email: &QueuedEmail,
    outcome: Result<Delivered, MailError>,
) -> store::Result<()> {
    let (id, attempt) = (email.id, email.attempt);
    let retry_after = options.backoff(attempt);
    let gives_up = match &outcome {
        Ok(_) => false,
        Err(e) => !e.transient || attempt >= options.max_attempts,
    };
    let outcome_for_txn = outcome.clone();
    let (applied, _, _) = store
        .mutate(move |txn| {
            let Some(doc) = txn.get(&id)? else {
                return Ok::<_, StoreError>(false);
            };
            let row = read_row(&doc)?;
            let still_ours =
                row.status == Status::Sending.as_str() && row.attempts == f64::from(attempt);
            if !still_ours {
                return Ok(false);
            }
            let now = txn.now_ms();
            let mut patch = Patch::new();
            let status = match &outcome_for_txn {
                Ok(Delivered::Sent) => {
                    patch.insert("sent_at".into(), Some(now.into()));
                    patch.insert("last_error".into(), None);
                    Status::Sent
                }
                Ok(Delivered::Logged) => Status::Logged,
                Err(e) => {
                    patch.insert("last_error".into(), Some(truncate(&e.message).into()));
                    if gives_up {
                        Status::Failed
                    } else {
                        let retry_at = now + retry_after.as_secs_f64() * 1000.0;
                        patch.insert("next_attempt_at".into(), Some(retry_at.into()));
                        Status::Pending
                    }
                }
            };
            if status.is_final() {
                patch.insert("next_attempt_at".into(), Some(now.into()));
            }
            patch.insert("status".into(), Some(status.as_str().into()));
            txn.patch(&id, patch)?;
            Ok(true)
        })
        .await?;
    let kind = email.kind.as_str();
    match (&outcome, applied) {
        (_, false) => tracing::info!(outbox_id = %id, kind, attempt,
            "email outbox: outcome not recorded, the row was reclaimed or removed meanwhile"),
        (Ok(Delivered::Sent), true) => tracing::info!(outbox_id = %id, kind, attempt, "email sent"),
        (Ok(Delivered::Logged), true) => {}
        (Err(e), true) if gives_up => tracing::error!(outbox_id = %id, kind, attempt,
            error = %e.message, "email failed for good"),
        (Err(e), true) => tracing::warn!(outbox_id = %id, kind, attempt,
            retry_in_secs = retry_after.as_secs_f64(), error = %e.message, "email not sent; will retry"),
    }
    Ok(())
}

fn queued(row: OutboxDoc, attempt: u32) -> QueuedEmail {
    QueuedEmail {
        id: row.id.get(),
        to: row.to,
        subject: row.subject,
        text: row.text,
        kind: row.kind,
        correlation_id: row.correlation_id,
        attempt,
    }
}

/// SMTP replies can be long (some relays append whole help texts); a row keeps the gist.
fn truncate(message: &str) -> String {
    const MAX: usize = 1000;
    match message.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_string(),
    }
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}
