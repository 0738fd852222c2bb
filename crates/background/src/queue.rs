//! Runs jobs (`functions::jobs`): runs due mutation jobs, claims due action jobs under a lease and
//! runs them, and records success, a retry with backoff, or `dead` after the last attempt. Old
//! finished jobs are pruned.
//!
//! A mutation job needs no claim: its attempt is one transaction. It runs through
//! `Runtime::call_guarded`, whose guard first checks that the job is still pending, due and not
//! attempted since it was scanned (otherwise the handler is skipped) and last marks it `succeeded`
//! (attempts + 1), so its writes and its success commit together: exactly once. Two nodes that run
//! the same job meet in a serialization conflict and the retry skips it; a node that dies mid-run
//! committed nothing, and the job is still pending. One that throws wrote nothing; its failure is
//! recorded in a second transaction. (One that `fail_after_commit`s committed its writes, so it is
//! `dead`, not retried.)
//!
//! An action job is claimed first, in one transaction per batch of as many as the worker has free
//! slots: `running`, `attempts` + 1, `lease_owner` this worker and `run_at` the lease's expiry.
//! Then it runs, then its outcome is recorded if the lease is still this worker's. A node that dies
//! mid-action leaves the job `running`; once the lease expires any worker claims it again (a job
//! whose lease expired after its last attempt is `dead`, "lease expired", and not run again). So an
//! action job runs at least once, and its handler must be idempotent.
//!
//! A failure puts the job back to `pending` with `run_at` = now + `backoff_ms` * 2^(attempts - 1)
//! (capped at `max_backoff`), times a random factor in [0.5, 1] so that failed jobs do not return
//! together; after `max_attempts` attempts it is `dead` with its last error.
//!
//! Waking, as the scheduler's executor: the worker scans the due jobs, the next pending due time
//! and the next lease expiry, keeps what that scan read, and sleeps until a commit from the commit
//! feed (every node's commits on PostgreSQL) writes into it, the next due time, a run finishes, or
//! a slow fallback poll. An idle worker only waits.
//!
//! Jobs run with no user session: `Caller::Server` and an anonymous `Auth`.

use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use functions::activity::Work;
use functions::jobs::{Job, JobState, INDEX_BY_STATE_COMPLETED, INDEX_BY_STATE_RUN_AT, TABLE};
use functions::scheduler::wall_ms;
use functions::{
    Auth, Call, Caller, ErrorCode, FnResult, FunctionError, FunctionKind, MutationGuard, RequestId,
    Runtime,
};
use store::{CommitFeed, FeedEvent, Patch, ReadSet, Store, Txn};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use values::{DocumentId, Value};

#[derive(Clone, Debug)]
pub struct QueueOptions {
    /// Jobs run at once on this node.
    pub concurrency: usize,
    /// Due jobs read per scan.
    pub batch: usize,
    /// How long a claimed job is this node's. `None`: the runtime's function timeout plus 30 s
    /// (an action cannot run longer than the timeout).
    pub lease: Option<Duration>,
    /// The longest retry delay.
    pub max_backoff: Duration,
    /// Rescan this often even without a commit or a due time (should a wake-up be lost).
    pub fallback_poll: Duration,
    /// On stop, how long runs in progress are waited for.
    pub drain: Duration,
    /// How long `succeeded` and `canceled` jobs are kept (`dead` ones stay until an operator acts).
    pub retention: Duration,
    /// How often finished jobs past retention are pruned.
    pub prune_every: Duration,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            concurrency: 16,
            batch: 256,
            lease: None,
            max_backoff: Duration::from_secs(3600),
            fallback_poll: Duration::from_secs(30),
            drain: Duration::from_secs(10),
            retention: Duration::from_secs(7 * 24 * 3600),
            prune_every: Duration::from_secs(60),
        }
    }
}

/// How long the worker waits after the database failed it.
const COOLDOWN: Duration = Duration::from_secs(1);

/// The running job worker of one node.
pub struct Queue {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Queue {
    /// Starts running the jobs of `runtime`'s store. A store without the `jobs` table has nothing to
    /// run; the worker idles.
    pub fn start(runtime: Runtime, options: QueueOptions) -> Queue {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(runtime, options, stopped));
        Queue { stop, task }
    }

