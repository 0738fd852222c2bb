//! Scheduling functions to run later, as Convex's `ctx.scheduler`: `run_after`, `run_at` and
//! `cancel`. A schedule is a row of the `scheduled_functions` table. From a mutation the row is
//! written in the mutation's own transaction, so a mutation that fails or rolls back schedules
//! nothing; from an action it is a small transaction of its own. The `background` crate's executor
//! runs the due rows; this module only writes and reads them.

use serde::Serialize;
use store::{Document, Patch, StoreError, TableDef, Txn};
use values::serde_bridge::to_value;
use values::validator::v;
use values::{DocumentId, Object, Value};

use crate::context::{ActionCtx, MutationCtx};
use crate::path::FunctionPath;
use crate::runtime::Runtime;
use crate::typed::FunctionRef;
use crate::{ErrorCode, FnResult, FunctionError, FunctionKind};

/// The table of schedules; `server::open_store` adds it to every schema.
pub const TABLE: &str = "scheduled_functions";
/// Pending rows by due time: what the executor scans.
pub const INDEX_BY_STATE_TIME: &str = "by_state_time";
/// Finished rows by completion time: what retention prunes.
pub const INDEX_BY_STATE_COMPLETED: &str = "by_state_completed";

/// Where a schedule stands. `pending` -> `success` | `failed` | `canceled`, with `in_progress` in
/// between for actions (claimed before they run, so they run at most once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduledState {
    Pending,
    InProgress,
    Success,
    Failed,
    Canceled,
}

impl ScheduledState {
    pub const ALL: [ScheduledState; 5] = [
        ScheduledState::Pending,
        ScheduledState::InProgress,
        ScheduledState::Success,
        ScheduledState::Failed,
        ScheduledState::Canceled,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduledState::Pending => "pending",
            ScheduledState::InProgress => "in_progress",
            ScheduledState::Success => "success",
            ScheduledState::Failed => "failed",
            ScheduledState::Canceled => "canceled",
        }
    }
    pub fn parse(name: &str) -> Option<ScheduledState> {
        Some(match name {
            "pending" => ScheduledState::Pending,
            "in_progress" => ScheduledState::InProgress,
            "success" => ScheduledState::Success,
            "failed" => ScheduledState::Failed,
            "canceled" => ScheduledState::Canceled,
            _ => return None,
        })
    }
    /// The states retention prunes.
    pub const FINISHED: [ScheduledState; 3] = [
        ScheduledState::Success,
        ScheduledState::Failed,
        ScheduledState::Canceled,
    ];
}

pub fn table() -> TableDef {
    TableDef::new(TABLE)
        // The function's path and kind ("mutation" or "action").
        .field("name", v::string())
        .field("kind", v::string())
        .field("args", v::any())
        .field("state", v::string())
        // Ms since the epoch, as `_creationTime`.
        .field("scheduled_time", v::number())
        .optional("started_at", v::number())
        .optional("completed_at", v::number())
        .optional("error", v::string())
        .index(INDEX_BY_STATE_TIME, &["state", "scheduled_time"])
        .index(INDEX_BY_STATE_COMPLETED, &["state", "completed_at"])
}

/// One schedule as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduledFunction {
    pub id: DocumentId,
    pub name: String,
    pub kind: FunctionKind,
    pub args: Object,
    pub state: ScheduledState,
    pub scheduled_time: f64,
    pub started_at: Option<f64>,
    pub completed_at: Option<f64>,
    pub error: Option<String>,
}

impl ScheduledFunction {
    pub fn from_document(doc: &Document) -> FnResult<ScheduledFunction> {
        let bad = |what: &str| {
            FunctionError::internal(format!("scheduled function {} has a bad {what}", doc.id))
        };
        let string = |field: &str| doc.get(field).and_then(Value::as_str);
        let number = |field: &str| match doc.get(field) {
            Some(Value::Float64(n)) => Some(*n),
            _ => None,
        };
        let kind = match string("kind") {
            Some("mutation") => FunctionKind::Mutation,
            Some("action") => FunctionKind::Action,
            _ => return Err(bad("kind")),
        };
        let args = match doc.get("args") {
            Some(Value::Object(args)) => args.clone(),
            _ => return Err(bad("args")),
        };
        Ok(ScheduledFunction {
            id: doc.id,
            name: string("name").ok_or_else(|| bad("name"))?.to_string(),
            kind,
            args,
            state: string("state")
                .and_then(ScheduledState::parse)
                .ok_or_else(|| bad("state"))?,
            scheduled_time: number("scheduled_time").ok_or_else(|| bad("scheduled_time"))?,
            started_at: number("started_at"),
            completed_at: number("completed_at"),
            error: string("error").map(str::to_string),
        })
    }
}

