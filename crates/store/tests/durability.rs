//! Commit timestamps, restarts, migrations of the catalog, group commit and serializable concurrency.

mod common;

use common::{insert, obj, schema, test_dbs, user, R};
use store::{Backend, Schema, StoreError, TableDef, Ts};
use values::validator::v;
use values::Value;

#[tokio::test(flavor = "multi_thread")]
async fn ts_strictly_increases_and_survives_reopen() {
    for db in test_dbs() {
        let store = db.open(schema()).await;
        let mut last = store.last_ts();
        for i in 0..10 {
            let (_, ts, _) = store
                .mutate(move |txn| txn.insert("users", user(&format!("u{i}"), 1.0)))
                .await
                .unwrap();
            assert!(ts > last, "{}: {ts:?} after {last:?}", db.name);
            assert_eq!(store.last_ts(), ts);
            last = ts;
        }
        // A mutation that only reads still gets its own ts.
        let (_, ts, writes) = store
            .mutate(|txn| txn.query("users")?.collect())
            .await
            .unwrap();
        assert!(ts > last && writes.is_empty());
        last = ts;
        let (_, _, snapshot) = store
            .query(|txn| txn.query("users")?.first())
            .await
            .unwrap();
        assert_eq!(snapshot, last, "{}: a query sees the last commit", db.name);
        store.close().await.unwrap();
        let closed: R<_> = store
            .mutate(|txn| txn.insert("users", user("late", 1.0)))
            .await;
        assert!(
            matches!(closed, Err(StoreError::Unavailable(_))),
            "{closed:?}"
        );
        drop(store);

        let store = db.open(schema()).await;
        assert_eq!(store.last_ts(), last, "{}: last ts recovered", db.name);
        let (_, ts, _) = store
            .mutate(|txn| txn.insert("users", user("after", 1.0)))
            .await
            .unwrap();
        assert!(ts > last);
        let (all, _, _) = store
            .query(|txn| txn.query("users")?.collect())
            .await
            .unwrap();
        assert_eq!(all.len(), 11);
        store.close().await.unwrap();
    }
}

fn schema_v1() -> Schema {
    Schema::new().table(
        TableDef::new("notes")
            .field("topic", v::string())
            .field("rank", v::float64())
            .index("by_rank", &["rank"]),
    )
}

fn schema_v2() -> Schema {
    Schema::new()
        .table(TableDef::new("tags").field("label", v::string()))
        .table(
            TableDef::new("notes")
                .field("topic", v::string())
                .field("rank", v::float64())
                .index("by_topic", &["topic", "rank"]),
        )
}

