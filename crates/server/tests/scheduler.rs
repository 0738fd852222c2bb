//! The durable scheduler through the real server start path: `run_after` runs once after its delay,
//! a failed mutation schedules nothing, `cancel`, failing actions, a scheduled mutation's writes and
//! its state committing together, argument validation, and (PostgreSQL) two nodes running many
//! schedules, each exactly once. SQLite always; PostgreSQL too when TEST_DATABASE_URL is set.

mod common;

use std::time::{Duration, Instant};

use common::{backends, Db, Place};
use functions::scheduler::{wall_ms, TABLE};
use functions::{
    Auth, Call, Caller, ErrorCode, FnResult, FunctionError, FunctionRef, Registry, RequestId,
    Runtime,
};
use serde::{Deserialize, Serialize};
use store::{Schema, TableDef};
use values::validator::v;
use values::{Object, Typed, Value};

#[derive(Serialize, Deserialize, Typed)]
struct Key {
    key: String,
}

#[derive(Serialize, Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
struct Delayed {
    key: String,
    delay_ms: f64,
}

#[derive(Serialize, Deserialize, Typed)]
struct IdArg {
    id: String,
}

#[derive(Serialize, Deserialize, Typed)]
struct Many {
    prefix: String,
    n: f64,
}

#[derive(Serialize, Deserialize, Typed)]
struct Message {
    message: String,
}

#[derive(Serialize, Deserialize, Typed)]
struct NoArgs {}

const BUMP: FunctionRef<Key, ()> = FunctionRef::internal_mutation("sched:bump");
const BUMP_FAIL_AFTER_COMMIT: FunctionRef<Key, ()> =
    FunctionRef::internal_mutation("sched:bumpThenFailAfterCommit");
const THROW: FunctionRef<Message, ()> = FunctionRef::internal_action("sched:throw");
const SCHEDULE: FunctionRef<Delayed, String> = FunctionRef::mutation("sched:schedule");

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
    r.internal_mutation(BUMP_FAIL_AFTER_COMMIT, |ctx, args: Key| {
        bump(ctx, &args.key)?;
        ctx.fail_after_commit_typed(FunctionError::user(ErrorCode::Conflict, "after commit"))
    });
    r.internal_action(THROW, |_ctx, args: Message| async move {
        Err::<(), _>(FunctionError::user(ErrorCode::Validation, args.message))
    });
    r.mutation(SCHEDULE, |ctx, args: Delayed| {
        let id = ctx
            .scheduler()
            .run_after(args.delay_ms, BUMP, &Key { key: args.key })?;
        Ok(id.encode())
    });
    r.mutation("sched:scheduleFailAfterCommit", |ctx, args: Key| {
        let id = ctx
            .scheduler()
            .run_after(0.0, BUMP_FAIL_AFTER_COMMIT, &args)?;
        Ok(id.encode())
    });
    r.mutation(
        "sched:scheduleThenThrow",
        |ctx, args: Key| -> FnResult<()> {
            ctx.scheduler().run_after(0.0, BUMP, &args)?;
            bump(ctx, "written-then-rolled-back")?;
            Err(FunctionError::user(ErrorCode::Conflict, "changed my mind"))
        },
    );
    r.mutation(
        "sched:scheduleBadArgs",
        |ctx, _args: NoArgs| -> FnResult<()> {
            let args = Value::Object(Object::from([("key".to_string(), Value::Float64(1.0))]));
            ctx.scheduler().run_at_untyped(0.0, BUMP.path(), args)?;
            Ok(())
        },
    );
    r.mutation("sched:scheduleMany", |ctx, args: Many| -> FnResult<()> {
        for i in 0..args.n as usize {
            let key = format!("{}-{i}", args.prefix);
            // Spread over a few due times, some already due.
            ctx.scheduler()
                .run_after((i % 5) as f64 * 10.0, BUMP, &Key { key })?;
        }
        Ok(())
    });
    r.mutation("sched:cancel", |ctx, args: IdArg| -> FnResult<()> {
        let id = ctx
            .db
            .normalize_id(TABLE, &args.id)
            .ok_or_else(|| FunctionError::user(ErrorCode::NotFound, "no such schedule"))?;
        ctx.scheduler().cancel(&id)
    });
    r.action(
        "sched:scheduleThrowFromAction",
        |ctx, args: Message| async move {
            let id = ctx.scheduler().run_after(0.0, THROW, &args).await?;
            Ok(id.encode())
        },
    );
    r.query_untyped(
        "sched:count",
        v::object([("key", v::string())]),
        |ctx, args| {
            let key = args
                .get("key")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let doc = ctx
                .db
                .query("counters")?
                .with_index("by_key", move |q| q.eq("key", key))?
                .first()?;
            Ok(Value::Float64(
                doc.and_then(|d| d.get("count").and_then(Value::as_f64))
                    .unwrap_or(0.0),
            ))
        },
    );
    // One snapshot: the schedule's row and the counter it bumps.
    r.query_untyped(
        "sched:get",
        v::object([
            ("id", v::string().into()),
            ("key", v::optional(v::string())),
        ]),
        |ctx, args| {
            let id = args.get("id").and_then(Value::as_str).unwrap_or_default();
            let row = ctx.db.get_in(TABLE, id)?;
            let mut out = match row {
                Some(doc) => doc.fields,
                None => Object::new(),
            };
            if let Some(key) = args.get("key").and_then(Value::as_str) {
                let key = key.to_string();
                let count = ctx
                    .db
                    .query("counters")?
                    .with_index("by_key", move |q| q.eq("key", key))?
                    .first()?
                    .and_then(|d| d.get("count").and_then(Value::as_f64))
                    .unwrap_or(0.0);
                out.insert("count".into(), Value::Float64(count));
            }
            Ok(Value::Object(out))
        },
    );
    r.query_untyped("sched:rows", functions::no_args(), |ctx, _| {
        let rows = ctx.db.query(TABLE)?.collect()?;
        Ok(Value::Array(
            rows.into_iter().map(|d| d.into_value()).collect(),
        ))
    });
    r.query_untyped("sched:counters", functions::no_args(), |ctx, _| {
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

fn field<'a>(row: &'a Value, name: &str) -> Option<&'a Value> {
    row.as_object().and_then(|o| o.get(name))
}