/// The row of a new schedule, after checking that `path` names a mutation or an action and that
/// `args` pass its validator (so a bad call fails where it is made, not later in the executor).
fn new_row(runtime: &Runtime, path: &str, args: Value, time_ms: f64) -> FnResult<Object> {
    let parsed = FunctionPath::parse(path)
        .map_err(|e| FunctionError::plain(ErrorCode::Validation, e.to_string()))?;
    let registered = runtime.registry().lookup(&parsed).ok_or_else(|| {
        FunctionError::internal(format!("cannot schedule {path}: no such function"))
    })?;
    let kind = registered.spec.kind;
    if kind == FunctionKind::Query {
        return Err(FunctionError::internal(format!(
            "cannot schedule {path}: only mutations and actions can be scheduled"
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
    if !time_ms.is_finite() {
        return Err(FunctionError::internal(format!(
            "cannot schedule {path}: the time is not a finite number"
        )));
    }
    Ok(Object::from([
        ("name".to_string(), Value::String(parsed.to_string())),
        ("kind".to_string(), Value::String(kind.as_str().to_string())),
        ("args".to_string(), args),
        (
            "state".to_string(),
            Value::String(ScheduledState::Pending.as_str().to_string()),
        ),
        ("scheduled_time".to_string(), Value::Float64(time_ms)),
    ]))
}

fn encode_args<A: Serialize>(path: &str, args: &A) -> FnResult<Value> {
    match to_value(args) {
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

/// Marks a pending schedule canceled; other states and missing rows are left alone (a run that
/// started is not stopped, as in Convex). An Id of another table is an error.
pub fn cancel_in(txn: &mut Txn, id: &DocumentId, now_ms: f64) -> FnResult<()> {
    let Some(doc) = txn.get(id)? else {
        return Ok(());
    };
    if doc.table != TABLE {
        return Err(FunctionError::internal(format!(
            "cannot cancel {}: not a scheduled function",
            id.encode()
        )));
    }
    if doc.get("state").and_then(Value::as_str) != Some(ScheduledState::Pending.as_str()) {
        return Ok(());
    }
    let patch = Patch::from([
        (
            "state".to_string(),
            Some(Value::String(ScheduledState::Canceled.as_str().to_string())),
        ),
        ("completed_at".to_string(), Some(Value::Float64(now_ms))),
    ]);
    txn.patch(id, patch)?;
    Ok(())
}

/// A mutation's scheduler: what it schedules is written in the mutation's transaction.
pub struct Scheduler<'a> {
    txn: &'a mut Txn,
    runtime: &'a Runtime,
    now_ms: f64,
}

impl<'a> MutationCtx<'a> {
    pub fn scheduler(&mut self) -> Scheduler<'_> {
        let (runtime, now_ms) = (self.info.runtime, self.now_ms());
        Scheduler {
            txn: &mut *self.db.txn,
            runtime,
            now_ms,
        }
    }
}

impl Scheduler<'_> {
    /// Runs `function` with `args` `delay_ms` after this mutation's time (0: as soon as it commits).
    pub fn run_after<A: Serialize, R>(
        &mut self,
        delay_ms: f64,
        function: FunctionRef<A, R>,
        args: &A,
    ) -> FnResult<DocumentId> {
        self.run_at(self.now_ms + delay_ms.max(0.0), function, args)
    }
    /// Runs `function` with `args` at `time_ms` (ms since the epoch; a past time means now).
    pub fn run_at<A: Serialize, R>(
        &mut self,
        time_ms: f64,
        function: FunctionRef<A, R>,
        args: &A,
    ) -> FnResult<DocumentId> {
        let args = encode_args(function.path(), args)?;
        self.run_at_untyped(time_ms, function.path(), args)
    }
    /// `run_at` by path, with arguments as a value (checked against the function's validator).
    pub fn run_at_untyped(
        &mut self,
        time_ms: f64,
        path: &str,
        args: Value,
    ) -> FnResult<DocumentId> {
        let row = new_row(self.runtime, path, args, time_ms)?;
        self.txn.insert(TABLE, row).map_err(missing_table)
    }
    /// Cancels a pending schedule (see `cancel_in`).
    pub fn cancel(&mut self, id: &DocumentId) -> FnResult<()> {
        cancel_in(self.txn, id, self.now_ms)
    }
}

/// An action's scheduler: each call is a small transaction of its own.
pub struct ActionScheduler<'a> {
    runtime: &'a Runtime,
}

impl ActionCtx {
    pub fn scheduler(&self) -> ActionScheduler<'_> {
        ActionScheduler {
            runtime: &self.runtime,
        }
    }
}

impl ActionScheduler<'_> {
    pub async fn run_after<A: Serialize, R>(
        &self,
        delay_ms: f64,
        function: FunctionRef<A, R>,
        args: &A,
    ) -> FnResult<DocumentId> {
        self.run_at(wall_ms() + delay_ms.max(0.0), function, args)
            .await
    }
    pub async fn run_at<A: Serialize, R>(
        &self,
        time_ms: f64,
        function: FunctionRef<A, R>,
        args: &A,
    ) -> FnResult<DocumentId> {
        let args = encode_args(function.path(), args)?;
        self.run_at_untyped(time_ms, function.path(), args).await
    }
    pub async fn run_at_untyped(
        &self,
        time_ms: f64,
        path: &str,
        args: Value,
    ) -> FnResult<DocumentId> {
        let row = new_row(self.runtime, path, args, time_ms)?;
        let (id, _, _) = self
            .runtime
            .store()
            .mutate(move |txn| txn.insert(TABLE, row.clone()).map_err(missing_table))
            .await?;
        Ok(id)
    }
    pub async fn cancel(&self, id: &DocumentId) -> FnResult<()> {
        let id = *id;
        self.runtime
            .store()
            .mutate(move |txn| {
                let now = txn.now_ms();
                cancel_in(txn, &id, now)
            })
            .await?;
        Ok(())
    }
}

/// Ms since the epoch, by the wall clock.
pub fn wall_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}