    /// Stops claiming and waits (up to `drain`) for runs in progress. A job cut off keeps its lease
    /// and is taken over when it expires.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

struct Scan {
    due: Vec<Job>,
    next_ms: Option<f64>,
    reads: ReadSet,
}

struct Worker {
    runtime: Runtime,
    /// Who holds a lease: this worker, for this run of the process.
    owner: String,
    lease_ms: f64,
    max_backoff_ms: f64,
}

async fn run(runtime: Runtime, options: QueueOptions, mut stop: watch::Receiver<bool>) {
    let store = runtime.store().clone();
    if store.table_number(TABLE).is_none() {
        tracing::debug!("no {TABLE} table: the job worker idles");
        let _ = stop.wait_for(|stopped| *stopped).await;
        return;
    }
    let lease = options
        .lease
        .unwrap_or(runtime.timeout() + Duration::from_secs(30));
    let worker = Arc::new(Worker {
        runtime: runtime.clone(),
        owner: RequestId::generate().as_str().to_string(),
        lease_ms: lease.as_secs_f64() * 1000.0,
        max_backoff_ms: options.max_backoff.as_secs_f64() * 1000.0,
    });
    // Subscribed before the first scan, so no commit after the scan goes unseen.
    let mut feed = match store.commit_feed().await {
        Ok(feed) => Some(feed),
        Err(error) => {
            tracing::warn!(%error, "jobs: no commit feed; falling back to polling");
            None
        }
    };
    let concurrency = options.concurrency.max(1);
    let salt: u64 = rand::random();
    // Each run says whether it found its job already taken (see `Ran::Taken`).
    let mut running: JoinSet<(DocumentId, Ran)> = JoinSet::new();
    let mut in_flight: HashSet<DocumentId> = HashSet::new();
    // Due jobs of the last scan not started yet: a backlog is worked off from here, and the table
    // scanned again only when it runs low.
    let mut queue: VecDeque<Job> = VecDeque::new();
    let mut reads = ReadSet::default();
    let mut next_ms: Option<f64> = None;
    let mut stale = true;
    let mut next_prune = Instant::now();
    'outer: loop {
        if *stop.borrow() {
            break;
        }
        if Instant::now() >= next_prune {
            prune(&store, options.retention).await;
            next_prune = Instant::now() + options.prune_every;
        }
        let now = Instant::now();
        if stale && queue.len() < concurrency {
            match scan(&store, options.batch, salt).await {
                Ok(scan) => {
                    stale = scan.due.len() >= options.batch;
                    queue = scan.due.into();
                    reads = scan.reads;
                    next_ms = scan.next_ms;
                }
                Err(error) => {
                    tracing::warn!(%error, "jobs: scan failed");
                    tokio::select! {
                        _ = stop.changed() => break,
                        _ = tokio::time::sleep(COOLDOWN) => continue,
                    }
                }
            }
        }
        // Pending mutation jobs start at once (their attempt is one transaction, see `run_one`);
        // the rest are claimed, a batch per transaction, once half the slots are free (claiming
        // one job per freed slot would cost a transaction per job).
        let mut started = false;
        let mut wanted = Vec::new();
        let claim_now = running.len() <= concurrency / 2;
        while running.len() + wanted.len() < concurrency {
            let Some(job) = queue.front() else {
                break;
            };
            let direct = job.kind == FunctionKind::Mutation && job.state == JobState::Pending;
            if !direct && !claim_now {
                break;
            }
            let job = queue.pop_front().expect("a front");
            if in_flight.contains(&job.id) {
                continue;
            }
            if direct {
                started = true;
                in_flight.insert(job.id);
                spawn(&mut running, &worker, job, Attempt::Unclaimed);
            } else {
                wanted.push(job.id);
            }
        }
        if !wanted.is_empty() {
            match claim(&worker, wanted).await {
                Ok(claimed) => {
                    for job in claimed {
                        started = true;
                        in_flight.insert(job.id);
                        spawn(&mut running, &worker, job, Attempt::Leased);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "jobs: claiming failed");
                    stale = true;
                    tokio::select! {
                        _ = stop.changed() => break,
                        _ = tokio::time::sleep(COOLDOWN) => continue,
                    }
                }
            }
        }
        // More due jobs than the last scan held, and room to run them: scan again at once (unless
        // this round started nothing, when a rescan would only find the same jobs).
        if stale && started && queue.is_empty() && running.len() < concurrency {
            continue;
        }
        let mut wake = (now + options.fallback_poll).min(next_prune);
        if let Some(due_ms) = next_ms {
            let wait = ((due_ms - wall_ms()).max(0.0) / 1000.0).min(3600.0);
            wake = wake.min(Instant::now() + Duration::from_secs_f64(wait));
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
                            if ran == Ran::Taken {
                                // Another node works the same jobs: what is queued here is
                                // likely done too, so scan again for what is still pending.
                                queue.clear();
                                stale = true;
                            }
                        }
                        Some(Err(error)) => {
                            tracing::error!(%error, "jobs: a run panicked");
                            in_flight.clear();
                            stale = true;
                        }
                        None => {}
                    }
                    break;
                }
                event = next_event(&mut feed) => match event {
                    Some(FeedEvent::Commit(commit)) => {
                        if reads.intersects(&commit.writes) {
                            stale = true;
                            if queue.len() < concurrency && running.len() < concurrency {
                                break;
                            }
                        }
                    }
                    Some(FeedEvent::Reset(_)) => {
                        stale = true;
                        break;
                    }
                    None => {
                        tracing::warn!("jobs: the commit feed ended; falling back to polling");
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
    let _ = tokio::time::timeout(options.drain, async {
        while running.join_next().await.is_some() {}
    })
    .await;
}

/// Rows deleted per pruning transaction.
const PRUNE_BATCH: usize = 500;

/// Deletes `succeeded` and `canceled` jobs that finished more than `retention` ago. It looks in a
/// read-only snapshot first: an empty write still commits (and wakes every node's commit feed).
async fn prune(store: &Store, retention: Duration) {
    let cutoff = wall_ms() - retention.as_secs_f64() * 1000.0;
    for state in [JobState::Succeeded, JobState::Canceled] {
        let old = move |txn: &mut Txn, limit: usize| {
            txn.query(TABLE)?
                .with_index(INDEX_BY_STATE_COMPLETED, |q| {
                    q.eq("state", state.as_str()).lt("completed_at", cutoff)
                })?
                .take(limit)
        };
        match store.query(move |txn| old(txn, 1)).await {
            Ok((found, _, _)) if found.is_empty() => continue,
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "jobs: pruning could not read");
                return;
            }
        }
        loop {
            let pruned = store
                .mutate(move |txn| {
                    let rows = old(txn, PRUNE_BATCH)?;
                    for doc in &rows {
                        txn.delete(&doc.id)?;
                    }
                    Ok::<_, store::StoreError>(rows.len())
                })
                .await;
            match pruned {
                Ok((n, _, _)) if n == PRUNE_BATCH => continue,
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(%error, "jobs: pruning failed");
                    return;
                }
            }
        }
    }
}

