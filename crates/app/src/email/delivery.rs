//! Delivery: each outbox row has one job on the job queue (`functions::jobs`, run by the
//! `background` crate's `Queue` on every node), enqueued with the row in the same transaction. The
//! job is the internal action [`DELIVER`], which
//!
//! 1. claims the row with the internal mutation [`CLAIM`]: `pending` (or `sending`, left by an
//!    attempt that never reported back) → `sending`, `attempts` + 1. A row already final, or gone
//!    (its company was deleted), needs nothing and the job succeeds. A row whose attempts are used up
//!    fails here instead of being sent again;
//! 2. hands the message to the registry's [`Mailer`], within [`SEND_TIMEOUT`];
//! 3. records the outcome with the internal mutation [`RECORD`], only if the row is still as this
//!    claim left it (`sending` with this attempt's number), so a late attempt never overwrites a
//!    later one.
//!
//! Outcomes: sent or logged → the row is final and the job succeeds. A permanent refusal
//! (`MailError { transient: false }`) → `failed`, and the job succeeds (a retry would be refused
//! again). A transient failure → the row goes back to `pending` with `last_error`, and the job fails,
//! so the queue retries it after its backoff (doubling from [`BACKOFF_MS`], with jitter, capped by
//! the queue's `max_backoff`); the attempt that uses up [`MAX_ATTEMPTS`] fails the row for good.
//!
//! The queue provides what the old hand-written worker did itself: one claimant per job under a
//! lease (a node that dies mid-send leaves the job `running`; when the lease expires another node
//! takes it over and the row, still `sending`, is sent again), wake-ups on commits of the jobs
//! table, backoff and a bound on attempts. Attempts are counted on the row at claim time, so a
//! message that crashes its node every time fails after `MAX_ATTEMPTS` claims. The job allows one
//! attempt more than the row, so the attempt after a last one that never reported back still runs
//! and marks the row `failed`.
//!
//! Delivery is at least once: a node that dies (or loses the database) between the relay accepting
//! a message and recording `sent` leaves the row `sending`, and the takeover sends it again. Every
//! attempt of one row carries the same `Message-ID` (the outbox id), so receiving systems can tell
//! the copies apart.

use std::sync::Arc;
use std::time::{Duration, Instant};

use functions::jobs::JobOptions;
use functions::{
    ActionCtx, ErrorCode, FnResult, FunctionError, FunctionRef, MutationCtx, Registry, Schedule,
};
use serde::{Deserialize, Serialize};
use store::Patch;
use values::{Id, Typed};

use super::{Delivered, MailError, Mailer, OutboxDoc, QueuedEmail, Status, INDEX_BY_STATUS, TABLE};
use crate::housekeeping::BatchArgs;

/// Attempts per email before it fails for good. With [`BACKOFF_MS`] the waits are 30 s, 1, 2, 4,
/// 8, 16 and 32 min, each less up to half by the queue's jitter: eight attempts span half an hour
/// to an hour, long enough to ride out a relay's restart or a short outage, short enough that a
/// reset link is still useful.
pub const MAX_ATTEMPTS: u32 = 8;
/// The wait after the first failed attempt, doubled after each further one.
pub const BACKOFF_MS: f64 = 30_000.0;
/// Longest one send may take before it counts as a transient failure (less when the action's own
/// deadline comes sooner).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// Kept free before the action's deadline to record the outcome.
const RECORD_MARGIN: Duration = Duration::from_secs(5);

/// The delivery job of one outbox row.
pub const DELIVER: FunctionRef<DeliverArgs, ()> = FunctionRef::internal_action("email:deliver");
/// Claims a row for one attempt; the message to send, or `null` when there is nothing to send.
pub const CLAIM: FunctionRef<DeliverArgs, Option<Claimed>> =
    FunctionRef::internal_mutation("email:claimDelivery");
/// Records an attempt's outcome if the row is still as its claim left it; whether it was.
pub const RECORD: FunctionRef<RecordArgs, bool> =
    FunctionRef::internal_mutation("email:recordDelivery");
/// Enqueues the delivery job of any `pending` or `sending` row that has none (rows queued before
/// delivery ran on the job queue); run by a cron.
pub const REQUEUE: FunctionRef<BatchArgs, Requeued> =
    FunctionRef::internal_mutation("email:requeueUndelivered");

/// How often rows without a delivery job are looked for.
const REQUEUE_INTERVAL: Duration = Duration::from_secs(15 * 60);

#[derive(Clone, Copy, Serialize, Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct DeliverArgs {
    pub outbox_id: Id<OutboxDoc>,
}