#[tokio::test(flavor = "multi_thread")]
async fn new_indexes_are_backfilled_on_reopen() {
    for db in test_dbs() {
        let store = db.open(schema_v1()).await;
        let notes_number = store.table_number("notes").unwrap();
        for (topic, rank) in [("b", 2.0), ("a", 3.0), ("b", 1.0), ("c", 0.0)] {
            insert(
                &store,
                "notes",
                obj([("topic", topic.into()), ("rank", rank.into())]),
            )
            .await;
        }
        store.close().await.unwrap();
        drop(store);

        let store = db.open(schema_v2()).await;
        assert_eq!(
            store.table_number("notes"),
            Some(notes_number),
            "{}: table numbers are stable",
            db.name
        );
        assert_ne!(store.table_number("tags"), Some(notes_number));
        let (docs, _, _) = store
            .query(|txn| {
                txn.query("notes")?
                    .with_index("by_topic", |q| q.eq("topic", "b"))?
                    .collect()
            })
            .await
            .unwrap();
        let ranks: Vec<_> = docs.iter().map(|d| d.get("rank").cloned()).collect();
        assert_eq!(
            ranks,
            vec![Some(Value::from(1.0)), Some(Value::from(2.0))],
            "{}",
            db.name
        );
        let dropped: R<_> = store
            .query(|txn| txn.query("notes")?.with_index("by_rank", |q| q).map(|_| ()))
            .await;
        assert!(dropped.is_err());
        insert(
            &store,
            "notes",
            obj([("topic", "b".into()), ("rank", 1.5.into())]),
        )
        .await;
        store.close().await.unwrap();
        drop(store);

        // Re-adding the dropped index rebuilds it from the documents, including ones written meanwhile.
        let store = db.open(schema_v1()).await;
        let (docs, _, _) = store
            .query(|txn| {
                txn.query("notes")?
                    .with_index("by_rank", |q| q.gte("rank", 1.0))?
                    .collect()
            })
            .await
            .unwrap();
        let ranks: Vec<_> = docs
            .iter()
            .filter_map(|d| d.get("rank").and_then(Value::as_f64))
            .collect();
        assert_eq!(ranks, vec![1.0, 1.5, 2.0, 3.0], "{}", db.name);
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_renamed_table_keeps_its_documents_ids_and_indexes() {
    let notes = |name: &str| {
        TableDef::new(name)
            .field("topic", v::string())
            .index("by_topic", &["topic"])
    };
    for db in test_dbs() {
        let store = db.open(Schema::new().table(notes("notes"))).await;
        let id = insert(&store, "notes", obj([("topic", "kept".into())])).await;
        store.close().await.unwrap();
        drop(store);

        let store = db
            .open(Schema::new().table(notes("memos").formerly("notes")))
            .await;
        let (found, _, _) = store
            .query(move |txn| {
                let by_id = txn.get(&id)?;
                let by_topic = txn
                    .query("memos")?
                    .with_index("by_topic", |q| q.eq("topic", "kept"))?
                    .collect()?;
                Ok::<_, StoreError>((by_id, by_topic))
            })
            .await
            .unwrap();
        assert_eq!(
            found.0.and_then(|d| d.get("topic").cloned()),
            Some(Value::from("kept")),
            "{}: the old Id still finds the document",
            db.name
        );
        assert_eq!(found.1.len(), 1, "{}: the index came along", db.name);
        assert!(store.table_number("notes").is_none(), "{}", db.name);
        insert(&store, "memos", obj([("topic", "new".into())])).await;
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_inserts_are_all_acknowledged_and_durable() {
    for db in test_dbs() {
        let store = db.open(schema()).await;
        let mut tasks = Vec::new();
        for i in 0..300 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .mutate(move |txn| txn.insert("users", user(&format!("u{i}"), i as f64)))
                    .await
            }));
        }
        let mut stamps = Vec::new();
        for task in tasks {
            let (_, ts, _) = task
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("{}: {e}", db.name));
            stamps.push(ts);
        }
        stamps.sort();
        stamps.dedup();
        assert_eq!(
            stamps.len(),
            300,
            "{}: every commit has its own ts",
            db.name
        );
        store.close().await.unwrap();
        drop(store);

        let store = db.open(schema()).await;
        let (all, _, _) = store
            .query(|txn| txn.query("users")?.collect())
            .await
            .unwrap();
        assert_eq!(all.len(), 300, "{}", db.name);
        assert_eq!(store.last_ts(), *stamps.last().unwrap());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_read_modify_write_loses_no_update() {
    for db in test_dbs() {
        // On PostgreSQL two stores stand for two server nodes; they even migrate the fresh database
        // at the same time.
        let stores = if db.is_postgres() {
            let (a, b) = tokio::join!(db.open(schema()), db.open(schema()));
            vec![a, b]
        } else {
            vec![db.open(schema()).await]
        };
        let counter = insert(
            &stores[0],
            "counters",
            obj([("name", "hits".into()), ("value", Value::Int64(0))]),
        )
        .await;
        let mut tasks = Vec::new();
        for task in 0..8 {
            let store = stores[task % stores.len()].clone();
            tasks.push(tokio::spawn(async move {
                let mut stamps = Vec::new();
                for _ in 0..50 {
                    // A Conflict after the store's own retries is an honest answer; the caller retries.
                    loop {
                        let result: R<_> = store
                            .mutate(move |txn| {
                                let doc = txn.get(&counter)?.expect("counter exists");
                                let value = doc.get("value").and_then(Value::as_i64).unwrap();
                                txn.patch(
                                    &counter,
                                    store::Patch::from([(
                                        "value".to_string(),
                                        Some(Value::Int64(value + 1)),
                                    )]),
                                )
                            })
                            .await;
                        match result {
                            Ok((_, ts, _)) => break stamps.push(ts),
                            Err(StoreError::Conflict) => continue,
                            Err(e) => panic!("increment failed: {e}"),
                        }
                    }
                }
                stamps
            }));
        }
        let mut stamps: Vec<Ts> = Vec::new();
        for task in tasks {
            stamps.extend(task.await.unwrap());
        }
        let (doc, _, snapshot) = stores[0].query(move |txn| txn.get(&counter)).await.unwrap();
        assert_eq!(
            doc.unwrap().get("value"),
            Some(&Value::Int64(400)),
            "{}",
            db.name
        );
        stamps.sort();
        stamps.dedup();
        assert_eq!(stamps.len(), 400, "{}: distinct commit ts", db.name);
        assert_eq!(
            snapshot,
            *stamps.last().unwrap(),
            "{}: the snapshot ts is the last commit's",
            db.name
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_recovers_when_connections_drop() {
    for db in test_dbs().into_iter().filter(|db| db.is_postgres()) {
        let store = db.open(schema()).await;
        insert(&store, "users", user("before", 1.0)).await;
        let store::Backend::Postgres { url } = db.config.backend.clone() else {
            unreachable!()
        };
        // Kill every server connection of the pool, as a database restart or failover would.
        std::thread::spawn(move || {
            let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            admin
                .batch_execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
                .unwrap();
        })
        .join()
        .unwrap();
        store.health_check().await.unwrap();
        insert(&store, "users", user("after", 2.0)).await;
        let (all, _, _) = store
            .query(|txn| txn.query("users")?.collect())
            .await
            .unwrap();
        assert_eq!(common::names(&all), vec!["before", "after"]);
        store.health_check().await.unwrap();
    }
}

/// Checkpoints run beside the writer, not inside commits; the WAL must still be copied back and
/// start over, or it would grow for as long as the server runs.
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_wal_is_checkpointed_and_reused() {
    let db = test_dbs().remove(0);
    let Backend::Sqlite { path } = db.config.backend.clone() else {
        unreachable!("the first test database is SQLite")
    };
    let wal = path.with_extension("db-wal");
    let store = db.open(schema()).await;
    let payload = "x".repeat(1900);
    let mut largest = 0;
    for round in 0..4 {
        // Over 10 MB of pages per round (document and index entries): more than a WAL should keep.
        let writes: Vec<_> = (0..2500)
            .map(|i| {
                let store = store.clone();
                let name = format!("r{round}-{i}-{payload}");
                tokio::spawn(async move {
                    store
                        .mutate(move |txn| txn.insert("users", user(&name, 1.0)))
                        .await
                })
            })
            .collect();
        for write in writes {
            write.await.unwrap().unwrap();
        }
        // Give the checkpointer its delay and the time to copy.
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
    }
    let total = std::fs::metadata(&path).unwrap().len();
    assert!(
        total > 20_000_000,
        "the documents reached the database file ({total} bytes)"
    );
    assert!(
        largest < total / 2,
        "the WAL started over instead of growing: largest {largest} bytes, database {total}"
    );
    let (count, _, _) = store
        .query(|txn| Ok::<_, StoreError>(txn.query("users")?.collect()?.len()))
        .await
        .unwrap();
    assert_eq!(count, 10_000);
}

/// A backup taken while a writer keeps committing is a consistent database that opens as a store
/// and holds everything committed before it started; it never overwrites a file.
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_backup_while_writing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.db");
    let config = |path: &std::path::Path| store::StoreConfig {
        backend: Backend::Sqlite {
            path: path.to_path_buf(),
        },
        pool_size: 2,
    };
    let live = store::Store::open(config(&path), schema()).await.unwrap();
    for i in 0..300 {
        insert(&live, "users", user(&format!("before{i}"), 1.0)).await;
    }
    let writer = {
        let live = live.clone();
        tokio::spawn(async move {
            for i in 0..300 {
                insert(&live, "users", user(&format!("during{i}"), 2.0)).await;
            }
        })
    };
    let copy = dir.path().join("copy.db");
    let (from, to) = (path.clone(), copy.clone());
    let bytes = tokio::task::spawn_blocking(move || store::backup_sqlite(&from, &to))
        .await
        .unwrap()
        .expect("backup succeeds while writes go on");
    assert!(bytes > 0);
    writer.await.unwrap();

    let again = {
        let (from, to) = (path.clone(), copy.clone());
        tokio::task::spawn_blocking(move || store::backup_sqlite(&from, &to))
            .await
            .unwrap()
    };
    assert!(
        matches!(&again, Err(StoreError::Invalid(m)) if m.contains("exists already")),
        "{again:?}"
    );
    let missing = store::backup_sqlite(&dir.path().join("none.db"), &dir.path().join("x.db"));
    assert!(
        matches!(missing, Err(StoreError::Invalid(_))),
        "{missing:?}"
    );

    let restored = store::Store::open(config(&copy), schema()).await.unwrap();
    let (docs, _, _) = restored
        .query(|txn| txn.query("users")?.collect())
        .await
        .unwrap();
    let names: Vec<String> = docs
        .iter()
        .filter_map(|d| d.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    for i in 0..300 {
        assert!(names.contains(&format!("before{i}")), "before{i} missing");
    }
    // The copy is one snapshot: the concurrent writes it holds are a prefix of them.
    let during: Vec<usize> = names
        .iter()
        .filter_map(|n| n.strip_prefix("during")?.parse().ok())
        .collect();
    let mut sorted = during.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..during.len()).collect::<Vec<_>>());
    // Writing to the restored copy works, and the live database is untouched by the backup.
    insert(&restored, "users", user("after restore", 3.0)).await;
    restored.close().await.unwrap();
    let (all, _, _) = live
        .query(|txn| txn.query("users")?.collect())
        .await
        .unwrap();
    assert_eq!(all.len(), 600);
    live.close().await.unwrap();
}

/// Live queries on SQLite hear of commits that another process (a CLI command) makes to the same
/// file: the feed resets to that commit's ts within a few seconds, and its own commits keep
/// arriving as commits after it.
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_feed_notices_commits_of_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let config = store::StoreConfig {
        backend: Backend::Sqlite {
            path: dir.path().join("shared.db"),
        },
        pool_size: 2,
    };
    let server = store::Store::open(config.clone(), schema()).await.unwrap();
    let mut feed = server.commit_feed().await.unwrap();
    insert(&server, "users", user("own", 1.0)).await;
    match feed.next().await {
        Some(store::FeedEvent::Commit(_)) => {}
        other => panic!("own commit expected, got {other:?}"),
    }

    // Another process: its own store on the same file, as `supportsignal admin ...` opens one.
    let cli = store::Store::open(config, schema()).await.unwrap();
    let (_, foreign_ts, _) = cli
        .mutate(|txn| txn.insert("users", user("from the cli", 2.0)))
        .await
        .unwrap();
    cli.close().await.unwrap();
    let event = tokio::time::timeout(std::time::Duration::from_secs(10), feed.next())
        .await
        .expect("the feed notices the other process's commit");
    match event {
        Some(store::FeedEvent::Reset(ts)) => assert!(ts >= foreign_ts, "{ts:?} < {foreign_ts:?}"),
        other => panic!("a reset expected, got {other:?}"),
    }
    let (_, own_ts, _) = server
        .mutate(|txn| txn.insert("users", user("own again", 3.0)))
        .await
        .unwrap();
    assert!(
        own_ts > foreign_ts,
        "the writer continues after the foreign ts"
    );
    match feed.next().await {
        Some(store::FeedEvent::Commit(commit)) => assert_eq!(commit.ts, own_ts),
        other => panic!("own commit expected, got {other:?}"),
    }
    server.close().await.unwrap();
}