async fn next_event(feed: &mut Option<CommitFeed>) -> Option<FeedEvent> {
    match feed {
        Some(feed) => feed.next().await,
        None => std::future::pending().await,
    }
}

/// Due pending jobs and running jobs whose lease expired (highest priority first),
/// and the next time one of either comes due.
async fn scan(store: &Store, batch: usize, salt: u64) -> FnResult<Scan> {
    let now = wall_ms();
    let ((due, next_ms), reads, _) = store
        .query(move |txn| {
            let mut due = Vec::new();
            let mut next_ms: Option<f64> = None;
            for state in [JobState::Pending, JobState::Running] {
                due.extend(
                    txn.query(TABLE)?
                        .with_index(INDEX_BY_STATE_RUN_AT, |q| {
                            q.eq("state", state.as_str()).lte("run_at", now)
                        })?
                        .take(batch)?,
                );
                let next = txn
                    .query(TABLE)?
                    .with_index(INDEX_BY_STATE_RUN_AT, |q| {
                        q.eq("state", state.as_str()).gt("run_at", now)
                    })?
                    .first()?
                    .and_then(|doc| doc.get("run_at").and_then(Value::as_f64));
                next_ms = match (next_ms, next) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            Ok::<_, FunctionError>((due, next_ms))
        })
        .await?;
    // A row that does not read (not written by this code) is skipped, not allowed to stop the rest.
    let mut due: Vec<Job> = due
        .iter()
        .filter_map(|doc| match Job::from_document(doc) {
            Ok(job) => Some(job),
            Err(error) => {
                tracing::error!(%error, "jobs: skipping an unreadable row");
                None
            }
        })
        .collect();
    // Among equal priorities, an order of this worker's own: the batch is all due already, and
    // nodes that take the same jobs in the same order would mostly collide (one run of each pair
    // is wasted in a serialization conflict).
    let shuffle = |job: &Job| {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (salt, job.id).hash(&mut hasher);
        hasher.finish()
    };
    due.sort_by(|a, b| {
        b.priority
            .total_cmp(&a.priority)
            .then_with(|| shuffle(a).cmp(&shuffle(b)))
    });
    Ok(Scan {
        due,
        next_ms,
        reads,
    })
}

fn state_of(txn: &mut Txn, id: &DocumentId) -> store::Result<Option<Job>> {
    Ok(txn.get(id)?.and_then(|doc| Job::from_document(&doc).ok()))
}

/// Claims those of `ids` that are still due, in one transaction; the claimed jobs as they now are.
async fn claim(worker: &Arc<Worker>, ids: Vec<DocumentId>) -> FnResult<Vec<Job>> {
    let (owner, lease_ms) = (worker.owner.clone(), worker.lease_ms);
    let (claimed, _, _) = worker
        .runtime
        .store()
        .mutate(move |txn| {
            let now = txn.now_ms();
            let mut claimed = Vec::new();
            let mut lags = Vec::new();
            for id in &ids {
                let Some(mut job) = state_of(txn, id)? else {
                    continue;
                };
                let takeover = job.state == JobState::Running;
                if !matches!(job.state, JobState::Pending | JobState::Running) || job.run_at > now {
                    continue;
                }
                if takeover && job.attempts >= job.max_attempts {
                    // Its node died during the last attempt.
                    txn.patch(
                        id,
                        Patch::from([
                            ("state".to_string(), Some(JobState::Dead.value())),
                            ("completed_at".to_string(), Some(Value::Float64(now))),
                            (
                                "last_error".to_string(),
                                Some(Value::String(
                                    "lease expired: the node running the last attempt stopped"
                                        .to_string(),
                                )),
                            ),
                        ]),
                    )?;
                    continue;
                }
                // Lag counts from when a pending job was due; a takeover's from its lease's end.
                lags.push(now - job.run_at);
                job.state = JobState::Running;
                job.attempts += 1;
                job.run_at = now + lease_ms;
                job.lease_owner = Some(owner.clone());
                job.started_at = Some(now);
                txn.patch(
                    id,
                    Patch::from([
                        ("state".to_string(), Some(JobState::Running.value())),
                        (
                            "attempts".to_string(),
                            Some(Value::Float64(job.attempts as f64)),
                        ),
                        ("run_at".to_string(), Some(Value::Float64(job.run_at))),
                        (
                            "lease_owner".to_string(),
                            Some(Value::String(owner.clone())),
                        ),
                        ("started_at".to_string(), Some(Value::Float64(now))),
                    ]),
                )?;
                claimed.push(job);
            }
            Ok::<_, FunctionError>((claimed, lags))
        })
        .await?;
    let (claimed, lags) = claimed;
    for lag in lags {
        worker.runtime.activity().started(Work::Job, lag);
    }
    Ok(claimed)
}

fn succeeded_patch(now: f64) -> Patch {
    Patch::from([
        ("state".to_string(), Some(JobState::Succeeded.value())),
        ("completed_at".to_string(), Some(Value::Float64(now))),
        ("lease_owner".to_string(), None),
    ])
}

fn dead_patch(now: f64, error: &FunctionError) -> Patch {
    Patch::from([
        ("state".to_string(), Some(JobState::Dead.value())),
        ("completed_at".to_string(), Some(Value::Float64(now))),
        ("lease_owner".to_string(), None),
        (
            "last_error".to_string(),
            Some(Value::String(error.to_string())),
        ),
    ])
}

/// The delay before attempt `attempts + 1`: doubled per attempt, capped, times a random factor in
/// [0.5, 1].
fn backoff_ms(base_ms: f64, attempts: u32, cap_ms: f64) -> f64 {
    let exponent = attempts.saturating_sub(1).min(40) as i32;
    let full = (base_ms * 2f64.powi(exponent)).min(cap_ms);
    full * (0.5 + rand::random::<f64>() * 0.5)
}

/// How a run holds its job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attempt {
    /// A pending mutation job, run without a claim: its transaction is the whole attempt.
    Unclaimed,
    /// Claimed under this worker's lease.
    Leased,
}

