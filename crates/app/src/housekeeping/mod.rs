//! Housekeeping: the shared shape of a sweep. Each module that owns rows which die (expired sessions,
//! used tokens, old emails ...) declares its own sweep next to its tables: an internal mutation that
//! deletes one batch and answers `{deleted, more}`, run by a cron (`Registry::cron`, see the
//! `background` crate) once per `INTERVAL` across nodes, called again while `more`.

use std::time::Duration;

use functions::{
    Auth, Call, Caller, DbWriter, FnResult, FunctionError, FunctionKind, FunctionRef, MutationCtx,
    Registry, RequestId, Runtime, Schedule,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use store::Order;
use values::serde_bridge::{from_value, to_value};
use values::Typed;

/// How often each sweep runs (on one node).
pub const INTERVAL: Duration = Duration::from_secs(3600);

pub(crate) const DAY_MS: f64 = 86_400_000.0;
const DEFAULT_BATCH: usize = 200;

/// A sweep's arguments: rows per transaction (see `batch_limit`).
#[derive(Default, Serialize, Deserialize, Typed)]
pub struct BatchArgs {
    pub limit: Option<f64>,
}

/// A sweep's answer: how many rows went, and `more` when the batch was full, so the caller calls
/// again.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
pub struct SweepBatch {
    pub deleted: usize,
    pub more: bool,
}

/// A table whose rows are dead once `field` (the first field of `index`) is `keep_ms` in the past.
pub struct Expiring {
    pub table: &'static str,
    pub index: &'static str,
    pub field: &'static str,
    pub keep_ms: f64,
}

/// Registers `sweep` as the mutation that deletes `expiring`'s dead rows, and its hourly cron.
pub fn expiring(
    r: &mut Registry,
    cron: &str,
    sweep: FunctionRef<BatchArgs, SweepBatch>,
    expiring: &'static Expiring,
) {
    r.internal_mutation(sweep, move |ctx, args| sweep_expiring(ctx, args, expiring));
    cron_for(r, cron, sweep);
}

/// Declares the hourly cron of a sweep mutation.
pub fn cron_for(r: &mut Registry, cron: &str, sweep: FunctionRef<BatchArgs, SweepBatch>) {
    r.cron(
        cron,
        Schedule::every(INTERVAL),
        sweep,
        &BatchArgs::default(),
    );
}

fn sweep_expiring(
    ctx: &mut MutationCtx<'_>,
    args: BatchArgs,
    expiring: &Expiring,
) -> FnResult<SweepBatch> {
    let limit = batch_limit(args.limit);
    let before = ctx.now_ms() - expiring.keep_ms;
    let deleted = delete_before(&mut ctx.db, expiring, before, limit)?;
    Ok(swept(deleted, limit))
}

fn delete_before(
    db: &mut DbWriter<'_>,
    expiring: &Expiring,
    before: f64,
    limit: usize,
) -> FnResult<usize> {
    let rows = db
        .query(expiring.table)?
        .with_index(expiring.index, |q| q.lt(expiring.field, before))?
        .order(Order::Asc)
        .take(limit)?;
    for row in &rows {
        db.delete(&row.id)?;
    }
    Ok(rows.len())
}

/// A sweep's `limit` argument: rows per transaction, kept small so other writers are not held up.
pub(crate) fn batch_limit(limit: Option<f64>) -> usize {
    limit.map_or(DEFAULT_BATCH, |l| l.clamp(1.0, 10_000.0) as usize)
}

/// A sweep's answer: `more` when the batch was full, so the caller calls again.
pub(crate) fn swept(deleted: usize, limit: usize) -> SweepBatch {
    SweepBatch {
        deleted,
        more: deleted == limit,
    }
}

/// Runs a mutation (internal ones included) as the server, with no viewer.
pub(crate) async fn run_mutation<A: Serialize, R: DeserializeOwned>(
    runtime: &Runtime,
    function: FunctionRef<A, R>,
    args: &A,
) -> FnResult<R> {
    let args = to_value(args).map_err(|e| {
        FunctionError::internal(format!(
            "arguments of {} do not encode: {e}",
            function.path()
        ))
    })?;
    let call = Call {
        path: function.path().to_string(),
        expected: Some(FunctionKind::Mutation),
        args,
        auth: Auth::anonymous(),
        request_id: RequestId::generate(),
        caller: Caller::Server,
    };
    let value = runtime.call(call).await.map(|outcome| outcome.value)?;
    from_value(&value).map_err(|e| {
        FunctionError::internal(format!(
            "{} returned what its type does not read: {e}",
            function.path()
        ))
    })
}
