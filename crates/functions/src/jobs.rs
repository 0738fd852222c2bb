//! The job queue's data: a job is a row of the `jobs` table naming a mutation or an action (its
//! kind), its arguments, a priority, attempts and backoff, an optional idempotency key, and its
//! state. From a mutation a job is enqueued in the mutation's own transaction (a mutation that
//! fails enqueues nothing); from an action, in a small transaction of its own; from server code
//! that runs its own `Store::mutate`, in that transaction (`enqueue_in_txn`). The `background`
//! crate's `Queue` runs the jobs; this module writes and reads the rows, and has the operators'
//! functions (list by state, retry a dead job, cancel a pending one).
//!
//! Handlers must be idempotent: an action job runs at least once (it is run again after a failure,
//! or when its node dies and its lease expires). A mutation job's success commits with its writes,
//! so a mutation job's effects happen exactly once.

use serde::Serialize;
use store::{Document, Patch, Store, StoreError, TableDef, Txn};
use values::validator::v;
use values::{DocumentId, Object, Value};

use crate::context::{ActionCtx, MutationCtx};
use crate::path::FunctionPath;
use crate::runtime::Runtime;
use crate::scheduler::wall_ms;
use crate::typed::FunctionRef;
use crate::{ErrorCode, FnResult, FunctionError, FunctionKind};

/// The table of jobs; `server::open_store` adds it to every schema.
pub const TABLE: &str = "jobs";
/// Jobs by state and `run_at`: what workers scan (due pending jobs, expired leases).
pub const INDEX_BY_STATE_RUN_AT: &str = "by_state_run_at";
/// Finished jobs by completion time: what retention prunes.
pub const INDEX_BY_STATE_COMPLETED: &str = "by_state_completed";
/// Jobs by idempotency key.
pub const INDEX_BY_KEY: &str = "by_idempotency_key";

/// Where a job stands: `pending` -> `succeeded`, with `running` between for action jobs (leased by
/// a worker; a mutation job's attempt is one transaction); after a failure back to `pending` (with
/// backoff), or `dead` after its last attempt. `pending` -> `canceled` by an operator or a
/// function; `dead` -> `pending` by `retry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    Pending,
    Running,
    Succeeded,
    Dead,
    Canceled,
}

impl JobState {
    pub const ALL: [JobState; 5] = [
        JobState::Pending,
        JobState::Running,
        JobState::Succeeded,
        JobState::Dead,
        JobState::Canceled,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Dead => "dead",
            JobState::Canceled => "canceled",
        }
    }
    pub fn parse(name: &str) -> Option<JobState> {
        Some(match name {
            "pending" => JobState::Pending,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "dead" => JobState::Dead,
            "canceled" => JobState::Canceled,
            _ => return None,
        })
    }
    pub fn value(self) -> Value {
        Value::String(self.as_str().to_string())
    }
}

pub fn table() -> TableDef {
    TableDef::new(TABLE)
        // The function's path and kind ("mutation" or "action").
        .field("name", v::string())
        .field("kind", v::string())
        .field("args", v::any())
        .field("state", v::string())
        // Higher runs first among the due jobs a worker has scanned.
        .field("priority", v::number())
        .field("attempts", v::number())
        .field("max_attempts", v::number())
        // First retry delay in ms; doubled per attempt, with jitter.
        .field("backoff_ms", v::number())
        // Ms since the epoch. Pending: not before. Running: when the lease expires (then any
        // worker may take the job over).
        .field("run_at", v::number())
        .optional("lease_owner", v::string())
        .optional("idempotency_key", v::string())
        .optional("started_at", v::number())
        .optional("completed_at", v::number())
        .optional("last_error", v::string())
        .index(INDEX_BY_STATE_RUN_AT, &["state", "run_at"])
        .index(INDEX_BY_STATE_COMPLETED, &["state", "completed_at"])
        .index(INDEX_BY_KEY, &["idempotency_key"])
}

/// How a job is enqueued.
#[derive(Clone, Debug)]
pub struct JobOptions {
    /// Higher first among the due jobs a worker has scanned (default 0).
    pub priority: f64,
    /// Attempts before the job is `dead` (default 5).
    pub max_attempts: u32,
    /// First retry delay (default 1 s), doubled per attempt up to the worker's cap, with jitter.
    pub backoff_ms: f64,
    /// Not before this long after enqueueing (default 0).
    pub delay_ms: f64,
    /// Enqueueing a key that a job already has returns that job's Id and enqueues nothing.
    pub idempotency_key: Option<String>,
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
            priority: 0.0,
            max_attempts: 5,
            backoff_ms: 1000.0,
            delay_ms: 0.0,
            idempotency_key: None,
        }
    }
}

impl JobOptions {
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
}

