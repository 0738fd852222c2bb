//! Runs due schedules: scheduled mutations exactly once, scheduled actions at most once.
//!
//! A scheduled mutation runs through `Runtime::call_guarded`: in its own transaction the guard first
//! checks that the row is still `pending` (otherwise the handler is skipped) and last marks it
//! `success` (or `failed`, for `fail_after_commit`), so the mutation's writes and its new state commit
//! together. Two nodes that pick the same row meet in a serialization conflict; the retry finds the
//! row finished and does nothing. A mutation that throws writes nothing; a second transaction marks
//! its row `failed` if it is still `pending`. When the database is unavailable the row stays
//! `pending` and is tried again a little later.
//!
//! A scheduled action is claimed first (`pending` -> `in_progress`, one transaction), then run, then
//! marked `success` or `failed`. An action is not repeatable in general (it may have sent an email),
//! so a node that dies mid-action does not hand it to another: a row still `in_progress` after the
//! runtime's action timeout plus a grace period is marked `failed` as interrupted (at most once; the
//! job queue is for work that must be retried).
//!
//! Waking: the executor scans the pending rows that are due plus the next one to come, keeps what
//! that scan read, and sleeps until a commit from the store's commit feed (every node's commits on
//! PostgreSQL) writes into it, the next due time arrives, a run finishes, or a slow fallback poll.
//! Nothing is polled in a tight loop; an idle executor only waits.
//!
//! Scheduled calls run with no user session: `Caller::Server` (internal functions allowed) and an
//! anonymous `Auth`. Storing a caller's bearer token in a table to replay it later would outlive the
//! session it belongs to; a function that needs to act for someone takes the user's Id as an
//! argument and checks what it needs.
//!
//! Finished rows are kept for `retention` (7 days by default), then pruned.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use functions::activity::Work;
use functions::scheduler::{
    wall_ms, ScheduledFunction, ScheduledState, INDEX_BY_STATE_COMPLETED, INDEX_BY_STATE_TIME,
    TABLE,
};
use functions::{
    Auth, Call, Caller, ErrorCode, FnResult, FunctionError, FunctionKind, MutationGuard, RequestId,
    Runtime,
};
use store::{CommitFeed, Document, FeedEvent, Patch, ReadSet, Store, StoreError, Txn};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use values::{DocumentId, Value};

#[derive(Clone, Debug)]
pub struct SchedulerOptions {
    /// How long finished rows (success, failed, canceled) are kept.
    pub retention: Duration,
    /// Rescan this often even without a commit or a due time (should a wake-up be lost).
    pub fallback_poll: Duration,
    /// Runs at once on this node.
    pub concurrency: usize,
    /// Due rows read per scan.
    pub batch: usize,
    /// Beyond the runtime's timeout, how long an action may stay `in_progress` before it counts as
    /// interrupted (its node died).
    pub action_grace: Duration,
    /// How often finished rows are pruned and interrupted actions looked for.
    pub upkeep_every: Duration,
    /// On stop, how long runs in progress are waited for.
    pub drain: Duration,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions {
            retention: Duration::from_secs(7 * 24 * 3600),
            fallback_poll: Duration::from_secs(30),
            concurrency: 16,
            batch: 256,
            action_grace: Duration::from_secs(30),
            upkeep_every: Duration::from_secs(60),
            drain: Duration::from_secs(10),
        }
    }
}

/// Rows deleted per pruning transaction.
const PRUNE_BATCH: usize = 500;
/// How long a row waits before another try when the database was unavailable.
const COOLDOWN: Duration = Duration::from_secs(1);

/// The running executor of one node.
pub struct Executor {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Executor {
    /// Starts running due schedules of `runtime`'s store. A store without the `scheduled_functions`
    /// table (one not opened through `server::open_store`) has nothing to run; the executor idles.
    pub fn start(runtime: Runtime, options: SchedulerOptions) -> Executor {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(runtime, options, stopped));
        Executor { stop, task }
    }

