//! What a write answers when the database fails under it: a connection lost during COMMIT
//! (PostgreSQL; SQLite runs in-process, so its COMMIT always returns an answer) and a database
//! that stops taking writes (both backends), with injected faults (`Store::inject_fault`).

mod common;

use common::{schema, test_dbs, user, TestDb, R};
use store::{Fault, Store, StoreError};

fn postgres_db() -> Option<TestDb> {
    let db = test_dbs().into_iter().find(TestDb::is_postgres);
    if db.is_none() {
        eprintln!("TEST_DATABASE_URL is not set: skipping a PostgreSQL-only test");
    }
    db
}

async fn insert(store: &Store, name: &str) -> R<()> {
    let fields = user(name, 1.0);
    store
        .mutate(move |txn| txn.insert("users", fields.clone()))
        .await
        .map(drop)
}

async fn named(store: &Store, name: &'static str) -> usize {
    store
        .query(move |txn| {
            let all = txn.query("users")?.collect()?;
            Ok::<_, StoreError>(
                all.iter()
                    .filter(|d| d.get("name") == Some(&name.into()))
                    .count(),
            )
        })
        .await
        .unwrap()
        .0
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_whose_answer_was_lost_is_looked_up_and_answers_success() {
    let Some(db) = postgres_db() else { return };
    let store = db.open(schema()).await;
    store.inject_fault(Some(Fault::CommitReplyLost));
    // It committed: the client is told so, and a retry it would otherwise make is not needed.
    assert_eq!(insert(&store, "lost-reply").await, Ok(()));
    store.inject_fault(None);
    assert_eq!(named(&store, "lost-reply").await, 1);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_cut_off_before_it_landed_is_a_definite_failure() {
    let Some(db) = postgres_db() else { return };
    let store = db.open(schema()).await;
    store.inject_fault(Some(Fault::CommitConnectionKilled));
    let result = insert(&store, "cut-off").await;
    assert!(
        matches!(&result, Err(StoreError::Unavailable(m)) if m.contains("nothing was written")),
        "{result:?}"
    );
    store.inject_fault(None);
    assert_eq!(named(&store, "cut-off").await, 0, "it did not commit");
    // Trying again, as the answer allows, writes it once.
    assert_eq!(insert(&store, "cut-off").await, Ok(()));
    assert_eq!(named(&store, "cut-off").await, 1);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_whose_outcome_cannot_be_found_says_so() {
    let Some(db) = postgres_db() else { return };
    let store = db.open(schema()).await;
    store.inject_fault(Some(Fault::CommitUnknowable));
    let result = insert(&store, "unknowable").await;
    assert!(
        matches!(&result, Err(StoreError::CommitUnknown(_))),
        "{result:?}"
    );
    store.inject_fault(None);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn write_health_reports_a_full_disk_and_its_end() {
    for db in test_dbs() {
        let store = db.open(schema()).await;
        // Nothing written yet: a probe answers.
        assert_eq!(store.write_health().await, Ok(()), "{}", db.name);

        store.inject_fault(Some(Fault::DiskFull));
        let failed = insert(&store, "full").await;
        assert!(
            matches!(&failed, Err(StoreError::StorageFull(_))),
            "{}: {failed:?}",
            db.name
        );
        // The failed write stands for the present; reads still work.
        let health = store.write_health().await;
        assert!(
            matches!(&health, Err(StoreError::StorageFull(_))),
            "{}: {health:?}",
            db.name
        );
        assert_eq!(store.health_check().await, Ok(()), "{}", db.name);

        store.inject_fault(None);
        assert_eq!(insert(&store, "room again").await, Ok(()), "{}", db.name);
        assert_eq!(store.write_health().await, Ok(()), "{}", db.name);
        assert_eq!(named(&store, "full").await, 0, "{}", db.name);
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_store_probes_its_writability() {
    for db in test_dbs() {
        let store = db.open(schema()).await;
        // No write has happened: the verdict comes from a probe, which fails too.
        store.inject_fault(Some(Fault::DiskFull));
        let health = store.write_health().await;
        assert!(
            matches!(&health, Err(StoreError::StorageFull(_))),
            "{}: {health:?}",
            db.name
        );
        store.close().await.unwrap();
    }
}