/// One job as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub id: DocumentId,
    pub name: String,
    pub kind: FunctionKind,
    pub args: Object,
    pub state: JobState,
    pub priority: f64,
    pub attempts: u32,
    pub max_attempts: u32,
    pub backoff_ms: f64,
    pub run_at: f64,
    pub lease_owner: Option<String>,
    pub idempotency_key: Option<String>,
    pub created_at: f64,
    pub started_at: Option<f64>,
    pub completed_at: Option<f64>,
    pub last_error: Option<String>,
}

impl Job {
    pub fn from_document(doc: &Document) -> FnResult<Job> {
        let bad = |what: &str| FunctionError::internal(format!("job {} has a bad {what}", doc.id));
        let string = |field: &str| doc.get(field).and_then(Value::as_str);
        let number = |field: &str| doc.get(field).and_then(Value::as_f64);
        let kind = match string("kind") {
            Some("mutation") => FunctionKind::Mutation,
            Some("action") => FunctionKind::Action,
            _ => return Err(bad("kind")),
        };
        let args = match doc.get("args") {
            Some(Value::Object(args)) => args.clone(),
            _ => return Err(bad("args")),
        };
        Ok(Job {
            id: doc.id,
            name: string("name").ok_or_else(|| bad("name"))?.to_string(),
            kind,
            args,
            state: string("state")
                .and_then(JobState::parse)
                .ok_or_else(|| bad("state"))?,
            priority: number("priority").unwrap_or(0.0),
            attempts: number("attempts").unwrap_or(0.0) as u32,
            max_attempts: number("max_attempts").unwrap_or(1.0) as u32,
            backoff_ms: number("backoff_ms").unwrap_or(1000.0),
            run_at: number("run_at").ok_or_else(|| bad("run_at"))?,
            lease_owner: string("lease_owner").map(str::to_string),
            idempotency_key: string("idempotency_key").map(str::to_string),
            created_at: doc.creation_time,
            started_at: number("started_at"),
            completed_at: number("completed_at"),
            last_error: string("last_error").map(str::to_string),
        })
    }
}

/// The row of a new job, after checking that `path` names a mutation or an action and that `args`
/// pass its validator (a bad enqueue fails where it is made).
fn new_row(
    runtime: &Runtime,
    path: &str,
    args: Value,
    options: &JobOptions,
    now_ms: f64,
) -> FnResult<Object> {
    let parsed = FunctionPath::parse(path)
        .map_err(|e| FunctionError::plain(ErrorCode::Validation, e.to_string()))?;
    let registered = runtime.registry().lookup(&parsed).ok_or_else(|| {
        FunctionError::internal(format!("cannot enqueue {path}: no such function"))
    })?;
    let kind = registered.spec.kind;
    if kind == FunctionKind::Query {
        return Err(FunctionError::internal(format!(
            "cannot enqueue {path}: a job is a mutation or an action"
        )));
    }
    registered
        .spec
        .args
        .check(&args, &runtime.store().table_numbers())
        .map_err(|e| {
            FunctionError::plain(
                ErrorCode::Validation,
                format!("ArgumentValidationError: {}", e.message),
            )
        })?;
    let finite = |n: f64| n.is_finite();
    if !(finite(options.priority) && finite(options.backoff_ms) && finite(options.delay_ms)) {
        return Err(FunctionError::internal(format!(
            "cannot enqueue {path}: priority, backoff and delay must be finite numbers"
        )));
    }
    let mut row = Object::from([
        ("name".to_string(), Value::String(parsed.to_string())),
        ("kind".to_string(), Value::String(kind.as_str().to_string())),
        ("args".to_string(), args),
        ("state".to_string(), JobState::Pending.value()),
        ("priority".to_string(), Value::Float64(options.priority)),
        ("attempts".to_string(), Value::Float64(0.0)),
        (
            "max_attempts".to_string(),
            Value::Float64(options.max_attempts.max(1) as f64),
        ),
        (
            "backoff_ms".to_string(),
            Value::Float64(options.backoff_ms.max(0.0)),
        ),
        (
            "run_at".to_string(),
            Value::Float64(now_ms + options.delay_ms.max(0.0)),
        ),
    ]);
    if let Some(key) = &options.idempotency_key {
        row.insert("idempotency_key".to_string(), Value::String(key.clone()));
    }
    Ok(row)
}

fn encode_args<A: Serialize>(path: &str, args: &A) -> FnResult<Value> {
    match values::serde_bridge::to_value(args) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(other) => Err(FunctionError::internal(format!(
            "arguments of {path} encode as {}, not an object",
            other.type_name()
        ))),
        Err(e) => Err(FunctionError::internal(format!(
            "arguments of {path} do not encode: {e}"
        ))),
    }
}