    /// Stops taking new work and waits (up to `drain`) for runs in progress.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// What a scan found.
struct Scan {
    due: Vec<ScheduledFunction>,
    next_due_ms: Option<f64>,
    reads: ReadSet,
}

/// How one run ended, for the loop.
enum Ran {
    Done,
    /// The database was unavailable; the row stays as it was and is tried again later.
    RetryLater,
}

async fn run(runtime: Runtime, options: SchedulerOptions, mut stop: watch::Receiver<bool>) {
    let store = runtime.store().clone();
    if store.table_number(TABLE).is_none() {
        tracing::debug!("no {TABLE} table: the scheduler executor idles");
        let _ = stop.wait_for(|stopped| *stopped).await;
        return;
    }
    // Subscribed before the first scan, so no commit after the scan goes unseen.
    let mut feed = match store.commit_feed().await {
        Ok(feed) => Some(feed),
        Err(error) => {
            tracing::warn!(%error, "scheduler: no commit feed; falling back to polling");
            None
        }
    };
    let mut running: JoinSet<(DocumentId, Ran)> = JoinSet::new();
    let mut in_flight: HashSet<DocumentId> = HashSet::new();
    let mut cooldown: HashMap<DocumentId, Instant> = HashMap::new();
    // Due rows from the last scan not started yet. A backlog is worked off from here, and the
    // table is scanned again only when it runs low, so a scan is paid per batch, not per run.
    let mut queue: VecDeque<ScheduledFunction> = VecDeque::new();
    let mut reads = ReadSet::default();
    let mut next_due_ms: Option<f64> = None;
    // Whether something may have changed since the last scan (and, after a full scan, that more
    // due rows wait behind it).
    let mut stale = true;
    let mut next_upkeep = Instant::now();
    let concurrency = options.concurrency.max(1);
    'outer: loop {
        if *stop.borrow() {
            break;
        }
        if Instant::now() >= next_upkeep {
            upkeep(&runtime, &options, &in_flight).await;
            next_upkeep = Instant::now() + options.upkeep_every;
        }
        let now = Instant::now();
        cooldown.retain(|_, until| *until > now);
        if stale && queue.len() < concurrency {
            match scan(&store, options.batch).await {
                Ok(scan) => {
                    stale = scan.due.len() >= options.batch;
                    queue = scan.due.into();
                    reads = scan.reads;
                    next_due_ms = scan.next_due_ms;
                }
                Err(error) => {
                    tracing::warn!(%error, "scheduler: scan failed");
                    tokio::select! {
                        _ = stop.changed() => break,
                        _ = tokio::time::sleep(COOLDOWN) => continue,
                    }
                }
            }
        }
        let mut started = false;
        while running.len() < concurrency {
            let Some(row) = queue.pop_front() else {
                break;
            };
            // Rows already running here, or waiting out a failure, come back in a later scan.
            if in_flight.contains(&row.id) || cooldown.contains_key(&row.id) {
                continue;
            }
            in_flight.insert(row.id);
            started = true;
            let runtime = runtime.clone();
            running.spawn(async move {
                let id = row.id;
                (id, run_one(&runtime, row).await)
            });
        }
        // More due rows than the last scan held, and room to run them: scan again at once (unless
        // this round started nothing, when a rescan would only find the same rows).
        if stale && started && queue.is_empty() && running.len() < concurrency {
            continue;
        }
        let mut wake = now + options.fallback_poll;
        wake = wake.min(next_upkeep);
        if let Some(due_ms) = next_due_ms {
            let wait = ((due_ms - wall_ms()).max(0.0) / 1000.0).min(3600.0);
            wake = wake.min(now + Duration::from_secs_f64(wait));
        }
        if let Some(until) = cooldown.values().min() {
            wake = wake.min(*until);
        }
        let sleep = tokio::time::sleep_until(wake);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = stop.changed() => break 'outer,
                done = running.join_next(), if !running.is_empty() => {
                    match done {
                        Some(Ok((id, ran))) => {
                            in_flight.remove(&id);
                            if let Ran::RetryLater = ran {
                                cooldown.insert(id, Instant::now() + COOLDOWN);
                            }
                        }
                        Some(Err(error)) => {
                            tracing::error!(%error, "scheduler: a run panicked");
                            in_flight.clear();
                            stale = true;
                        }
                        None => {}
                    }
                    // A slot is free: start the next queued row, or scan if the queue is low.
                    break;
                }
                event = next_event(&mut feed) => match event {
                    Some(FeedEvent::Commit(commit)) => {
                        if reads.intersects(&commit.writes) {
                            stale = true;
                            // With a backlog queued and every slot busy, the scan waits until
                            // the queue runs low.
                            if queue.len() < concurrency {
                                break;
                            }
                        }
                    }
                    Some(FeedEvent::Reset(_)) => {
                        stale = true;
                        break;
                    }
                    None => {
                        tracing::warn!("scheduler: the commit feed ended; falling back to polling");
                        feed = None;
                        break;
                    }
                },
                _ = &mut sleep => {
                    stale = true;
                    break;
                }
            }
        }
    }
    // Runs in progress finish (a mutation commits or not; an action records its outcome) unless
    // they outlast `drain`; an action cut off here is later marked interrupted.
    let _ = tokio::time::timeout(options.drain, async {
        while running.join_next().await.is_some() {}
    })
    .await;
}

