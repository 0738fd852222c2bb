//! The background runner: every `check_every` it tries to claim the sweeps that have not run for an
//! `interval`, and runs the ones it claimed. The claim is one serializable mutation over
//! `housekeeping_runs`, so with several nodes on one database only one of them wins each round.

use std::future::Future;
use std::time::Duration;

use functions::{FnResult, FunctionRef, MutationCtx, Runtime};
use futures::FutureExt;
use store::Patch;
use tokio::task::JoinHandle;
use values::{Object, Value};

use super::{
    run_mutation, sweeps, BatchArgs, ClaimArgs, Claimed, RunDoc, SweepBatch, CLAIM, DEFAULT_BATCH,
    RUNS,
};

/// How the runner paces itself.
#[derive(Clone, Debug)]
pub struct HousekeepingOptions {
    /// How long after a sweep ran (on any node) it is due again.
    pub interval: Duration,
    /// How often each node asks whether a round is due; a round starts at most this late, also
    /// when the node that ran the last one has gone.
    pub check_every: Duration,
    /// Rows deleted per transaction.
    pub batch: usize,
}

impl Default for HousekeepingOptions {
    fn default() -> HousekeepingOptions {
        HousekeepingOptions {
            interval: Duration::from_secs(3600),
            check_every: Duration::from_secs(300),
            batch: DEFAULT_BATCH,
        }
    }
}

/// What one sweep of a round deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Swept {
    pub sweep: String,
    pub deleted: usize,
}

/// `housekeeping:claimRound` (internal): marks every sweep not run within `intervalMs` as run now
/// and returns them as `{claimed: [path]}`. A concurrent claimer conflicts on the same rows and,
/// retried, finds them taken.
pub(super) fn claim(ctx: &mut MutationCtx<'_>, args: ClaimArgs) -> FnResult<Claimed> {
    let interval = args.interval_ms;
    let now = ctx.now_ms();
    let mut claimed = Vec::new();
    for sweep in sweeps() {
        let row = ctx
            .db
            .query(RUNS)?
            .with_index("by_sweep", |q| q.eq("sweep", sweep))?
            .first()?
            .map(|doc| functions::row::<RunDoc>(&doc))
            .transpose()?;
        match row {
            Some(row) if row.last_run_at > now - interval => continue,
            Some(row) => {
                let mut patch = Patch::new();
                patch.insert("last_run_at".into(), Some(Value::from(now)));
                ctx.db.patch(&row.id, patch)?;
            }
            None => {
                let mut fields = Object::new();
                fields.insert("sweep".into(), Value::from(sweep));
                fields.insert("last_run_at".into(), Value::from(now));
                ctx.db.insert(RUNS, fields)?;
            }
        }
        claimed.push(sweep.to_string());
    }
    Ok(Claimed { claimed })
}

/// Claims the sweeps that are due and runs each until it has nothing more to delete. Empty when
/// another node (or an earlier call) ran them within the interval.
pub async fn run_round(runtime: &Runtime, options: &HousekeepingOptions) -> FnResult<Vec<Swept>> {
    round(runtime, options, &mut || false).await
}

async fn round(
    runtime: &Runtime,
    options: &HousekeepingOptions,
    stop: &mut (dyn FnMut() -> bool + Send),
) -> FnResult<Vec<Swept>> {
    let args = ClaimArgs {
        interval_ms: options.interval.as_millis() as f64,
    };
    let claimed = run_mutation(runtime, CLAIM, &args).await?.claimed;
    // Every sweep takes `{limit?}` and answers a `SweepBatch`; a claimed path that is no sweep
    // of this build is left alone.
    let paths = sweeps()
        .into_iter()
        .filter(|path| claimed.iter().any(|c| c == path));
    let mut done = Vec::new();
    for path in paths {
        let sweep: FunctionRef<BatchArgs, SweepBatch> = FunctionRef::internal_mutation(path);
        let mut deleted = 0;
        // Checked between batches, never during one, so a shutdown does not cut a mutation off.
        while !stop() {
            let args = BatchArgs {
                limit: Some(options.batch as f64),
            };
            match run_mutation(runtime, sweep, &args).await {
                Ok(batch) => {
                    deleted += batch.deleted;
                    if !batch.more {
                        break;
                    }
                }
                // The rest waits for the next round; the other sweeps still run.
                Err(e) => {
                    tracing::warn!(sweep = path, error = %e, "housekeeping sweep failed; retrying next round");
                    break;
                }
            }
        }
        if deleted > 0 {
            tracing::info!(sweep = path, deleted, "housekeeping deleted expired rows");
        }
        done.push(Swept {
            sweep: path.to_string(),
            deleted,
        });
    }
    Ok(done)
}

/// Runs rounds until `shutdown` completes. Errors are logged and retried at the next check.
pub fn spawn(
    runtime: Runtime,
    options: HousekeepingOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let mut stopped = false;
            let result = round(&runtime, &options, &mut || {
                stopped = stopped || shutdown.as_mut().now_or_never().is_some();
                stopped
            })
            .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "claiming a housekeeping round failed; retrying later");
            }
            if stopped {
                return;
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(options.check_every) => {}
            }
        }
    })
}