/// A claimed row, as the action sends it. No `Debug`: the body carries tokens.
#[derive(Clone, Serialize, Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct Claimed {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub kind: String,
    pub correlation_id: Option<String>,
    /// This attempt's number (1 for the first).
    pub attempt: u32,
}

/// What an attempt came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Typed)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Sent,
    Logged,
    /// A transient failure; the job tries again.
    Retry,
    /// A permanent refusal, or the last attempt failed.
    Failed,
}

#[derive(Clone, Serialize, Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct RecordArgs {
    pub outbox_id: Id<OutboxDoc>,
    pub attempt: u32,
    pub outcome: Outcome,
    pub error: Option<String>,
}

/// What a requeue run looked at: unsent rows, each now with a job (most had one already).
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
pub struct Requeued {
    pub checked: usize,
}

/// How a row's delivery job is enqueued: keyed by the outbox id, so a row never has two.
pub(crate) fn job_options(outbox_id: &Id<OutboxDoc>) -> JobOptions {
    JobOptions {
        max_attempts: MAX_ATTEMPTS + 1,
        backoff_ms: BACKOFF_MS,
        ..JobOptions::default()
    }
    .key(format!("email:{}", outbox_id.encode()))
}

/// Registers delivery through `mailer`: the job's action, the mutations it runs, and the cron that
/// gives rows without a job one.
pub fn register(r: &mut Registry, mailer: Arc<dyn Mailer>) {
    r.internal_mutation(CLAIM, claim);
    r.internal_mutation(RECORD, record);
    r.internal_action(DELIVER, move |ctx, args| {
        let mailer = mailer.clone();
        async move { deliver(ctx, args, &*mailer).await }
    });
    r.internal_mutation(REQUEUE, requeue);
    r.cron(
        "email: enqueue undelivered",
        Schedule::every(REQUEUE_INTERVAL),
        REQUEUE,
        &BatchArgs::default(),
    );
}

fn read(ctx: &mut MutationCtx<'_>, id: &Id<OutboxDoc>) -> FnResult<Option<OutboxDoc>> {
    match ctx.db.get(id)? {
        Some(doc) if doc.table == TABLE => functions::row(&doc).map(Some),
        _ => Ok(None),
    }
}

fn claim(ctx: &mut MutationCtx<'_>, args: DeliverArgs) -> FnResult<Option<Claimed>> {
    let Some(row) = read(ctx, &args.outbox_id)? else {
        return Ok(None);
    };
    let status = Status::parse(&row.status);
    if !matches!(status, Some(Status::Pending | Status::Sending)) {
        return Ok(None);
    }
    let now = ctx.now_ms();
    let attempts = row.attempts as u32;
    let mut patch = Patch::new();
    if attempts >= MAX_ATTEMPTS {
        // Normally a `sending` row whose last attempt never reported back.
        let error = match (status, row.last_error.as_deref()) {
            (Some(Status::Sending), _) | (_, None) => {
                format!("gave up after {attempts} attempts; the last one never reported back")
            }
            (_, Some(previous)) => {
                format!("gave up after {attempts} attempts; last error: {previous}")
            }
        };
        tracing::error!(outbox_id = %row.id.get(), kind = %row.kind, attempts, "email failed for good: {error}");
        patch.insert("status".into(), Some(Status::Failed.as_str().into()));
        patch.insert("next_attempt_at".into(), Some(now.into()));
        patch.insert("last_error".into(), Some(truncate(&error).into()));
        ctx.db.patch(&row.id, patch)?;
        return Ok(None);
    }
    patch.insert("status".into(), Some(Status::Sending.as_str().into()));
    patch.insert("attempts".into(), Some(f64::from(attempts + 1).into()));
    patch.insert("next_attempt_at".into(), Some(now.into()));
    ctx.db.patch(&row.id, patch)?;
    Ok(Some(Claimed {
        to: row.to,
        subject: row.subject,
        text: row.text,
        kind: row.kind,
        correlation_id: row.correlation_id,
        attempt: attempts + 1,
    }))
}

