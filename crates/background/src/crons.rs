//! Runs the crons declared with `Registry::cron`, on every node; each tick runs once across nodes.
//!
//! A cron's state is one row of `cron_jobs` (by name). A tick is claimed in one serializable
//! transaction that reads the row and moves `next_run` past now: two nodes that claim the same tick
//! meet in a serialization conflict, and the retry finds it taken. Because `next_run` is computed
//! from the claim's time, ticks missed while no node ran (downtime) collapse into one run at start.
//! The claim also sets `running_since`; a tick that comes while it is set is skipped (counted in
//! `skipped`), so runs of one cron never overlap. A run whose node died is taken over once
//! `running_since` is older than `stale_after`. `last_run`, `last_finished`, `last_error`, `runs`
//! and `next_run` are what operators read.
//!
//! The runner sleeps until the earliest `next_run` it read (or `check_every`); it never polls in a
//! tight loop. The function runs as the server (`Caller::Server`, no user), as scheduled functions do.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use functions::activity::Work;
use functions::crons::{CronSpec, INDEX_BY_NAME, TABLE};
use functions::scheduler::wall_ms;
use functions::{Auth, Call, Caller, FnResult, FunctionError, FunctionKind, RequestId, Runtime};
use store::{Document, Patch, Store, StoreError, Txn};
use tokio::sync::watch;
use tokio::task::JoinSet;
use values::{Object, Value};

#[derive(Clone, Debug)]
pub struct CronOptions {
    /// The longest sleep between looks at the crons' rows (a tick moved by another node, or a new
    /// cron, is seen at most this late).
    pub check_every: Duration,
    /// A run still marked running after this long is taken as dead (its node stopped) and the
    /// next tick runs.
    pub stale_after: Duration,
    /// Batches of a `{more: true}` sweep run in one go, at most.
    pub max_batches: usize,
    /// On stop, how long runs in progress are waited for.
    pub drain: Duration,
}

impl Default for CronOptions {
    fn default() -> Self {
        CronOptions {
            check_every: Duration::from_secs(60),
            stale_after: Duration::from_secs(3600),
            max_batches: 10_000,
            drain: Duration::from_secs(10),
        }
    }
}

/// One cron run: the answer of each call (one, or one per batch of a sweep), or the error.
#[derive(Clone, Debug)]
pub struct CronRun {
    pub name: String,
    pub function: String,
    pub results: Vec<Value>,
    pub error: Option<String>,
}

/// What a claim found.
enum Claim {
    /// The tick is ours: run it. `started` is what `running_since` holds; `due` the tick's time;
    /// `next` the next tick.
    Run {
        started: f64,
        due: f64,
        next: Option<f64>,
    },
    /// Not due (next tick, if any).
    Wait(Option<f64>),
}

/// The running cron runner of one node.
pub struct CronRunner {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl CronRunner {
    /// Starts running `runtime`'s crons. A store without `cron_jobs` (not opened through
    /// `server::open_store`), or a registry without crons, has nothing to run.
    pub fn start(runtime: Runtime, options: CronOptions) -> CronRunner {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(runtime, options, stopped));
        CronRunner { stop, task }
    }

    /// Stops claiming ticks and waits (up to `drain`) for runs in progress.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn run(runtime: Runtime, options: CronOptions, mut stop: watch::Receiver<bool>) {
    let crons: Vec<Arc<CronSpec>> = runtime
        .registry()
        .crons()
        .iter()
        .cloned()
        .map(Arc::new)
        .collect();
    if crons.is_empty() || runtime.store().table_number(TABLE).is_none() {
        let _ = stop.wait_for(|stopped| *stopped).await;
        return;
    }
    let mut running: JoinSet<()> = JoinSet::new();
    loop {
        let now = wall_ms();
        let mut wake_ms = now + options.check_every.as_secs_f64() * 1000.0;
        for spec in &crons {
            match claim(runtime.store(), spec, now, &options).await {
                Ok(Claim::Run { started, due, next }) => {
                    runtime.activity().started(Work::Cron, started - due);
                    // Awake at the next tick even while this run goes on (it is skipped then).
                    if let Some(next) = next {
                        wake_ms = wake_ms.min(next);
                    }
                    let (runtime, spec, options, stop) =
                        (runtime.clone(), spec.clone(), options.clone(), stop.clone());
                    running.spawn(async move {
                        execute(&runtime, &spec, started, &options, &stop).await;
                    });
                }
                Ok(Claim::Wait(Some(next))) => wake_ms = wake_ms.min(next),
                Ok(Claim::Wait(None)) => {}
                Err(error) => {
                    tracing::warn!(cron = %spec.name, %error, "cron: claiming a tick failed");
                    wake_ms = wake_ms.min(now + 1000.0);
                }
            }
        }
        let wait = Duration::from_secs_f64(((wake_ms - wall_ms()).max(0.0) / 1000.0).max(0.005));
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep(wait) => {}
            // Reap finished runs as they end (their rows are already updated).
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
    }
    let _ = tokio::time::timeout(options.drain, async {
        while running.join_next().await.is_some() {}
    })
    .await;
}