/// Whether the job is still as this run found it: pending, due and not attempted since the scan
/// (`Unclaimed`), or leased to this worker for this attempt (`Leased`).
fn still_ours(txn: &mut Txn, worker: &Worker, job: &Job, attempt: Attempt) -> store::Result<bool> {
    let now = txn.now_ms();
    Ok(state_of(txn, &job.id)?.is_some_and(|row| match attempt {
        Attempt::Unclaimed => {
            row.state == JobState::Pending && row.attempts == job.attempts && row.run_at <= now
        }
        Attempt::Leased => {
            row.state == JobState::Running
                && row.lease_owner.as_deref() == Some(worker.owner.as_str())
                && row.attempts == job.attempts
        }
    }))
}

/// The attempt number of this run (a claim already counted it).
fn attempt_number(job: &Job, attempt: Attempt) -> u32 {
    match attempt {
        Attempt::Unclaimed => job.attempts + 1,
        Attempt::Leased => job.attempts,
    }
}

/// The patch that ends an attempt: success, or a failure (retry with backoff, or dead after the
/// last attempt).
fn outcome_patch(
    worker: &Worker,
    job: &Job,
    attempt: Attempt,
    outcome: &FnResult<()>,
    now: f64,
) -> Patch {
    let number = attempt_number(job, attempt);
    let mut patch = match outcome {
        Ok(()) => succeeded_patch(now),
        Err(error) if number >= job.max_attempts => dead_patch(now, error),
        Err(error) => Patch::from([
            ("state".to_string(), Some(JobState::Pending.value())),
            (
                "run_at".to_string(),
                Some(Value::Float64(
                    now + backoff_ms(job.backoff_ms, number, worker.max_backoff_ms),
                )),
            ),
            ("lease_owner".to_string(), None),
            (
                "last_error".to_string(),
                Some(Value::String(error.to_string())),
            ),
        ]),
    };
    if attempt == Attempt::Unclaimed {
        patch.insert("attempts".to_string(), Some(Value::Float64(number as f64)));
        patch.insert("started_at".to_string(), Some(Value::Float64(now)));
    }
    patch
}

