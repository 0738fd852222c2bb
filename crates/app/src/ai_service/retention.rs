//! Start-up and upkeep for the AI layer: the default prompts seeded into an empty database, and
//! request logs and daily usage older than `AI_LOG_RETENTION_DAYS` pruned in small batches (an
//! internal mutation run hourly by its cron).

use functions::{FnResult, FunctionRef, MutationCtx, Registry, Runtime, Schedule, Scope};
use serde::{Deserialize, Serialize};
use store::Order;
use values::Typed;

use super::logs::{day_of, LOGS, USAGE};
use crate::housekeeping::{self, batch_limit, run_mutation, swept, SweepBatch};
use crate::prompts::{self, NoArgs};

pub const PRUNE: FunctionRef<PruneArgs, SweepBatch> =
    FunctionRef::internal_mutation("aiService:pruneRequestLogs");
const DAY_MS: f64 = 86_400_000.0;

#[derive(Serialize, Deserialize, Typed)]
pub struct PruneArgs {
    /// Milliseconds; default: now minus the retention.
    pub before: Option<f64>,
    pub limit: Option<f64>,
}

/// The path of the pruning mutation (internal), for tests and tools that run it on demand.
pub fn prune_path() -> &'static str {
    PRUNE.path()
}

pub fn register(r: &mut Registry, retention_days: u32) {
    r.internal_mutation(PRUNE, move |ctx, args| prune(ctx, args, retention_days))
        .cross_tenant();
    r.cron(
        "prune ai request logs",
        Schedule::every(housekeeping::INTERVAL),
        PRUNE,
        &PruneArgs {
            before: None,
            limit: None,
        },
    );
}

/// Deletes up to `limit` request-log rows (and then daily usage rows) older than `before` (default:
/// now minus the retention). `{deleted, more}`: call again while `more`.
fn prune(ctx: &mut MutationCtx<'_>, args: PruneArgs, retention_days: u32) -> FnResult<SweepBatch> {
    let before = args
        .before
        .unwrap_or_else(|| ctx.now_ms() - f64::from(retention_days) * DAY_MS);
    let limit = batch_limit(args.limit);
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
    Ok(swept(logs.len() + usage.len(), limit))
}

/// Seeds the default prompts into an empty database (what `serve` does at start). The AI service
/// seeds on first use as well, so a failure is only logged.
pub async fn seed_default_prompts(runtime: &Runtime) {
    match run_mutation(runtime, prompts::ENSURE_DEFAULTS, &NoArgs {}).await {
        Ok(count) if count > 0 => {
            tracing::info!(count, "seeded the default AI prompts");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "seeding the default AI prompts failed"),
    }
}