fn state(row: &Value) -> &str {
    field(row, "state")
        .and_then(Value::as_str)
        .unwrap_or("missing")
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

async fn wait_finished(rt: &Runtime, id: &str, key: Option<&str>) -> Value {
    let mut args = vec![("id", s(id))];
    if let Some(key) = key {
        args.push(("key", s(key)));
    }
    let args = obj(&args);
    wait_for("the schedule to finish", || {
        let args = args.clone();
        async move {
            let row = ok(rt, "sched:get", args).await;
            matches!(state(&row), "success" | "failed" | "canceled").then_some(row)
        }
    })
    .await
}

#[tokio::test]
async fn run_after_runs_once_after_its_delay() {
    for db in backends() {
        let place = Place::new(db).await;
        let node = Node::start(&place).await;
        let before = wall_ms();
        let id = ok(
            node.rt(),
            "sched:schedule",
            obj(&[("key", s("a")), ("delayMs", Value::Float64(150.0))]),
        )
        .await;
        let id = id.as_str().unwrap().to_string();
        let row = wait_finished(node.rt(), &id, Some("a")).await;
        assert_eq!(state(&row), "success", "{db:?}: {row:?}");
        let scheduled = field(&row, "scheduled_time")
            .and_then(Value::as_f64)
            .unwrap();
        let started = field(&row, "started_at").and_then(Value::as_f64).unwrap();
        let completed = field(&row, "completed_at").and_then(Value::as_f64).unwrap();
        assert!(scheduled >= before + 150.0 - 5.0, "{db:?}: {row:?}");
        assert!(
            started >= scheduled && completed >= started,
            "{db:?}: {row:?}"
        );
        assert_eq!(field(&row, "count"), Some(&Value::Float64(1.0)), "{db:?}");
        // Nothing runs it again.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let count = ok(node.rt(), "sched:count", obj(&[("key", s("a"))])).await;
        assert_eq!(count, Value::Float64(1.0), "{db:?}");
        node.stop().await;
    }
}

#[tokio::test]
async fn a_mutation_that_fails_schedules_nothing() {
    for db in backends() {
        let place = Place::new(db).await;
        let node = Node::start(&place).await;
        let error = call(
            node.rt(),
            "sched:scheduleThenThrow",
            obj(&[("key", s("b"))]),
        )
        .await
        .unwrap_err();
        assert!(error.to_string().contains("changed my mind"), "{error}");
        let rows = ok(node.rt(), "sched:rows", obj(&[])).await;
        assert_eq!(rows, Value::Array(vec![]), "{db:?}");
        let counters = ok(node.rt(), "sched:counters", obj(&[])).await;
        assert_eq!(counters, Value::Array(vec![]), "{db:?}");
        node.stop().await;
    }
}

#[tokio::test]
async fn arguments_are_checked_when_scheduled() {
    for db in backends() {
        let place = Place::new(db).await;
        let node = Node::start(&place).await;
        let error = call(node.rt(), "sched:scheduleBadArgs", obj(&[]))
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("ArgumentValidationError"),
            "{db:?}: {error}"
        );
        let rows = ok(node.rt(), "sched:rows", obj(&[])).await;
        assert_eq!(rows, Value::Array(vec![]), "{db:?}");
        node.stop().await;
    }
}