/// Claims the due tick of every cron of `runtime` at `now_ms` and runs the claimed ones to the
/// end, in order: what the runner does in one round, for tests and tools that want it now.
pub async fn run_due(
    runtime: &Runtime,
    now_ms: f64,
    options: &CronOptions,
) -> FnResult<Vec<CronRun>> {
    let (_never, stop) = watch::channel(false);
    let mut runs = Vec::new();
    for spec in runtime.registry().crons() {
        if let Claim::Run { started, due, .. } =
            claim(runtime.store(), spec, now_ms, options).await?
        {
            runtime.activity().started(Work::Cron, started - due);
            runs.push(execute(runtime, spec, started, options, &stop).await);
        }
    }
    Ok(runs)
}

fn row_of(txn: &mut Txn, name: &str) -> store::Result<Option<Document>> {
    let name = name.to_string();
    txn.query(TABLE)?
        .with_index(INDEX_BY_NAME, move |q| q.eq("name", name))?
        .first()
}

fn number(doc: &Document, field: &str) -> Option<f64> {
    doc.get(field).and_then(Value::as_f64)
}

async fn claim(store: &Store, spec: &CronSpec, now: f64, options: &CronOptions) -> FnResult<Claim> {
    // A look first: a tick not due writes nothing (an empty write still commits and wakes every
    // node's commit feed).
    let name = spec.name.clone();
    let (row, _, _) = store
        .query(move |txn| row_of(txn, &name).map_err(FunctionError::from))
        .await?;
    if let Some(doc) = &row {
        match number(doc, "next_run") {
            Some(next) if next > now => return Ok(Claim::Wait(Some(next))),
            None => return Ok(Claim::Wait(None)),
            Some(_) => {}
        }
    }
    let spec = spec.clone();
    let stale_ms = options.stale_after.as_secs_f64() * 1000.0;
    let (claim, _, _) = store
        .mutate(move |txn| {
            let Some(doc) = row_of(txn, &spec.name)? else {
                let next_run = spec.schedule.first(now);
                let mut row = Object::from([
                    ("name".to_string(), Value::String(spec.name.clone())),
                    (
                        "schedule".to_string(),
                        Value::String(spec.schedule.describe()),
                    ),
                    ("function".to_string(), Value::String(spec.function.clone())),
                    ("runs".to_string(), Value::Float64(0.0)),
                    ("skipped".to_string(), Value::Float64(0.0)),
                ]);
                match next_run {
                    Some(due) if due <= now => {
                        let next = spec.schedule.next_after(now);
                        if let Some(next) = next {
                            row.insert("next_run".into(), Value::Float64(next));
                        }
                        row.insert("running_since".into(), Value::Float64(now));
                        row.insert("last_run".into(), Value::Float64(now));
                        row.insert("runs".into(), Value::Float64(1.0));
                        txn.insert(TABLE, row)?;
                        return Ok::<_, FunctionError>(Claim::Run {
                            started: now,
                            due,
                            next,
                        });
                    }
                    Some(next) => {
                        row.insert("next_run".into(), Value::Float64(next));
                        txn.insert(TABLE, row)?;
                    }
                    None => {
                        txn.insert(TABLE, row)?;
                    }
                }
                return Ok(Claim::Wait(next_run));
            };
            let due = match number(&doc, "next_run") {
                Some(due) if due <= now => due,
                other => return Ok(Claim::Wait(other)),
            };
            let next = spec.schedule.next_after(now);
            let mut patch = Patch::from([
                ("next_run".to_string(), opt(next)),
                (
                    "schedule".to_string(),
                    Some(Value::String(spec.schedule.describe())),
                ),
                (
                    "function".to_string(),
                    Some(Value::String(spec.function.clone())),
                ),
            ]);
            let busy = number(&doc, "running_since").is_some_and(|since| since > now - stale_ms);
            if busy {
                // The run of an earlier tick is still going: this tick is skipped, not queued.
                let skipped = number(&doc, "skipped").unwrap_or(0.0) + 1.0;
                patch.insert("skipped".into(), Some(Value::Float64(skipped)));
                txn.patch(&doc.id, patch)?;
                return Ok(Claim::Wait(next));
            }
            let runs = number(&doc, "runs").unwrap_or(0.0) + 1.0;
            patch.insert("runs".into(), Some(Value::Float64(runs)));
            patch.insert("running_since".into(), Some(Value::Float64(now)));
            patch.insert("last_run".into(), Some(Value::Float64(now)));
            txn.patch(&doc.id, patch)?;
            Ok(Claim::Run {
                started: now,
                due,
                next,
            })
        })
        .await?;
    Ok(claim)
}