/// In a mutation job's transaction: skip unless the job is still ours, and record its success
/// with its writes.
struct Guard {
    worker: Arc<Worker>,
    job: Job,
    attempt: Attempt,
    /// Set when `replay` found the job no longer ours.
    taken: AtomicBool,
}

impl MutationGuard for Guard {
    fn replay(&self, txn: &mut Txn) -> FnResult<Option<FnResult<Value>>> {
        if still_ours(txn, &self.worker, &self.job, self.attempt)? {
            Ok(None)
        } else {
            // Another worker ran it or took it over, or it was canceled.
            self.taken.store(true, Ordering::Relaxed);
            Ok(Some(Err(FunctionError::plain(
                ErrorCode::Conflict,
                "job no longer ours to run",
            ))))
        }
    }
    fn record(&self, txn: &mut Txn, outcome: &FnResult<Value>) -> FnResult<()> {
        let now = txn.now_ms();
        let mut patch = outcome_patch(&self.worker, &self.job, self.attempt, &Ok(()), now);
        if let Err(error) = outcome {
            // `fail_after_commit`: its writes commit, so running it again would repeat them.
            patch.extend(dead_patch(now, error));
        }
        txn.patch(&self.job.id, patch)?;
        Ok(())
    }
}

/// Records a failed attempt (or an action's success) if the job is still ours. A few tries while
/// the database is unavailable; past that a leased job is taken over when its lease expires, and an
/// unclaimed one is simply still pending.
async fn record(worker: &Arc<Worker>, job: &Job, attempt: Attempt, outcome: FnResult<()>) {
    let outcome = Arc::new(outcome);
    let mut wait = Duration::from_millis(100);
    for _ in 0..8 {
        let (worker_for_txn, job_for_txn, outcome) = (worker.clone(), job.clone(), outcome.clone());
        let written = worker
            .runtime
            .store()
            .mutate(move |txn| {
                if !still_ours(txn, &worker_for_txn, &job_for_txn, attempt)? {
                    return Ok::<_, FunctionError>(());
                }
                let now = txn.now_ms();
                let patch = outcome_patch(&worker_for_txn, &job_for_txn, attempt, &outcome, now);
                txn.patch(&job_for_txn.id, patch)?;
                Ok(())
            })
            .await;
        match written {
            Ok(_) => return,
            Err(error) => {
                tracing::warn!(id = %job.id, %error, "jobs: recording an attempt failed");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// How a run ended, for the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ran {
    Done,
    /// The job was no longer ours when its transaction began (another node ran it).
    Taken,
}

fn spawn(
    running: &mut JoinSet<(DocumentId, Ran)>,
    worker: &Arc<Worker>,
    job: Job,
    attempt: Attempt,
) {
    let worker = worker.clone();
    running.spawn(async move {
        let id = job.id;
        (id, run_one(&worker, job, attempt).await)
    });
}

async fn run_one(worker: &Arc<Worker>, job: Job, attempt: Attempt) -> Ran {
    let request_id = RequestId::generate();
    let call = Call {
        path: job.name.clone(),
        expected: Some(job.kind),
        args: Value::Object(job.args.clone()),
        auth: Auth::anonymous(),
        request_id: request_id.clone(),
        caller: Caller::Server,
    };
    let number = attempt_number(&job, attempt);
    if attempt == Attempt::Unclaimed {
        // Run without a claim (a mutation, inside its own transaction): `run_at` is when it was
        // due. Claimed runs counted their lag when claimed.
        worker
            .runtime
            .activity()
            .started(Work::Job, wall_ms() - job.run_at);
    }
    tracing::debug!(id = %job.id, path = %job.name, attempt = number, %request_id, "jobs: running");
    let outcome = match job.kind {
        FunctionKind::Mutation => {
            let guard = Arc::new(Guard {
                worker: worker.clone(),
                job: job.clone(),
                attempt,
                taken: AtomicBool::new(false),
            });
            let result = worker.runtime.call_guarded(call, guard.clone()).await;
            if guard.taken.load(Ordering::Relaxed) && result.is_err() {
                return Ran::Taken;
            }
            match result {
                // Recorded in its own transaction.
                Ok(_) => {
                    worker.runtime.activity().finished(Work::Job, false);
                    return Ran::Done;
                }
                // The database was unavailable: nothing was written and the job is still
                // pending; the next scan (after the database is back) runs it without counting
                // an attempt.
                Err(FunctionError::User {
                    code: ErrorCode::Unavailable,
                    ..
                }) if attempt == Attempt::Unclaimed => return Ran::Done,
                // Nothing was written (or the guard found the job no longer ours, which `record`
                // sees too).
                Err(error) => Err(error),
            }
        }
        FunctionKind::Action => worker.runtime.call(call).await.map(|_| ()),
        FunctionKind::Query => Err(FunctionError::internal("a job cannot be a query")),
    };
    if let Err(error) = &outcome {
        tracing::info!(id = %job.id, path = %job.name, attempt = number, %error, "jobs: attempt failed");
    }
    worker
        .runtime
        .activity()
        .finished(Work::Job, outcome.is_err());
    record(worker, &job, attempt, outcome).await;
    Ran::Done
}