fn missing_table(e: StoreError) -> FunctionError {
    match e {
        StoreError::Validation { message, .. } if message.contains(TABLE) => {
            FunctionError::internal(format!(
                "the store has no {TABLE} table (open it with server::open_store): {message}"
            ))
        }
        other => other.into(),
    }
}

/// Inserts `row` unless a job has its idempotency key; the Id of the job either way.
fn insert_in(txn: &mut Txn, row: Object) -> FnResult<DocumentId> {
    if let Some(Value::String(key)) = row.get("idempotency_key") {
        let key = key.clone();
        let existing = txn
            .query(TABLE)
            .map_err(missing_table)?
            .with_index(INDEX_BY_KEY, move |q| q.eq("idempotency_key", key))?
            .first()?;
        if let Some(doc) = existing {
            return Ok(doc.id);
        }
    }
    txn.insert(TABLE, row).map_err(missing_table)
}

/// Marks a pending job canceled; whether it was. A job in any other state is left alone (a running
/// job is not stopped).
pub fn cancel_in(txn: &mut Txn, id: &DocumentId, now_ms: f64) -> FnResult<bool> {
    let Some(doc) = txn.get(id)? else {
        return Ok(false);
    };
    if doc.table != TABLE {
        return Err(FunctionError::internal(format!(
            "cannot cancel {}: not a job",
            id.encode()
        )));
    }
    if doc.get("state").and_then(Value::as_str) != Some(JobState::Pending.as_str()) {
        return Ok(false);
    }
    txn.patch(
        id,
        Patch::from([
            ("state".to_string(), Some(JobState::Canceled.value())),
            ("completed_at".to_string(), Some(Value::Float64(now_ms))),
        ]),
    )?;
    Ok(true)
}

/// Puts a dead job back to `pending` with its attempts reset, to run as soon as a worker is free;
/// whether it was dead.
pub fn retry_in(txn: &mut Txn, id: &DocumentId, now_ms: f64) -> FnResult<bool> {
    let Some(doc) = txn.get(id)? else {
        return Ok(false);
    };
    if doc.table != TABLE {
        return Err(FunctionError::internal(format!(
            "cannot retry {}: not a job",
            id.encode()
        )));
    }
    if doc.get("state").and_then(Value::as_str) != Some(JobState::Dead.as_str()) {
        return Ok(false);
    }
    txn.patch(
        id,
        Patch::from([
            ("state".to_string(), Some(JobState::Pending.value())),
            ("attempts".to_string(), Some(Value::Float64(0.0))),
            ("run_at".to_string(), Some(Value::Float64(now_ms))),
            ("completed_at".to_string(), None),
            ("lease_owner".to_string(), None),
        ]),
    )?;
    Ok(true)
}

/// Operators: up to `limit` jobs in `state`, by `run_at` (oldest first).
pub async fn list(store: &Store, state: JobState, limit: usize) -> FnResult<Vec<Job>> {
    let (docs, _, _) = store
        .query(move |txn| {
            txn.query(TABLE)
                .map_err(missing_table)?
                .with_index(INDEX_BY_STATE_RUN_AT, |q| q.eq("state", state.as_str()))?
                .take(limit)
                .map_err(FunctionError::from)
        })
        .await?;
    docs.iter().map(Job::from_document).collect()
}

/// Operators: one job.
pub async fn get(store: &Store, id: &DocumentId) -> FnResult<Option<Job>> {
    let id = *id;
    let (doc, _, _) = store
        .query(move |txn| txn.get(&id).map_err(FunctionError::from))
        .await?;
    match doc {
        Some(doc) if doc.table == TABLE => Job::from_document(&doc).map(Some),
        _ => Ok(None),
    }
}

/// Operators: `retry_in` in a transaction of its own.
pub async fn retry(store: &Store, id: &DocumentId) -> FnResult<bool> {
    let id = *id;
    let (done, _, _) = store
        .mutate(move |txn| {
            let now = txn.now_ms();
            retry_in(txn, &id, now)
        })
        .await?;
    Ok(done)
}

/// Operators: `cancel_in` in a transaction of its own.
pub async fn cancel(store: &Store, id: &DocumentId) -> FnResult<bool> {
    let id = *id;
    let (done, _, _) = store
        .mutate(move |txn| {
            let now = txn.now_ms();
            cancel_in(txn, &id, now)
        })
        .await?;
    Ok(done)
}

/// A mutation's queue: what it enqueues is written in the mutation's transaction.
pub struct Jobs<'a> {
    txn: &'a mut Txn,
    runtime: &'a Runtime,
    now_ms: f64,
}