fn opt(n: Option<f64>) -> Option<Value> {
    n.map(Value::Float64)
}

/// Runs a claimed tick and records how it ended.
async fn execute(
    runtime: &Runtime,
    spec: &CronSpec,
    started: f64,
    options: &CronOptions,
    stop: &watch::Receiver<bool>,
) -> CronRun {
    let mut results = Vec::new();
    let outcome = call_all(runtime, spec, options, stop, &mut results).await;
    runtime.activity().finished(Work::Cron, outcome.is_err());
    let error = outcome.err().map(|e| e.to_string());
    match &error {
        Some(error) => tracing::warn!(cron = %spec.name, %error, "cron run failed"),
        None => tracing::debug!(cron = %spec.name, "cron ran"),
    }
    // Until this is recorded the row reads as running and the next ticks are skipped (for at most
    // `stale_after`), so a failing database is retried a little.
    let mut wait = Duration::from_millis(100);
    for attempt in 1..=5 {
        match finish(runtime.store(), spec, started, error.clone()).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(cron = %spec.name, error = %e, attempt, "cron: recording a run failed");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
    }
    CronRun {
        name: spec.name.clone(),
        function: spec.function.clone(),
        results,
        error,
    }
}

async fn call_all(
    runtime: &Runtime,
    spec: &CronSpec,
    options: &CronOptions,
    stop: &watch::Receiver<bool>,
    results: &mut Vec<Value>,
) -> FnResult<()> {
    let kind = spec.kind;
    for _ in 0..options.max_batches.max(1) {
        let call = Call {
            path: spec.function.clone(),
            expected: Some(kind),
            args: spec.args.clone(),
            auth: Auth::anonymous(),
            request_id: RequestId::generate(),
            caller: Caller::Server,
        };
        let value = runtime.call(call).await?.value;
        let more = kind == FunctionKind::Mutation
            && matches!(&value, Value::Object(o) if o.get("more") == Some(&Value::Boolean(true)));
        results.push(value);
        // Checked between batches, never during one, so a shutdown does not cut a mutation off.
        if !more || *stop.borrow() {
            break;
        }
    }
    Ok(())
}

async fn finish(
    store: &Store,
    spec: &CronSpec,
    started: f64,
    error: Option<String>,
) -> FnResult<()> {
    let name = spec.name.clone();
    store
        .mutate(move |txn| {
            let Some(doc) = row_of(txn, &name)? else {
                return Ok::<_, FunctionError>(());
            };
            // A run taken over as stale by another node is that node's to record.
            if number(&doc, "running_since") != Some(started) {
                return Ok(());
            }
            let patch = Patch::from([
                ("running_since".to_string(), None),
                ("last_finished".to_string(), Some(Value::Float64(wall_ms()))),
                ("last_error".to_string(), error.clone().map(Value::String)),
            ]);
            txn.patch(&doc.id, patch)?;
            Ok(())
        })
        .await?;
    Ok(())
}

/// The rows of `cron_jobs`, by name, for operators and tests.
pub async fn states(store: &Store) -> FnResult<HashMap<String, Document>> {
    let (rows, _, _) = store
        .query(|txn| txn.query(TABLE)?.collect().map_err(StoreError::into))
        .await
        .map_err(|e: FunctionError| e)?;
    Ok(rows
        .into_iter()
        .filter_map(|doc| {
            let name = doc.get("name").and_then(Value::as_str)?.to_string();
            Some((name, doc))
        })
        .collect())
}