async fn next_event(feed: &mut Option<CommitFeed>) -> Option<FeedEvent> {
    match feed {
        Some(feed) => feed.next().await,
        None => std::future::pending().await,
    }
}

fn pending() -> Value {
    Value::String(ScheduledState::Pending.as_str().to_string())
}

/// The due pending rows (oldest first) and the due time of the next one, with what was read.
async fn scan(store: &Store, batch: usize) -> Result<Scan, FunctionError> {
    let now = wall_ms();
    let ((due, next_due_ms), reads, _) = store
        .query(move |txn| {
            let due = txn
                .query(TABLE)?
                .with_index(INDEX_BY_STATE_TIME, |q| {
                    q.eq("state", pending()).lte("scheduled_time", now)
                })?
                .take(batch)?;
            let next = txn
                .query(TABLE)?
                .with_index(INDEX_BY_STATE_TIME, |q| {
                    q.eq("state", pending()).gt("scheduled_time", now)
                })?
                .first()?;
            // A row that does not read (never written by this code) is skipped, not allowed to
            // stop every other schedule.
            let due = due
                .iter()
                .filter_map(|doc| match ScheduledFunction::from_document(doc) {
                    Ok(row) => Some(row),
                    Err(error) => {
                        tracing::error!(%error, "scheduler: skipping an unreadable row");
                        None
                    }
                })
                .collect::<Vec<_>>();
            let next_due_ms = next
                .as_ref()
                .and_then(|doc| doc.get("scheduled_time"))
                .and_then(Value::as_f64);
            Ok::<_, FunctionError>((due, next_due_ms))
        })
        .await?;
    Ok(Scan {
        due,
        next_due_ms,
        reads,
    })
}

fn is_unavailable(error: &FunctionError) -> bool {
    matches!(
        error,
        FunctionError::User {
            code: ErrorCode::Unavailable,
            ..
        }
    )
}

fn state_of(txn: &mut Txn, id: &DocumentId) -> store::Result<Option<ScheduledState>> {
    Ok(txn.get(id)?.and_then(|doc| {
        doc.get("state")
            .and_then(Value::as_str)
            .and_then(ScheduledState::parse)
    }))
}

/// The patch that finishes a row.
fn finish_patch(outcome: &FnResult<Value>, started_at: f64) -> Patch {
    let (state, error) = match outcome {
        Ok(_) => (ScheduledState::Success, None),
        Err(error) => (ScheduledState::Failed, Some(error.to_string())),
    };
    Patch::from([
        (
            "state".to_string(),
            Some(Value::String(state.as_str().to_string())),
        ),
        ("started_at".to_string(), Some(Value::Float64(started_at))),
        ("completed_at".to_string(), Some(Value::Float64(wall_ms()))),
        ("error".to_string(), error.map(Value::String)),
    ])
}

