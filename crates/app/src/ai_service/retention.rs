//! Start-up and upkeep for the AI layer: the default prompts seeded into an empty database, and
//! request logs and daily usage older than `AI_LOG_RETENTION_DAYS` pruned in small batches by a
//! background task (through an internal mutation, like any other write).

use std::future::Future;
use std::time::Duration;

use functions::{
    Auth, Call, Caller, FnResult, FunctionKind, MutationCtx, Registry, RequestId, Runtime, Scope,
};
use store::Order;
use tokio::task::JoinHandle;
use values::validator::v;
use values::{Object, Value};

use super::logs::{day_of, LOGS, USAGE};
use crate::args::object;
use crate::prompts;

const PRUNE: &str = "aiService:pruneRequestLogs";
const DAY_MS: f64 = 86_400_000.0;
const DEFAULT_BATCH: f64 = 200.0;

/// The path of the pruning mutation (internal), for tests and tools that run it on demand.
pub fn prune_path() -> &'static str {
    PRUNE
}

pub fn register(r: &mut Registry, retention_days: u32) {
    r.internal_mutation(
        PRUNE,
        v::object([
            ("before", v::optional(v::number())),
            ("limit", v::optional(v::number())),
        ]),
        move |ctx, args| prune(ctx, args, retention_days),
    )
    .cross_tenant();
}

/// Deletes up to `limit` request-log rows (and then daily usage rows) older than `before` (default:
/// now minus the retention). `{deleted, more}`: call again while `more`.
fn prune(ctx: &mut MutationCtx<'_>, args: Object, retention_days: u32) -> FnResult {
    let before = args
        .get("before")
        .and_then(Value::as_f64)
        .unwrap_or_else(|| ctx.now_ms() - f64::from(retention_days) * DAY_MS);
    let limit = args
        .get("limit")
        .and_then(Value::as_f64)
        .unwrap_or(DEFAULT_BATCH)
        .clamp(1.0, 10_000.0) as usize;
    let grant = ctx.cross_tenant()?;
    let mut db = ctx.db.scoped(&Scope::all_companies(&grant));
    let logs = db
        .query(LOGS, "by_time", |q| q.lt("created_at", before))?
        .order(Order::Asc)
        .take(limit)?;
    for row in &logs {
        db.delete(&row.id)?;
    }
    let room = limit - logs.len();
    let usage = if room > 0 {
        db.query(USAGE, "by_day", |q| q.lt("day", day_of(before)))?
            .order(Order::Asc)
            .take(room)?
    } else {
        Vec::new()
    };
    for row in &usage {
        db.delete(&row.id)?;
    }
    let deleted = logs.len() + usage.len();
    Ok(object([
        ("deleted", Some(Value::from(deleted as f64))),
        ("more", Some(Value::from(deleted == limit))),
    ]))
}

/// How the background task runs.
#[derive(Clone, Debug)]
pub struct RetentionOptions {
    /// Time between pruning rounds.
    pub interval: Duration,
    /// Rows deleted per transaction (kept small so other writers are not held up).
    pub batch: usize,
}

impl Default for RetentionOptions {
    fn default() -> RetentionOptions {
        RetentionOptions {
            interval: Duration::from_secs(3600),
            batch: DEFAULT_BATCH as usize,
        }
    }
}

async fn run_mutation(runtime: &Runtime, path: &str, args: Object) -> FnResult<Value> {
    let call = Call {
        path: path.to_string(),
        expected: Some(FunctionKind::Mutation),
        args: Value::Object(args),
        auth: Auth::anonymous(),
        request_id: RequestId::generate(),
        caller: Caller::Server,
    };
    runtime.call(call).await.map(|outcome| outcome.value)
}

/// Seeds the default prompts into an empty database, then prunes old AI request logs every
/// `interval` until `shutdown` completes. Errors are logged and retried next round.
pub fn spawn_background(
    runtime: Runtime,
    options: RetentionOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        match run_mutation(&runtime, prompts::ENSURE_DEFAULTS, Object::new()).await {
            Ok(seeded) if seeded.as_f64().unwrap_or(0.0) > 0.0 => {
                let count = seeded.as_f64().unwrap_or(0.0);
                tracing::info!(count, "seeded the default AI prompts");
            }
            Ok(_) => {}
            // The AI service seeds on first use as well, so this is not fatal.
            Err(e) => tracing::warn!(error = %e, "seeding the default AI prompts failed"),
        }
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            loop {
                let mut args = Object::new();
                args.insert("limit".into(), Value::from(options.batch as f64));
                match run_mutation(&runtime, PRUNE, args).await {
                    Ok(done) => {
                        let deleted = done.get("deleted").and_then(Value::as_f64).unwrap_or(0.0);
                        if deleted > 0.0 {
                            tracing::info!(deleted, "pruned old AI request logs");
                        }
                        if done.get("more").and_then(Value::as_bool) != Some(true) {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "pruning AI request logs failed; retrying later");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(options.interval) => {}
            }
        }
    })
}