#[tokio::test]
async fn cancel_before_due_means_it_never_runs() {
    for db in backends() {
        let place = Place::new(db).await;
        let node = Node::start(&place).await;
        let id = ok(
            node.rt(),
            "sched:schedule",
            obj(&[("key", s("c")), ("delayMs", Value::Float64(300.0))]),
        )
        .await;
        let id = id.as_str().unwrap().to_string();
        ok(node.rt(), "sched:cancel", obj(&[("id", s(&id))])).await;
        let row = ok(node.rt(), "sched:get", obj(&[("id", s(&id))])).await;
        assert_eq!(state(&row), "canceled", "{db:?}: {row:?}");
        assert!(field(&row, "completed_at").is_some(), "{db:?}: {row:?}");
        // Past its due time, it still has not run.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let row = ok(
            node.rt(),
            "sched:get",
            obj(&[("id", s(&id)), ("key", s("c"))]),
        )
        .await;
        assert_eq!(state(&row), "canceled", "{db:?}: {row:?}");
        assert_eq!(field(&row, "count"), Some(&Value::Float64(0.0)), "{db:?}");
        node.stop().await;
    }
}

#[tokio::test]
async fn an_action_that_throws_is_failed_with_its_error() {
    for db in backends() {
        let place = Place::new(db).await;
        let node = Node::start(&place).await;
        let id = ok(
            node.rt(),
            "sched:scheduleThrowFromAction",
            obj(&[("message", s("boom"))]),
        )
        .await;
        let row = wait_finished(node.rt(), id.as_str().unwrap(), None).await;
        assert_eq!(state(&row), "failed", "{db:?}: {row:?}");
        let error = field(&row, "error").and_then(Value::as_str).unwrap_or("");
        assert!(error.contains("boom"), "{db:?}: {row:?}");
        assert!(field(&row, "started_at").is_some(), "{db:?}: {row:?}");
        node.stop().await;
    }
}

