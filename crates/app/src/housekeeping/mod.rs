//! Housekeeping: internal mutations delete expired and finished rows in batches; one node a round.

mod runner;

use functions::{
    Auth, Call, Caller, DbWriter, FnResult, FunctionError, FunctionKind, FunctionRef, MutationCtx,
    Registry, RequestId, Runtime,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use store::{Order, TableDef};
use values::serde_bridge::{from_value, to_value};
use values::validator::v;
use values::{Id, Typed, Validator};

use crate::{ai_service, email, impersonation, oauth, rate_limit};

pub use runner::{run_round, spawn, HousekeepingOptions, Swept};

/// One row per sweep: when a node last claimed it.
pub const RUNS: &str = "housekeeping_runs";
/// Finished emails are kept this long (a week) for support, then deleted: their bodies hold reset
/// and invitation links.
pub const EMAIL_RETENTION_MS: f64 = 7.0 * DAY_MS;
/// Ended and expired impersonations are kept a day, so a late `endImpersonation` still gets its
/// usual `success` rather than "not found".
pub const IMPERSONATION_RETENTION_MS: f64 = DAY_MS;

const DAY_MS: f64 = 86_400_000.0;
const DEFAULT_BATCH: usize = 200;
const CLAIM: FunctionRef<ClaimArgs, Claimed> =
    FunctionRef::internal_mutation("housekeeping:claimRound");
const EMAILS: FunctionRef<BatchArgs, SweepBatch> =
    FunctionRef::internal_mutation("housekeeping:sweepEmails");

/// A sweep's arguments: rows per transaction (see `batch_limit`).
#[derive(Serialize, Deserialize, Typed)]
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

#[derive(Serialize, Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct ClaimArgs {
    pub interval_ms: f64,
}

/// The paths of the sweeps claimed.
#[derive(Serialize, Deserialize, Typed)]
pub struct Claimed {
    pub claimed: Vec<String>,
}

/// A table whose rows are dead once `field` (the first field of `index`) is `keep_ms` in the past.
struct Expiring {
    sweep: FunctionRef<BatchArgs, SweepBatch>,
    table: &'static str,
    index: &'static str,
    field: &'static str,
    keep_ms: f64,
}

static EXPIRING: [Expiring; 5] = [
    // An expired session answers exactly like a missing one (`sessions::find`).
    Expiring {
        sweep: FunctionRef::internal_mutation("housekeeping:sweepSessions"),
        table: "sessions",
        index: "by_expires",
        field: "expires_at",
        keep_ms: 0.0,
    },
    // Used tokens are deleted when used; an expired one is refused exactly like a missing one.
    Expiring {
        sweep: FunctionRef::internal_mutation("housekeeping:sweepPasswordResets"),
        table: "password_reset_tokens",
        index: "by_expires",
        field: "expires_at",
        keep_ms: 0.0,
    },
    // A nonce is only needed while its state could still be presented.
    Expiring {
        sweep: FunctionRef::internal_mutation("housekeeping:sweepOAuthStates"),
        table: oauth::USED_STATES,
        index: "by_expires",
        field: "expires_at",
        keep_ms: 0.0,
    },
    Expiring {
        sweep: FunctionRef::internal_mutation("housekeeping:sweepImpersonations"),
        table: impersonation::TABLE,
        index: "by_expires",
        field: "expires_at",
        keep_ms: IMPERSONATION_RETENTION_MS,
    },
    Expiring {
        sweep: FunctionRef::internal_mutation("housekeeping:sweepRateLimits"),
        table: "rate_limits",
        index: "by_window_start",
        field: "window_start",
        keep_ms: rate_limit::STALE_AFTER_MS,
    },
];

/// Every sweep a round runs, by the path of its internal mutation (`{limit?}` → `{deleted, more}`).
pub fn sweeps() -> Vec<&'static str> {
    EXPIRING
        .iter()
        .map(|e| e.sweep.path())
        .chain([EMAILS.path(), ai_service::prune_path()])
        .collect()
}

/// A document of the sweep runs: when each sweep last ran.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
#[typed(table = "housekeeping_runs")]
pub struct RunDoc {
    #[serde(rename = "_id")]
    pub id: Id<RunDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    pub sweep: String,
    pub last_run_at: f64,
}

/// The row types of this module's tables, checked against the tables by a test.
pub fn rows() -> Vec<(&'static str, Validator)> {
    vec![(RUNS, RunDoc::validator())]
}

pub fn tables() -> Vec<TableDef> {
    vec![TableDef::new(RUNS)
        .field("sweep", v::string())
        .field("last_run_at", v::number())
        .index("by_sweep", &["sweep"])]
}

pub fn register(r: &mut Registry) {
    for expiring in &EXPIRING {
        r.internal_mutation(expiring.sweep, move |ctx, args| {
            sweep_expiring(ctx, args, expiring)
        });
    }
    r.internal_mutation(EMAILS, |ctx, args| {
        let limit = batch_limit(args.limit);
        let before = ctx.now_ms() - EMAIL_RETENTION_MS;
        let deleted = email::purge_finished(&mut ctx.db, before, limit)?;
        Ok(swept(deleted, limit))
    });
    r.internal_mutation(CLAIM, runner::claim);
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