impl<'a> MutationCtx<'a> {
    pub fn jobs(&mut self) -> Jobs<'_> {
        let (runtime, now_ms) = (self.info.runtime, self.now_ms());
        Jobs {
            txn: &mut *self.db.txn,
            runtime,
            now_ms,
        }
    }
}

impl Jobs<'_> {
    /// Enqueues `function` with `args`; the new job's Id, or the existing one's for a known
    /// idempotency key.
    pub fn enqueue<A: Serialize, R>(
        &mut self,
        function: FunctionRef<A, R>,
        args: &A,
        options: JobOptions,
    ) -> FnResult<DocumentId> {
        let args = encode_args(function.path(), args)?;
        self.enqueue_untyped(function.path(), args, options)
    }
    /// `enqueue` by path, with arguments as a value (checked against the function's validator).
    pub fn enqueue_untyped(
        &mut self,
        path: &str,
        args: Value,
        options: JobOptions,
    ) -> FnResult<DocumentId> {
        let row = new_row(self.runtime, path, args, &options, self.now_ms)?;
        insert_in(self.txn, row)
    }
    /// Cancels a pending job (see `cancel_in`).
    pub fn cancel(&mut self, id: &DocumentId) -> FnResult<bool> {
        cancel_in(self.txn, id, self.now_ms)
    }
    /// Sends a dead job back to pending with its attempts reset (see `retry_in`).
    pub fn retry(&mut self, id: &DocumentId) -> FnResult<bool> {
        retry_in(self.txn, id, self.now_ms)
    }
}

/// An action's queue: each call is a small transaction of its own.
pub struct ActionJobs<'a> {
    runtime: &'a Runtime,
}

impl ActionCtx {
    pub fn jobs(&self) -> ActionJobs<'_> {
        ActionJobs {
            runtime: &self.runtime,
        }
    }
}

impl ActionJobs<'_> {
    pub async fn enqueue<A: Serialize, R>(
        &self,
        function: FunctionRef<A, R>,
        args: &A,
        options: JobOptions,
    ) -> FnResult<DocumentId> {
        let args = encode_args(function.path(), args)?;
        enqueue(self.runtime, function.path(), args, options).await
    }
    pub async fn cancel(&self, id: &DocumentId) -> FnResult<bool> {
        cancel(self.runtime.store(), id).await
    }
}

/// Enqueues in a transaction of its own (from an action, or from outside any function).
pub async fn enqueue(
    runtime: &Runtime,
    path: &str,
    args: Value,
    options: JobOptions,
) -> FnResult<DocumentId> {
    let row = new_row(runtime, path, args, &options, wall_ms())?;
    let (id, _, _) = runtime
        .store()
        .mutate(move |txn| insert_in(txn, row.clone()))
        .await?;
    Ok(id)
}

/// Enqueues in `txn`, a transaction the caller runs itself (server code on `Store::mutate` rather
/// than a registered mutation): the job commits or rolls back with it. `runtime`'s registry
/// checks the function and its arguments.
pub fn enqueue_in_txn<A: Serialize, R>(
    txn: &mut Txn,
    runtime: &Runtime,
    function: FunctionRef<A, R>,
    args: &A,
    options: JobOptions,
) -> FnResult<DocumentId> {
    let args = encode_args(function.path(), args)?;
    let row = new_row(runtime, function.path(), args, &options, txn.now_ms())?;
    insert_in(txn, row)
}

/// What operators and `/metrics` see of the queue.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobStats {
    pub pending: u64,
    pub running: u64,
    pub dead: u64,
    /// How long the longest-waiting due pending job has waited (ms; 0 when none is due).
    pub oldest_pending_age_ms: f64,
}

/// Counts by state (from the index, no job is read) and the oldest due pending job's wait.
pub async fn stats(store: &Store) -> FnResult<JobStats> {
    let now = wall_ms();
    let (stats, _, _) = store
        .query(move |txn| {
            let mut count = |state: JobState| -> FnResult<u64> {
                Ok(txn
                    .query(TABLE)
                    .map_err(missing_table)?
                    .with_index(INDEX_BY_STATE_RUN_AT, |q| q.eq("state", state.as_str()))?
                    .count()?)
            };
            let (pending, running, dead) = (
                count(JobState::Pending)?,
                count(JobState::Running)?,
                count(JobState::Dead)?,
            );
            let oldest = txn
                .query(TABLE)?
                .with_index(INDEX_BY_STATE_RUN_AT, |q| {
                    q.eq("state", JobState::Pending.as_str())
                })?
                .first()?
                .and_then(|doc| doc.get("run_at").and_then(Value::as_f64));
            Ok::<_, FunctionError>(JobStats {
                pending,
                running,
                dead,
                oldest_pending_age_ms: oldest.map_or(0.0, |run_at| (now - run_at).max(0.0)),
            })
        })
        .await?;
    Ok(stats)
}
