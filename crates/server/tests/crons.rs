//! Crons through the real server start path: with two nodes (two runners in one process on SQLite)
//! each tick runs once; a start after downtime runs a missed cron once; a tick that comes while a run
//! is still going is skipped. SQLite always; PostgreSQL too when TEST_DATABASE_URL is set.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use background::{CronOptions, CronRunner};
use common::{backends, Db, Place};
use functions::crons::TABLE;
use functions::scheduler::wall_ms;
use functions::{FnResult, FunctionRef, Registry, Runtime, Schedule};
use serde::{Deserialize, Serialize};
use store::{Document, Schema, TableDef};
use values::validator::v;
use values::{Object, Typed, Value};

#[derive(Serialize, Deserialize, Typed)]
struct Tag {
    tag: String,
}

const RECORD: FunctionRef<Tag, ()> = FunctionRef::internal_mutation("crons:record");
const SLOW: FunctionRef<Tag, ()> = FunctionRef::internal_action("crons:slow");

/// Runs of the slow action going on now, and the most seen at once.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
static MOST: AtomicUsize = AtomicUsize::new(0);

fn schema() -> Schema {
    Schema::new().table(
        TableDef::new("ticks")
            .field("tag", v::string())
            .field("at", v::number()),
    )
}

fn record(ctx: &mut functions::MutationCtx<'_>, tag: String) -> FnResult<()> {
    let at = ctx.now_ms();
    ctx.db.insert(
        "ticks",
        Object::from([
            ("tag".to_string(), Value::String(tag)),
            ("at".to_string(), Value::Float64(at)),
        ]),
    )?;
    Ok(())
}

fn registry(cron: &str) -> Registry {
    let mut r = Registry::new();
    r.internal_mutation(RECORD, |ctx, args: Tag| record(ctx, args.tag));
    r.internal_action(SLOW, |ctx, args: Tag| async move {
        let now = ACTIVE.fetch_add(1, Ordering::SeqCst) + 1;
        MOST.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(700)).await;
        ACTIVE.fetch_sub(1, Ordering::SeqCst);
        ctx.run_mutation(RECORD, &args).await
    });
    let tag = Tag {
        tag: cron.to_string(),
    };
    match cron {
        "fast" => r.cron(
            cron,
            Schedule::every(Duration::from_millis(300)),
            RECORD,
            &tag,
        ),
        "hourly" => r.cron(
            cron,
            Schedule::every(Duration::from_secs(3600)),
            RECORD,
            &tag,
        ),
        "slow" => r.cron(
            cron,
            Schedule::every(Duration::from_millis(100)),
            SLOW,
            &tag,
        ),
        other => panic!("no cron {other}"),
    };
    r
}

async fn start(place: &Place, cron: &str) -> server::Running {
    let config = place.config(&[]);
    let store = server::open_store(&config, schema())
        .await
        .expect("open store");
    server::start(config, store, registry(cron), std::future::pending())
        .await
        .expect("server starts")
}

async fn ticks(rt: &Runtime) -> Vec<f64> {
    let (rows, _, _) = rt
        .store()
        .query(|txn| txn.query("ticks")?.collect())
        .await
        .unwrap();
    let mut at: Vec<f64> = rows
        .iter()
        .filter_map(|d| d.get("at").and_then(Value::as_f64))
        .collect();
    at.sort_by(f64::total_cmp);
    at
}

async fn cron_row(rt: &Runtime, name: &str) -> Document {
    let states = background::crons::states(rt.store()).await.unwrap();
    states.get(name).cloned().expect("the cron has a row")
}

fn number(doc: &Document, field: &str) -> f64 {
    doc.get(field)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{field} in {doc:?}"))
}