/// Marks the row finished with `outcome` if it is still in `from`; whether it was.
async fn finish_if(
    store: &Store,
    id: &DocumentId,
    from: ScheduledState,
    outcome: FnResult<Value>,
    started_at: f64,
) -> FnResult<bool> {
    let id = *id;
    let (changed, _, _) = store
        .mutate(move |txn| {
            if state_of(txn, &id)? != Some(from) {
                return Ok::<_, FunctionError>(false);
            }
            txn.patch(&id, finish_patch(&outcome, started_at))?;
            Ok(true)
        })
        .await?;
    Ok(changed)
}

/// Inside a scheduled mutation's transaction: skip it unless its row is still pending, and mark the
/// row finished together with the mutation's writes.
struct RunOnce {
    id: DocumentId,
    started_at: f64,
}

impl MutationGuard for RunOnce {
    fn replay(&self, txn: &mut Txn) -> FnResult<Option<FnResult<Value>>> {
        match state_of(txn, &self.id)? {
            Some(ScheduledState::Pending) => Ok(None),
            // Ran on another node, or was canceled meanwhile: nothing to do.
            _ => Ok(Some(Err(FunctionError::plain(
                ErrorCode::Conflict,
                "scheduled function no longer pending",
            )))),
        }
    }
    fn record(&self, txn: &mut Txn, outcome: &FnResult<Value>) -> FnResult<()> {
        txn.patch(&self.id, finish_patch(outcome, self.started_at))?;
        Ok(())
    }
}

async fn run_one(runtime: &Runtime, row: ScheduledFunction) -> Ran {
    let started_at = wall_ms();
    let request_id = RequestId::generate();
    let call = Call {
        path: row.name.clone(),
        expected: Some(row.kind),
        args: Value::Object(row.args.clone()),
        auth: Auth::anonymous(),
        request_id: request_id.clone(),
        caller: Caller::Server,
    };
    let store = runtime.store();
    let activity = runtime.activity();
    activity.started(Work::Scheduled, started_at - row.scheduled_time);
    tracing::debug!(id = %row.id, path = %row.name, %request_id, "scheduler: running");
    match row.kind {
        FunctionKind::Mutation => {
            let guard = Arc::new(RunOnce {
                id: row.id,
                started_at,
            });
            match runtime.call_guarded(call, guard).await {
                Ok(_) => {
                    activity.finished(Work::Scheduled, false);
                    Ran::Done
                }
                Err(error) if is_unavailable(&error) => Ran::RetryLater,
                // Nothing was written; the row becomes `failed` unless another node finished it.
                Err(error) => {
                    activity.finished(Work::Scheduled, true);
                    match finish_if(
                        store,
                        &row.id,
                        ScheduledState::Pending,
                        Err(error),
                        started_at,
                    )
                    .await
                    {
                        Ok(_) => Ran::Done,
                        Err(_) => Ran::RetryLater,
                    }
                }
            }
        }
        FunctionKind::Action => {
            let id = row.id;
            let claimed = store
                .mutate(move |txn| {
                    if state_of(txn, &id)? != Some(ScheduledState::Pending) {
                        return Ok::<_, FunctionError>(false);
                    }
                    let patch = Patch::from([
                        (
                            "state".to_string(),
                            Some(Value::String(
                                ScheduledState::InProgress.as_str().to_string(),
                            )),
                        ),
                        ("started_at".to_string(), Some(Value::Float64(started_at))),
                    ]);
                    txn.patch(&id, patch)?;
                    Ok(true)
                })
                .await;
            match claimed {
                Ok((true, _, _)) => {}
                Ok((false, _, _)) => return Ran::Done,
                Err(_) => return Ran::RetryLater,
            }
            let outcome = runtime.call(call).await.map(|outcome| outcome.value);
            activity.finished(Work::Scheduled, outcome.is_err());
            // The action ran: its outcome must be recorded, so a failing database is retried
            // (briefly; past that, upkeep marks it interrupted).
            let mut wait = Duration::from_millis(100);
            for _ in 0..8 {
                match finish_if(
                    store,
                    &row.id,
                    ScheduledState::InProgress,
                    outcome.clone(),
                    started_at,
                )
                .await
                {
                    Ok(_) => return Ran::Done,
                    Err(error) => {
                        tracing::warn!(id = %row.id, %error, "scheduler: recording an action's outcome failed");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(5));
                    }
                }
            }
            Ran::Done
        }
        FunctionKind::Query => {
            let _ = finish_if(
                store,
                &row.id,
                ScheduledState::Pending,
                Err(FunctionError::internal("queries cannot be scheduled")),
                started_at,
            )
            .await;
            Ran::Done
        }
    }
}

