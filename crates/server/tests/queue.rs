//! The job queue through the real server start path: a job runs once, a failing action job is
//! retried with backoff and goes dead after its attempts, retry of a dead job, cancel, idempotency
//! keys (also enqueued at once through two nodes), a failed mutation enqueues nothing, a job whose
//! node died is taken over after its lease (simulated, and by stopping a node mid-job then
//! restarting), retention, `/metrics` gauges, and (PostgreSQL) two nodes running
//! many mutation jobs, each exactly once. SQLite always; PostgreSQL too when TEST_DATABASE_URL is
//! set.

mod common;

use std::time::{Duration, Instant};

use common::{backends, Db, Place};
use functions::jobs::{self, JobOptions, JobState, TABLE};
use functions::scheduler::wall_ms;
use functions::{
    Auth, Call, Caller, ErrorCode, FnResult, FunctionError, FunctionRef, Registry, RequestId,
    Runtime,
};
use serde::{Deserialize, Serialize};
use store::{Schema, TableDef};
use values::validator::v;
use values::{DocumentId, Object, Typed, Value};

#[derive(Serialize, Deserialize, Typed)]
struct Key {
    key: String,
}

#[derive(Serialize, Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
struct Enqueue {
    key: String,
    idempotency_key: Option<String>,
    delay_ms: Option<f64>,
}

#[derive(Serialize, Deserialize, Typed)]
struct Many {
    prefix: String,
    n: f64,
}

#[derive(Serialize, Deserialize, Typed)]
struct NoArgs {}

const BUMP: FunctionRef<Key, ()> = FunctionRef::internal_mutation("q:bump");
const NOOP: FunctionRef<NoArgs, ()> = FunctionRef::internal_mutation("q:noop");
const BUMP_ACTION: FunctionRef<Key, ()> = FunctionRef::internal_action("q:bumpAction");
const SLOW_FIRST: FunctionRef<Key, ()> = FunctionRef::internal_action("q:slowFirst");
const COUNT: FunctionRef<Key, f64> = FunctionRef::query("q:count");
const FLAKY: FunctionRef<Key, ()> = FunctionRef::internal_action("q:flaky");

fn schema() -> Schema {
    Schema::new().table(
        TableDef::new("counters")
            .field("key", v::string())
            .field("count", v::number())
            .index("by_key", &["key"]),
    )
}