#[tokio::test]
async fn two_nodes_run_a_cron_once_per_tick() {
    for db in backends() {
        let place = Place::new(db).await;
        let a = start(&place, "fast").await;
        // A second node; on SQLite (one process per database) a second runner beside the first.
        let (b, extra) = match db {
            Db::Postgres => (Some(start(&place, "fast").await), None),
            Db::Sqlite => (
                None,
                Some(CronRunner::start(a.runtime.clone(), CronOptions::default())),
            ),
        };
        tokio::time::sleep(Duration::from_millis(2000)).await;
        if let Some(extra) = extra {
            extra.stop().await;
        }
        if let Some(b) = b {
            b.stop().await.unwrap();
        }
        let at = ticks(&a.runtime).await;
        let row = cron_row(&a.runtime, "fast").await;
        a.stop().await.unwrap();
        // Ticks 300 ms apart over 2 s: about 7 runs; twice that if both nodes ran each tick.
        assert!(
            (4..=8).contains(&at.len()),
            "{db:?}: {} runs: {at:?}",
            at.len()
        );
        // Two runs of one tick would be milliseconds apart; a run's own start may lag its tick.
        for pair in at.windows(2) {
            assert!(
                pair[1] - pair[0] >= 150.0,
                "{db:?}: two runs of one tick: {at:?}"
            );
        }
        assert_eq!(number(&row, "runs") as usize, at.len(), "{db:?}: {row:?}");
        assert!(row.get("last_error").is_none(), "{db:?}: {row:?}");
    }
}

#[tokio::test]
async fn a_start_after_downtime_runs_a_missed_cron_once() {
    for db in backends() {
        let place = Place::new(db).await;
        // The state an hourly cron leaves when every node was down for ten hours.
        let config = place.config(&[]);
        let store = server::open_store(&config, schema()).await.unwrap();
        let now = wall_ms();
        let hour = 3_600_000.0;
        store
            .mutate(move |txn| {
                txn.insert(
                    TABLE,
                    Object::from([
                        ("name".to_string(), Value::String("hourly".into())),
                        ("schedule".to_string(), Value::String("every 3600s".into())),
                        ("function".to_string(), Value::String(RECORD.path().into())),
                        ("next_run".to_string(), Value::Float64(now - 10.0 * hour)),
                        ("last_run".to_string(), Value::Float64(now - 11.0 * hour)),
                        (
                            "last_finished".to_string(),
                            Value::Float64(now - 11.0 * hour),
                        ),
                        ("runs".to_string(), Value::Float64(3.0)),
                        ("skipped".to_string(), Value::Float64(0.0)),
                    ]),
                )
            })
            .await
            .unwrap();
        store.close().await.unwrap();

        let node = start(&place, "hourly").await;
        let mut at = Vec::new();
        for _ in 0..200 {
            at = ticks(&node.runtime).await;
            if !at.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        // Time for a second (wrong) catch-up run to show.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let at_end = ticks(&node.runtime).await;
        let row = cron_row(&node.runtime, "hourly").await;
        node.stop().await.unwrap();
        assert_eq!(at.len(), 1, "{db:?}: the missed cron ran on start");
        assert_eq!(at_end.len(), 1, "{db:?}: once, not once per missed hour");
        assert_eq!(number(&row, "runs"), 4.0, "{db:?}: {row:?}");
        assert!(
            number(&row, "next_run") > wall_ms() + 0.9 * hour,
            "{db:?}: {row:?}"
        );
        assert!(row.get("running_since").is_none(), "{db:?}: {row:?}");
    }
}

#[tokio::test]
async fn a_tick_while_a_run_is_going_is_skipped() {
    for db in backends() {
        ACTIVE.store(0, Ordering::SeqCst);
        MOST.store(0, Ordering::SeqCst);
        let place = Place::new(db).await;
        let node = start(&place, "slow").await;
        // Runs take 700 ms, ticks come every 100 ms.
        tokio::time::sleep(Duration::from_millis(1600)).await;
        let row = cron_row(&node.runtime, "slow").await;
        node.stop().await.unwrap();
        assert_eq!(MOST.load(Ordering::SeqCst), 1, "{db:?}: runs never overlap");
        let runs = number(&row, "runs");
        assert!((1.0..=3.0).contains(&runs), "{db:?}: {row:?}");
        assert!(
            number(&row, "skipped") >= 3.0,
            "{db:?}: ticks were skipped: {row:?}"
        );
    }
}