fn record(ctx: &mut MutationCtx<'_>, args: RecordArgs) -> FnResult<bool> {
    let Some(row) = read(ctx, &args.outbox_id)? else {
        return Ok(false);
    };
    let still_ours =
        row.status == Status::Sending.as_str() && row.attempts == f64::from(args.attempt);
    if !still_ours {
        return Ok(false);
    }
    let now = ctx.now_ms();
    let mut patch = Patch::new();
    let status = match args.outcome {
        Outcome::Sent => {
            patch.insert("sent_at".into(), Some(now.into()));
            patch.insert("last_error".into(), None);
            Status::Sent
        }
        Outcome::Logged => Status::Logged,
        Outcome::Retry => Status::Pending,
        Outcome::Failed => Status::Failed,
    };
    if let Some(error) = &args.error {
        patch.insert("last_error".into(), Some(truncate(error).into()));
    }
    // Final: when the row got there (what retention reads). Pending: when the attempt failed (the
    // job's `run_at` says when the next one is).
    patch.insert("next_attempt_at".into(), Some(now.into()));
    patch.insert("status".into(), Some(status.as_str().into()));
    ctx.db.patch(&row.id, patch)?;
    Ok(true)
}

async fn deliver(ctx: ActionCtx, args: DeliverArgs, mailer: &dyn Mailer) -> FnResult<()> {
    let Some(claimed) = ctx.run_mutation(CLAIM, &args).await? else {
        return Ok(());
    };
    let attempt = claimed.attempt;
    let email = QueuedEmail {
        id: args.outbox_id.get(),
        to: claimed.to,
        subject: claimed.subject,
        text: claimed.text,
        kind: claimed.kind,
        correlation_id: claimed.correlation_id,
        attempt,
    };
    let budget = ctx
        .deadline()
        .saturating_duration_since(Instant::now())
        .saturating_sub(RECORD_MARGIN)
        .min(SEND_TIMEOUT);
    let outcome = match tokio::time::timeout(budget, mailer.send(&email)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(MailError::transient(format!(
            "sending took longer than {} s",
            budget.as_secs_f64()
        ))),
    };
    let gives_up = match &outcome {
        Ok(_) => false,
        Err(e) => !e.transient || attempt >= MAX_ATTEMPTS,
    };
    let recorded = RecordArgs {
        outbox_id: args.outbox_id,
        attempt,
        outcome: match &outcome {
            Ok(Delivered::Sent) => Outcome::Sent,
            Ok(Delivered::Logged) => Outcome::Logged,
            Err(_) if gives_up => Outcome::Failed,
            Err(_) => Outcome::Retry,
        },
        error: outcome.as_ref().err().map(|e| e.message.clone()),
    };
    // Should this fail, the job fails and is retried; its next attempt finds the row `sending` and
    // sends it again (at least once, as documented).
    let applied = ctx.run_mutation(RECORD, &recorded).await?;
    let (id, kind) = (email.id, email.kind.as_str());
    match (&outcome, applied) {
        (_, false) => tracing::info!(outbox_id = %id, kind, attempt,
            "email outbox: outcome not recorded, the row was reclaimed or removed meanwhile"),
        (Ok(Delivered::Sent), true) => tracing::info!(outbox_id = %id, kind, attempt, "email sent"),
        (Ok(Delivered::Logged), true) => {}
        (Err(e), true) if gives_up => tracing::error!(outbox_id = %id, kind, attempt,
            error = %e.message, "email failed for good"),
        (Err(e), true) => {
            tracing::warn!(outbox_id = %id, kind, attempt, error = %e.message, "email not sent; will retry");
            // The job fails, so the queue tries again after its backoff.
            return Err(FunctionError::plain(
                ErrorCode::Unavailable,
                format!(
                    "email not sent (attempt {attempt}): {}",
                    truncate(&e.message)
                ),
            ));
        }
    }
    Ok(())
}

/// Gives each `pending` or `sending` row a delivery job if it has none (the job's idempotency key
/// makes this a no-op for rows that have one). Rows queued before delivery ran on the job queue
/// are the ones this finds; a row whose job is `dead` keeps it (an operator retries the job).
fn requeue(ctx: &mut MutationCtx<'_>, args: BatchArgs) -> FnResult<Requeued> {
    let limit = crate::housekeeping::batch_limit(args.limit);
    let mut ids = Vec::new();
    for status in [Status::Pending, Status::Sending] {
        let rows = ctx
            .db
            .query(TABLE)?
            .with_index(INDEX_BY_STATUS, |q| q.eq("status", status.as_str()))?
            .take(limit)?;
        ids.extend(rows.into_iter().map(|doc| Id::<OutboxDoc>::new(doc.id)));
    }
    for id in &ids {
        let args = DeliverArgs { outbox_id: *id };
        ctx.jobs().enqueue(DELIVER, &args, job_options(id))?;
    }
    // One batch per run: unsent rows are few, and the next run takes any left over.
    Ok(Requeued { checked: ids.len() })
}

/// SMTP replies can be long (some relays append whole help texts); a row keeps the gist.
fn truncate(message: &str) -> String {
    const MAX: usize = 1000;
    match message.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_string(),
    }
}