/// Adds one to the counter `key` (inside the caller's transaction).
fn bump(ctx: &mut functions::MutationCtx<'_>, key: &str) -> FnResult<()> {
    let key_owned = key.to_string();
    let existing = ctx
        .db
        .query("counters")?
        .with_index("by_key", move |q| q.eq("key", key_owned))?
        .first()?;
    match existing {
        Some(doc) => {
            let count = doc.get("count").and_then(Value::as_f64).unwrap_or(0.0);
            let patch =
                store::Patch::from([("count".to_string(), Some(Value::Float64(count + 1.0)))]);
            ctx.db.patch(&doc.id, patch)?;
        }
        None => {
            ctx.db.insert(
                "counters",
                Object::from([
                    ("key".to_string(), Value::String(key.to_string())),
                    ("count".to_string(), Value::Float64(1.0)),
                ]),
            )?;
        }
    }
    Ok(())
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.internal_mutation(BUMP, |ctx, args: Key| bump(ctx, &args.key));
    r.internal_action(BUMP_ACTION, |ctx, args: Key| async move {
        ctx.run_mutation(BUMP, &args).await
    });
    // Counts its starts; the first one hangs (its node is stopped meanwhile), a later one counts
    // `done-<key>`.
    r.internal_action(SLOW_FIRST, |ctx, args: Key| async move {
        let started = Key {
            key: format!("started-{}", args.key),
        };
        ctx.run_mutation(BUMP, &started).await?;
        if ctx.run_query(COUNT, &started).await? == 1.0 {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        let done = Key {
            key: format!("done-{}", args.key),
        };
        ctx.run_mutation(BUMP, &done).await
    });
    // Counts its attempts, then fails.
    r.internal_action(FLAKY, |ctx, args: Key| async move {
        ctx.run_mutation(BUMP, &args).await?;
        Err::<(), _>(FunctionError::user(ErrorCode::Conflict, "flaky failure"))
    });
    r.mutation("q:enqueue", |ctx, args: Enqueue| {
        let options = JobOptions {
            idempotency_key: args.idempotency_key,
            delay_ms: args.delay_ms.unwrap_or(0.0),
            ..JobOptions::default()
        };
        let id = ctx.jobs().enqueue(BUMP, &Key { key: args.key }, options)?;
        Ok(id.encode())
    });
    r.action("q:enqueueFromAction", |ctx, args: Key| async move {
        let options = JobOptions::default().key(format!("from-action-{}", args.key));
        let id = ctx.jobs().enqueue(BUMP, &args, options).await?;
        Ok(id.encode())
    });
    r.mutation("q:enqueueFlaky", |ctx, args: Key| {
        let options = JobOptions {
            max_attempts: 3,
            backoff_ms: 20.0,
            ..JobOptions::default()
        };
        let id = ctx.jobs().enqueue(FLAKY, &args, options)?;
        Ok(id.encode())
    });
    r.mutation("q:enqueueThenThrow", |ctx, args: Key| -> FnResult<()> {
        ctx.jobs().enqueue(BUMP, &args, JobOptions::default())?;
        bump(ctx, "written-then-rolled-back")?;
        Err(FunctionError::user(ErrorCode::Conflict, "changed my mind"))
    });
    r.mutation("q:enqueueMany", |ctx, args: Many| -> FnResult<()> {
        for i in 0..args.n as usize {
            let key = format!("{}-{i}", args.prefix);
            let options = JobOptions {
                priority: (i % 3) as f64,
                ..JobOptions::default()
            };
            ctx.jobs().enqueue(BUMP, &Key { key }, options)?;
        }
        Ok(())
    });
    r.internal_mutation(NOOP, |_ctx, _args: NoArgs| Ok(()));
    r.mutation("q:enqueueNoops", |ctx, args: Many| -> FnResult<()> {
        for _ in 0..args.n as usize {
            // Held back an hour; `release_all` makes them due at once.
            let options = JobOptions {
                delay_ms: 3_600_000.0,
                ..JobOptions::default()
            };
            ctx.jobs().enqueue(NOOP, &NoArgs {}, options)?;
        }
        Ok(())
    });
    r.query(COUNT, |ctx, args: Key| {
        let doc = ctx
            .db
            .query("counters")?
            .with_index("by_key", move |q| q.eq("key", args.key))?
            .first()?;
        Ok(doc
            .and_then(|d| d.get("count").and_then(Value::as_f64))
            .unwrap_or(0.0))
    });
    r.query_untyped("q:jobs", functions::no_args(), |ctx, _| {
        let rows = ctx.db.query(TABLE)?.collect()?;
        Ok(Value::Array(
            rows.into_iter().map(|d| d.into_value()).collect(),
        ))
    });
    r.query_untyped("q:counters", functions::no_args(), |ctx, _| {
        let rows = ctx.db.query("counters")?.collect()?;
        Ok(Value::Array(
            rows.into_iter().map(|d| d.into_value()).collect(),
        ))
    });
    r
}

struct Node {
    running: server::Running,
}

impl Node {
    async fn start(place: &Place) -> Node {
        let config = place.config(&[]);
        let store = server::open_store(&config, schema())
            .await
            .expect("open store");
        let running = server::start(config, store, registry(), std::future::pending())
            .await
            .expect("server starts");
        Node { running }
    }
    fn rt(&self) -> &Runtime {
        &self.running.runtime
    }
    async fn stop(self) {
        self.running.stop().await.expect("clean shutdown");
    }
}

fn obj(fields: &[(&str, Value)]) -> Value {
    Value::Object(
        fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

fn s(text: &str) -> Value {
    Value::String(text.to_string())
}

async fn call(rt: &Runtime, path: &str, args: Value) -> FnResult<Value> {
    rt.call(Call {
        path: path.to_string(),
        expected: None,
        args,
        auth: Auth::anonymous(),
        request_id: RequestId::generate(),
        caller: Caller::Server,
    })
    .await
    .map(|outcome| outcome.value)
}

async fn ok(rt: &Runtime, path: &str, args: Value) -> Value {
    call(rt, path, args)
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn count(rt: &Runtime, key: &str) -> f64 {
    ok(rt, "q:count", obj(&[("key", s(key))]))
        .await
        .as_f64()
        .unwrap()
}

fn id_of(value: &Value) -> DocumentId {
    DocumentId::decode(value.as_str().unwrap()).unwrap()
}

/// Polls `check` until it returns `Some`, or panics after 20 s.
async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the job is in `state`.
async fn wait_state(rt: &Runtime, id: &DocumentId, state: JobState) -> jobs::Job {
    wait_for(&format!("the job to be {}", state.as_str()), || async {
        let job = jobs::get(rt.store(), id).await.unwrap().unwrap();
        (job.state == state).then_some(job)
    })
    .await
}

#[tokio::test]
async fn a_job_runs_once() {
    for db in backends() {
        let place = Place::new(db).await;
        let node = Node::start(&place).await;
        let id = ok(node.rt(), "q:enqueue", obj(&[("key", s("a"))])).await;
        let id = id_of(&id);
        let job = wait_state(node.rt(), &id, JobState::Succeeded).await;
        assert_eq!(job.attempts, 1, "{db:?}: {job:?}");
        assert!(job.completed_at.is_some(), "{db:?}: {job:?}");
        assert_eq!(count(node.rt(), "a").await, 1.0, "{db:?}");
        // Nothing runs it again.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(count(node.rt(), "a").await, 1.0, "{db:?}");
        node.stop().await;
    }
}

#[tokio::test]
async fn an_action_enqueues_in_its_own_transaction() {
    for db in backends() {
        let place = Place::new(db).await;
        let node = Node::start(&place).await;
        let first = ok(node.rt(), "q:enqueueFromAction", obj(&[("key", s("x"))])).await;
        let second = ok(node.rt(), "q:enqueueFromAction", obj(&[("key", s("x"))])).await;
        assert_eq!(first, second, "{db:?}");
        wait_state(node.rt(), &id_of(&first), JobState::Succeeded).await;
        assert_eq!(count(node.rt(), "x").await, 1.0, "{db:?}");
        node.stop().await;
    }
}

#[tokio::test]
async fn a_failing_action_job_is_retried_then_dead_and_retry_runs_it_again() {
    for db in backends() {
        let place = Place::new(db).await;
        let node = Node::start(&place).await;
        let id = ok(node.rt(), "q:enqueueFlaky", obj(&[("key", s("f"))])).await;
        let id = id_of(&id);
        let job = wait_state(node.rt(), &id, JobState::Dead).await;
        assert_eq!(job.attempts, 3, "{db:?}: {job:?}");
        let error = job.last_error.clone().unwrap_or_default();
        assert!(error.contains("flaky failure"), "{db:?}: {job:?}");
        // Each attempt ran once; the retries came after their backoff.
        assert_eq!(count(node.rt(), "f").await, 3.0, "{db:?}");
        let started = job.started_at.unwrap();
        assert!(started >= job.created_at + 20.0 * 0.5, "{db:?}: {job:?}");

        assert!(jobs::retry(node.rt().store(), &id).await.unwrap());
        // Dead again after three more attempts, each of which ran.
        let job = wait_state(node.rt(), &id, JobState::Dead).await;
        assert_eq!(job.attempts, 3, "{db:?}: {job:?}");
        assert_eq!(count(node.rt(), "f").await, 6.0, "{db:?}");
        let dead = jobs::list(node.rt().store(), JobState::Dead, 10)
            .await
            .unwrap();
        assert_eq!(dead.len(), 1, "{db:?}: {dead:?}");
        assert_eq!(dead[0].id, id, "{db:?}");
        node.stop().await;
    }
}

#[tokio::test]
async fn cancel_before_it_runs() {
    for db in backends() {
        let place = Place::new(db).await;
        let node = Node::start(&place).await;
        let id = ok(
            node.rt(),
            "q:enqueue",
            obj(&[("key", s("c")), ("delayMs", Value::Float64(300.0))]),
        )
        .await;
        let id = id_of(&id);
        assert!(jobs::cancel(node.rt().store(), &id).await.unwrap());
        // Canceling twice, or retrying a canceled job, does nothing.
        assert!(!jobs::cancel(node.rt().store(), &id).await.unwrap());
        assert!(!jobs::retry(node.rt().store(), &id).await.unwrap());
        tokio::time::sleep(Duration::from_millis(500)).await;
        let job = jobs::get(node.rt().store(), &id).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Canceled, "{db:?}: {job:?}");
        assert_eq!(job.attempts, 0, "{db:?}: {job:?}");
        assert_eq!(count(node.rt(), "c").await, 0.0, "{db:?}");
        node.stop().await;
    }
}

#[tokio::test]
async fn an_idempotency_key_enqueues_once() {
    for db in backends() {
        let place = Place::new(db).await;
        let node = Node::start(&place).await;
        let args = obj(&[("key", s("i")), ("idempotencyKey", s("once"))]);
        let first = ok(node.rt(), "q:enqueue", args.clone()).await;
        let job = wait_state(node.rt(), &id_of(&first), JobState::Succeeded).await;
        // Also after the first one finished.
        let second = ok(node.rt(), "q:enqueue", args).await;
        assert_eq!(first, second, "{db:?}");
        let rows = ok(node.rt(), "q:jobs", obj(&[])).await;
        assert_eq!(rows.as_array().unwrap().len(), 1, "{db:?}: {rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(count(node.rt(), "i").await, 1.0, "{db:?}: {job:?}");
        node.stop().await;
    }
}

#[tokio::test]
async fn a_mutation_that_fails_enqueues_nothing() {
    for db in backends() {
        let place = Place::new(db).await;
        let node = Node::start(&place).await;
        let error = call(node.rt(), "q:enqueueThenThrow", obj(&[("key", s("b"))]))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("changed my mind"), "{error}");
        let rows = ok(node.rt(), "q:jobs", obj(&[])).await;
        assert_eq!(rows, Value::Array(vec![]), "{db:?}");
        let counters = ok(node.rt(), "q:counters", obj(&[])).await;
        assert_eq!(counters, Value::Array(vec![]), "{db:?}");
        node.stop().await;
    }
}

/// An action job's row as a worker that claimed it and then died leaves it: `running`, leased to a
/// node that is gone, until `lease_until`.
async fn insert_abandoned(rt: &Runtime, key: &str, attempts: f64, lease_until: f64) -> DocumentId {
    let key = key.to_string();
    let (id, _, _) = rt
        .store()
        .mutate(move |txn| {
            txn.insert(
                TABLE,
                Object::from([
                    ("name".to_string(), s(BUMP_ACTION.path())),
                    ("kind".to_string(), s("action")),
                    ("args".to_string(), obj(&[("key", s(&key))])),
                    ("state".to_string(), s("running")),
                    ("priority".to_string(), Value::Float64(0.0)),
                    ("attempts".to_string(), Value::Float64(attempts)),
                    ("max_attempts".to_string(), Value::Float64(3.0)),
                    ("backoff_ms".to_string(), Value::Float64(10.0)),
                    ("run_at".to_string(), Value::Float64(lease_until)),
                    ("lease_owner".to_string(), s("a-node-that-died")),
                    ("started_at".to_string(), Value::Float64(wall_ms())),
                ]),
            )
        })
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn a_job_whose_node_died_runs_after_its_lease() {
    for db in backends() {
        let place = Place::new(db).await;
        let node = Node::start(&place).await;
        let lease_until = wall_ms() + 300.0;
        let id = insert_abandoned(node.rt(), "l", 1.0, lease_until).await;
        let job = wait_state(node.rt(), &id, JobState::Succeeded).await;
        assert_eq!(job.attempts, 2, "{db:?}: {job:?}");
        assert!(job.started_at.unwrap() >= lease_until, "{db:?}: {job:?}");
        assert_eq!(count(node.rt(), "l").await, 1.0, "{db:?}");
        // Its last attempt's lease expired: dead, not run again.
        let last = insert_abandoned(node.rt(), "m", 3.0, wall_ms()).await;
        let job = wait_state(node.rt(), &last, JobState::Dead).await;
        let error = job.last_error.clone().unwrap_or_default();
        assert!(error.contains("lease expired"), "{db:?}: {job:?}");
        assert_eq!(count(node.rt(), "m").await, 0.0, "{db:?}");
        node.stop().await;
    }
}

/// Two nodes on one PostgreSQL database: each of many mutation jobs runs exactly once.
#[tokio::test]
async fn two_nodes_run_each_job_exactly_once() {
    if !backends().contains(&Db::Postgres) {
        return;
    }
    let place = Place::new(Db::Postgres).await;
    let (a, b) = (Node::start(&place).await, Node::start(&place).await);
    let (batches, per_batch) = (4, 100);
    for batch in 0..batches {
        let node = if batch % 2 == 0 { &a } else { &b };
        ok(
            node.rt(),
            "q:enqueueMany",
            obj(&[
                ("prefix", s(&format!("k{batch}"))),
                ("n", Value::Float64(per_batch as f64)),
            ]),
        )
        .await;
    }
    // The same idempotency key enqueued at once through both nodes: one job.
    let enqueues = (0..10).map(|i| {
        let node = if i % 2 == 0 { &a } else { &b };
        ok(
            node.rt(),
            "q:enqueue",
            obj(&[("key", s("shared")), ("idempotencyKey", s("shared-key"))]),
        )
    });
    let ids = futures::future::join_all(enqueues).await;
    assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
    let total = batches * per_batch + 1;
    wait_for("every job to succeed", || async {
        let done = jobs::list(a.rt().store(), JobState::Succeeded, total + 1)
            .await
            .unwrap();
        (done.len() == total).then_some(())
    })
    .await;
    let counters = ok(b.rt(), "q:counters", obj(&[])).await;
    let counters = counters.as_array().unwrap();
    assert_eq!(counters.len(), total);
    for counter in counters {
        let count = counter.as_object().and_then(|o| o.get("count"));
        assert_eq!(count, Some(&Value::Float64(1.0)), "{counter:?}");
    }
    a.stop().await;
    b.stop().await;
}

/// `/metrics` shows the queue's depth and the oldest due job's wait.
#[tokio::test]
async fn metrics_show_the_queue() {
    let place = Place::new(Db::Sqlite).await;
    let node = Node::start(&place).await;
    ok(
        node.rt(),
        "q:enqueue",
        obj(&[
            ("key", s("later")),
            ("delayMs", Value::Float64(3_600_000.0)),
        ]),
    )
    .await;
    let url = format!("http://{}/metrics", node.running.addr);
    let body = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert!(body.contains("supportsignal_jobs_pending 1\n"), "{body}");
    assert!(body.contains("supportsignal_jobs_running 0\n"), "{body}");
    assert!(body.contains("supportsignal_jobs_dead 0\n"), "{body}");
    // Not due yet: it has not waited.
    assert!(
        body.contains("supportsignal_jobs_oldest_pending_age_seconds 0\n"),
        "{body}"
    );
    node.stop().await;
}

/// Makes every pending job due now, in one transaction (its commit wakes the workers).
async fn release_all(rt: &Runtime) {
    rt.store()
        .mutate(|txn| {
            let now = txn.now_ms();
            for doc in txn.query(TABLE)?.collect()? {
                let patch = store::Patch::from([("run_at".to_string(), Some(Value::Float64(now)))]);
                txn.patch(&doc.id, patch)?;
            }
            Ok::<_, store::StoreError>(())
        })
        .await
        .unwrap();
}

/// Throughput of no-op mutation jobs (a figure, not a check): `cargo test -p server --test queue
/// -- --ignored --nocapture`.
#[tokio::test]
#[ignore]
async fn throughput_of_noop_mutation_jobs() {
    for db in backends() {
        let place = Place::new(db).await;
        let node = Node::start(&place).await;
        let (batches, per_batch) = (10, 500);
        let started = Instant::now();
        for _ in 0..batches {
            ok(
                node.rt(),
                "q:enqueueNoops",
                obj(&[("prefix", s("")), ("n", Value::Float64(per_batch as f64))]),
            )
            .await;
        }
        let enqueued = started.elapsed();
        release_all(node.rt()).await;
        let started = Instant::now();
        let total = (batches * per_batch) as u64;
        wait_for("every job to succeed", || async {
            let stats = jobs::stats(node.rt().store()).await.unwrap();
            (stats.pending == 0 && stats.running == 0).then_some(())
        })
        .await;
        let elapsed = started.elapsed();
        let done = jobs::list(node.rt().store(), JobState::Succeeded, total as usize + 1)
            .await
            .unwrap();
        assert_eq!(done.len() as u64, total);
        eprintln!(
            "{db:?}: {total} jobs enqueued in {enqueued:?}, then, made due at once, run in {elapsed:?}: {:.0} jobs/s",
            total as f64 / elapsed.as_secs_f64()
        );
        node.stop().await;
    }
}

/// Succeeded jobs past retention are pruned; pending ones stay.
#[tokio::test]
async fn finished_jobs_are_pruned_after_retention() {
    for db in backends() {
        let place = Place::new(db).await;
        let node = Node::start(&place).await;
        let done = ok(node.rt(), "q:enqueue", obj(&[("key", s("p"))])).await;
        wait_state(node.rt(), &id_of(&done), JobState::Succeeded).await;
        let later = ok(
            node.rt(),
            "q:enqueue",
            obj(&[("key", s("q")), ("delayMs", Value::Float64(3_600_000.0))]),
        )
        .await;
        // A second worker with no retention prunes at once.
        let pruner = background::Queue::start(
            node.rt().clone(),
            background::QueueOptions {
                retention: Duration::ZERO,
                ..Default::default()
            },
        );
        let rows = wait_for("the succeeded job to be pruned", || async {
            let rows = ok(node.rt(), "q:jobs", obj(&[])).await;
            let rows = rows.as_array().unwrap().to_vec();
            (rows.len() == 1).then_some(rows)
        })
        .await;
        let row = rows[0].as_object().unwrap();
        assert_eq!(row.get("_id"), Some(&later), "{db:?}");
        assert_eq!(row.get("state"), Some(&s("pending")), "{db:?}");
        pruner.stop().await;
        node.stop().await;
    }
}

/// A node stops in the middle of an action job (its run cut off, its lease left behind); after a
/// restart, the job runs again once the lease has expired, and completes.
#[tokio::test]
async fn a_job_cut_off_by_a_stop_completes_after_restart_and_lease() {
    for db in backends() {
        let place = Place::new(db).await;
        let config = place.config(&[]);
        // The first "node": a bare worker with a short lease that drops its runs when stopped.
        let store = server::open_store(&config, schema()).await.unwrap();
        let rt = Runtime::new(registry(), store.clone(), config.function_timeout);
        let worker = background::Queue::start(
            rt.clone(),
            background::QueueOptions {
                lease: Some(Duration::from_millis(500)),
                drain: Duration::ZERO,
                ..Default::default()
            },
        );
        let id = jobs::enqueue(
            &rt,
            SLOW_FIRST.path(),
            obj(&[("key", s("k"))]),
            JobOptions::default(),
        )
        .await
        .unwrap();
        wait_for("the first run to start", || async {
            (count(&rt, "started-k").await == 1.0).then_some(())
        })
        .await;
        worker.stop().await;
        let job = jobs::get(rt.store(), &id).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Running, "{db:?}: {job:?}");
        let lease_until = job.run_at;
        store.close().await.unwrap();
        drop(rt);

        let node = Node::start(&place).await;
        let job = wait_state(node.rt(), &id, JobState::Succeeded).await;
        assert_eq!(job.attempts, 2, "{db:?}: {job:?}");
        assert!(job.started_at.unwrap() >= lease_until, "{db:?}: {job:?}");
        assert_eq!(count(node.rt(), "started-k").await, 2.0, "{db:?}");
        assert_eq!(count(node.rt(), "done-k").await, 1.0, "{db:?}");
        node.stop().await;
    }
}

/// Throughput of no-op mutation jobs with two nodes on one PostgreSQL database (a figure).
#[tokio::test]
#[ignore]
async fn throughput_of_noop_mutation_jobs_two_nodes() {
    if !backends().contains(&Db::Postgres) {
        return;
    }
    let place = Place::new(Db::Postgres).await;
    let (a, b) = (Node::start(&place).await, Node::start(&place).await);
    let (batches, per_batch) = (10, 500);
    let started = Instant::now();
    for i in 0..batches {
        let node = if i % 2 == 0 { &a } else { &b };
        ok(
            node.rt(),
            "q:enqueueNoops",
            obj(&[("prefix", s("")), ("n", Value::Float64(per_batch as f64))]),
        )
        .await;
    }
    let enqueued = started.elapsed();
    release_all(a.rt()).await;
    let started = Instant::now();
    let total = batches * per_batch;
    wait_for("every job to succeed", || async {
        let stats = jobs::stats(a.rt().store()).await.unwrap();
        (stats.pending == 0 && stats.running == 0).then_some(())
    })
    .await;
    let elapsed = started.elapsed();
    eprintln!(
        "two nodes: {total} jobs enqueued in {enqueued:?}, then, made due at once, run in {elapsed:?}: {:.0} jobs/s",
        total as f64 / elapsed.as_secs_f64()
    );
    a.stop().await;
    b.stop().await;
}

/// PostgreSQL: a job enqueued by another process (here a bare store with no worker) wakes a
/// node's worker through the commit feed, well before its 30 s fallback poll.
#[tokio::test]
async fn a_worker_wakes_on_another_nodes_enqueue() {
    if !backends().contains(&Db::Postgres) {
        return;
    }
    let place = Place::new(Db::Postgres).await;
    let node = Node::start(&place).await;
    // Let the worker make its first scan and go to sleep.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let config = place.config(&[]);
    let store = server::open_store(&config, schema()).await.unwrap();
    let other = Runtime::new(registry(), store.clone(), config.function_timeout);
    let id = jobs::enqueue(
        &other,
        BUMP.path(),
        obj(&[("key", s("w"))]),
        JobOptions::default(),
    )
    .await
    .unwrap();
    // `wait_for` gives up after 20 s, before the fallback poll.
    wait_state(node.rt(), &id, JobState::Succeeded).await;
    assert_eq!(count(node.rt(), "w").await, 1.0);
    store.close().await.unwrap();
    node.stop().await;
}

/// CPU time of this process over 10 s with an idle node (a figure; no busy polling).
#[tokio::test]
#[ignore]
async fn idle_cpu() {
    fn cpu_ticks() -> u64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after.split(' ').collect();
        // utime and stime, fields 14 and 15 of the whole line.
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }
    for db in backends() {
        let place = Place::new(db).await;
        let node = Node::start(&place).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = cpu_ticks();
        tokio::time::sleep(Duration::from_secs(10)).await;
        let used = cpu_ticks() - before;
        // Ticks of 10 ms (USER_HZ 100 on Linux).
        eprintln!("{db:?}: idle node used {} ms of CPU in 10 s", used * 10);
        node.stop().await;
    }
}