/// Every snapshot that sees the schedule finished also sees its write, and none sees one without
/// the other: they are one commit.
#[tokio::test]
async fn a_scheduled_mutation_commits_with_its_state() {
    for db in backends() {
        let place = Place::new(db).await;
        let node = Node::start(&place).await;
        for (path, key, expected) in [
            ("sched:schedule", "d", "success"),
            ("sched:scheduleFailAfterCommit", "e", "failed"),
        ] {
            let mut args = vec![("key", s(key))];
            if path == "sched:schedule" {
                args.push(("delayMs", Value::Float64(30.0)));
            }
            let id = ok(node.rt(), path, obj(&args)).await;
            let args = obj(&[("id", id.clone()), ("key", s(key))]);
            loop {
                let row = ok(node.rt(), "sched:get", args.clone()).await;
                let count = field(&row, "count").and_then(Value::as_f64).unwrap();
                match state(&row) {
                    "pending" => assert_eq!(count, 0.0, "{db:?}: {row:?}"),
                    finished => {
                        assert_eq!(finished, expected, "{db:?}: {row:?}");
                        assert_eq!(count, 1.0, "{db:?}: {row:?}");
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        node.stop().await;
    }
}

/// Two nodes on one PostgreSQL database: each of many schedules runs exactly once.
#[tokio::test]
async fn two_nodes_run_each_schedule_exactly_once() {
    if !backends().contains(&Db::Postgres) {
        return;
    }
    let place = Place::new(Db::Postgres).await;
    let (a, b) = (Node::start(&place).await, Node::start(&place).await);
    let (batches, per_batch) = (4, 100);
    for batch in 0..batches {
        // Half scheduled through each node.
        let node = if batch % 2 == 0 { &a } else { &b };
        ok(
            node.rt(),
            "sched:scheduleMany",
            obj(&[
                ("prefix", s(&format!("k{batch}"))),
                ("n", Value::Float64(per_batch as f64)),
            ]),
        )
        .await;
    }
    let total = batches * per_batch;
    let rows = wait_for("every schedule to finish", || async {
        let rows = ok(a.rt(), "sched:rows", obj(&[])).await;
        let rows = rows.as_array().unwrap().to_vec();
        rows.iter()
            .all(|row| state(row) != "pending" && state(row) != "in_progress")
            .then_some(rows)
    })
    .await;
    assert_eq!(rows.len(), total);
    assert!(rows.iter().all(|row| state(row) == "success"), "{rows:?}");
    let counters = ok(b.rt(), "sched:counters", obj(&[])).await;
    let counters = counters.as_array().unwrap();
    assert_eq!(counters.len(), total);
    for counter in counters {
        assert_eq!(
            field(counter, "count"),
            Some(&Value::Float64(1.0)),
            "{counter:?}"
        );
    }
    a.stop().await;
    b.stop().await;
}

/// Finished rows past retention are pruned; pending ones stay.
#[tokio::test]
async fn finished_rows_are_pruned_after_retention() {
    for db in backends() {
        let place = Place::new(db).await;
        let node = Node::start(&place).await;
        let done = ok(
            node.rt(),
            "sched:schedule",
            obj(&[("key", s("p")), ("delayMs", Value::Float64(0.0))]),
        )
        .await;
        wait_finished(node.rt(), done.as_str().unwrap(), None).await;
        let later = ok(
            node.rt(),
            "sched:schedule",
            obj(&[("key", s("q")), ("delayMs", Value::Float64(3_600_000.0))]),
        )
        .await;
        // A second executor with no retention prunes at once.
        let pruner = background::Executor::start(
            node.rt().clone(),
            background::SchedulerOptions {
                retention: Duration::ZERO,
                ..Default::default()
            },
        );
        let rows = wait_for("the finished row to be pruned", || async {
            let rows = ok(node.rt(), "sched:rows", obj(&[])).await;
            let rows = rows.as_array().unwrap().to_vec();
            (rows.len() == 1).then_some(rows)
        })
        .await;
        assert_eq!(field(&rows[0], "_id"), Some(&later), "{db:?}");
        assert_eq!(state(&rows[0]), "pending", "{db:?}");
        pruner.stop().await;
        node.stop().await;
    }
}

/// An action left `in_progress` past the action timeout (its node died) is marked failed as
/// interrupted, not run again.
#[tokio::test]
async fn an_interrupted_action_is_failed_not_rerun() {
    for db in backends() {
        let place = Place::new(db).await;
        let node = Node::start(&place).await;
        let started_at = wall_ms() - 3_600_000.0;
        let (id, _, _) = node
            .rt()
            .store()
            .mutate(move |txn| {
                txn.insert(
                    TABLE,
                    Object::from([
                        ("name".to_string(), s(THROW.path())),
                        ("kind".to_string(), s("action")),
                        ("args".to_string(), obj(&[("message", s("never"))])),
                        ("state".to_string(), s("in_progress")),
                        ("scheduled_time".to_string(), Value::Float64(started_at)),
                        ("started_at".to_string(), Value::Float64(started_at)),
                    ]),
                )
            })
            .await
            .unwrap();
        // Upkeep runs when an executor starts.
        let recovering = background::Executor::start(node.rt().clone(), Default::default());
        let row = wait_finished(node.rt(), &id.encode(), None).await;
        assert_eq!(state(&row), "failed", "{db:?}: {row:?}");
        let error = field(&row, "error").and_then(Value::as_str).unwrap_or("");
        assert!(error.contains("interrupted"), "{db:?}: {row:?}");
        recovering.stop().await;
        node.stop().await;
    }
}