/// Prunes finished rows past retention and fails actions whose node stopped while running them.
/// It looks first in a read-only snapshot and writes only when there is something to do: an empty
/// write still commits (and wakes every node's commit feed).
async fn upkeep(runtime: &Runtime, options: &SchedulerOptions, in_flight: &HashSet<DocumentId>) {
    let store = runtime.store();
    let cutoff = wall_ms() - options.retention.as_secs_f64() * 1000.0;
    let lease = runtime.timeout() + options.action_grace;
    let started_before = wall_ms() - lease.as_secs_f64() * 1000.0;
    let mine: Arc<HashSet<DocumentId>> = Arc::new(in_flight.clone());
    let looked = {
        let mine = mine.clone();
        store
            .query(move |txn| {
                let mut prunable = Vec::new();
                for state in ScheduledState::FINISHED {
                    if old_finished(txn, state, cutoff, 1)?.is_empty() {
                        continue;
                    }
                    prunable.push(state);
                }
                let stuck = stuck_actions(txn, &mine, started_before)?;
                Ok::<_, StoreError>((prunable, !stuck.is_empty()))
            })
            .await
    };
    let (prunable, any_stuck) = match looked {
        Ok(((prunable, any_stuck), _, _)) => (prunable, any_stuck),
        Err(error) => {
            tracing::warn!(%error, "scheduler: upkeep could not read");
            return;
        }
    };
    for state in prunable {
        loop {
            let pruned = store
                .mutate(move |txn| {
                    let old = old_finished(txn, state, cutoff, PRUNE_BATCH)?;
                    for doc in &old {
                        txn.delete(&doc.id)?;
                    }
                    Ok::<_, StoreError>(old.len())
                })
                .await;
            match pruned {
                Ok((n, _, _)) if n == PRUNE_BATCH => continue,
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(%error, "scheduler: pruning failed");
                    break;
                }
            }
        }
    }
    if !any_stuck {
        return;
    }
    let interrupted = store
        .mutate(move |txn| {
            let stuck = stuck_actions(txn, &mine, started_before)?;
            for doc in &stuck {
                let started = doc.get("started_at").and_then(Value::as_f64);
                let outcome = Err(FunctionError::internal(
                    "interrupted: the node running this action stopped before it finished",
                ));
                txn.patch(&doc.id, finish_patch(&outcome, started.unwrap_or(0.0)))?;
            }
            Ok::<_, StoreError>(stuck.len())
        })
        .await;
    match interrupted {
        Ok((n, _, _)) => tracing::warn!(count = n, "scheduler: marked interrupted actions failed"),
        Err(error) => tracing::warn!(%error, "scheduler: marking interrupted actions failed"),
    }
}

/// Up to `limit` rows in `state` that finished before `cutoff`.
fn old_finished(
    txn: &mut Txn,
    state: ScheduledState,
    cutoff: f64,
    limit: usize,
) -> store::Result<Vec<Document>> {
    txn.query(TABLE)?
        .with_index(INDEX_BY_STATE_COMPLETED, |q| {
            q.eq("state", state.as_str()).lt("completed_at", cutoff)
        })?
        .take(limit)
}

/// Actions `in_progress` since before `started_before` that this node is not running.
fn stuck_actions(
    txn: &mut Txn,
    mine: &HashSet<DocumentId>,
    started_before: f64,
) -> store::Result<Vec<Document>> {
    let running = txn
        .query(TABLE)?
        .with_index(INDEX_BY_STATE_TIME, |q| {
            q.eq("state", ScheduledState::InProgress.as_str())
        })?
        .collect()?;
    Ok(running
        .into_iter()
        .filter(|doc| {
            let started = doc.get("started_at").and_then(Value::as_f64);
            !mine.contains(&doc.id) && started.is_none_or(|t| t < started_before)
        })
        .collect())
}
