//! Pruning of the PostgreSQL commit log, and what the commit feed does around it.

mod common;

use std::time::Duration;

use common::{schema, test_dbs, user, TestDb};
use store::{Backend, CommitFeed, FeedEvent, Store, Ts};

/// The PostgreSQL test database, or `None` (the test is skipped) without `TEST_DATABASE_URL`.
fn postgres_db() -> Option<TestDb> {
    let db = test_dbs().into_iter().find(TestDb::is_postgres);
    if db.is_none() {
        eprintln!("TEST_DATABASE_URL is not set: skipping a PostgreSQL-only test");
    }
    db
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(connection);
    client
}

/// A plain connection to the test's own database.
async fn sql(db: &TestDb) -> tokio_postgres::Client {
    match &db.config.backend {
        Backend::Postgres { url } => connect(url).await,
        Backend::Sqlite { .. } => unreachable!("a PostgreSQL test database"),
    }
}

/// The ts of every row left in the commit log.
async fn log(sql: &tokio_postgres::Client) -> Vec<Ts> {
    let rows = sql
        .query("SELECT ts FROM ss_commit_log ORDER BY ts", &[])
        .await
        .unwrap();
    rows.iter()
        .map(|row| Ts(row.get::<_, i64>(0) as u64))
        .collect()
}

async fn pruned_through(sql: &tokio_postgres::Client) -> Ts {
    let row = sql
        .query_one("SELECT pruned_through FROM ss_commit_log_pruned", &[])
        .await
        .unwrap();
    Ts(row.get::<_, i64>(0) as u64)
}

async fn commit(store: &Store, name: &str) -> Ts {
    let fields = user(name, 1.0);
    store
        .mutate(move |txn| txn.insert("users", fields.clone()))
        .await
        .expect("insert")
        .1
}

async fn commits(store: &Store, n: usize) -> Vec<Ts> {
    let mut ts = Vec::new();
    for i in 0..n {
        ts.push(commit(store, &format!("u{i}")).await);
    }
    ts
}

/// The feed's next event. The timeout only keeps a broken feed from hanging the test.
async fn next(feed: &mut CommitFeed) -> FeedEvent {
    tokio::time::timeout(Duration::from_secs(60), feed.next())
        .await
        .expect("a feed event")
        .expect("the feed is open")
}

async fn expect_commits(feed: &mut CommitFeed, expected: &[Ts]) {
    for ts in expected {
        match next(feed).await {
            FeedEvent::Commit(commit) => assert_eq!(commit.ts, *ts),
            FeedEvent::Reset(reset) => panic!("Reset({reset:?}) instead of the commit at {ts:?}"),
        }
    }
}

async fn user_count(store: &Store) -> (usize, Ts) {
    let (docs, _, ts) = store
        .query(|txn| txn.query("users")?.collect())
        .await
        .unwrap();
    (docs.len(), ts)
}

#[tokio::test(flavor = "multi_thread")]
async fn pruning_keeps_the_newest_row_and_later_commits_still_flow() {
    for db in test_dbs().into_iter().filter(|db| !db.is_postgres()) {
        let store = db.open(schema()).await;
        commit(&store, "a").await;
        assert_eq!(store.prune_commit_log(Duration::ZERO).await, Ok(0));
        store.close().await.unwrap();
    }
    let Some(db) = postgres_db() else { return };
    let store = db.open(schema()).await;
    let sql = sql(&db).await;
    assert_eq!(pruned_through(&sql).await, Ts(0), "the marker starts at 0");
    let ts = commits(&store, 5).await;

    assert_eq!(
        store.prune_commit_log(Duration::from_secs(3600)).await,
        Ok(0),
        "rows younger than the retention stay"
    );
    assert_eq!(log(&sql).await, ts);

    assert_eq!(store.prune_commit_log(Duration::ZERO).await, Ok(4));
    assert_eq!(log(&sql).await, vec![ts[4]], "the newest row is kept");
    assert_eq!(pruned_through(&sql).await, ts[3]);
    assert_eq!(store.prune_commit_log(Duration::ZERO).await, Ok(0));

    assert_eq!(
        user_count(&store).await,
        (5, ts[4]),
        "reads see the last commit"
    );
    let other = db.open(schema()).await;
    assert_eq!(other.last_ts(), ts[4]);
    assert_eq!(user_count(&other).await, (5, ts[4]));

    let mut feed = store.commit_feed().await.unwrap();
    assert_eq!(feed.start_ts(), ts[4]);
    let later = commits(&other, 3).await;
    assert!(later[0] > ts[4]);
    expect_commits(&mut feed, &later).await;
    other.close().await.unwrap();
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_feed_cut_off_across_a_prune_resets_then_follows() {
    let Some(db) = postgres_db() else { return };
    let (admin_url, name) = db.pg_admin().unwrap();
    let admin = connect(admin_url).await;
    let store = db.open(schema()).await;
    let mut feed = store.commit_feed().await.unwrap();
    let before = commits(&store, 1).await;
    expect_commits(&mut feed, &before).await;

    // Cut the feed off: refuse new sessions on the database, then end the tailer's. The store's
    // pool keeps the sessions it has.
    admin
        .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
        .await
        .unwrap();
    let ended = admin
        .query(
            "SELECT pg_terminate_backend(pid, 30000) FROM pg_stat_activity \
             WHERE datname = $1 AND application_name = 'ss_commit_feed'",
            &[&name],
        )
        .await
        .unwrap();
    assert_eq!(ended.len(), 1, "one feed session");
    assert!(ended[0].get::<_, bool>(0), "the feed session ended");

    let missed = commits(&store, 3).await;
    assert_eq!(store.prune_commit_log(Duration::ZERO).await, Ok(3));
    admin
        .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .await
        .unwrap();

    match next(&mut feed).await {
        FeedEvent::Reset(ts) => assert_eq!(ts, missed[2], "the reset covers every missed commit"),
        FeedEvent::Commit(commit) => panic!("a commit at {:?} instead of a reset", commit.ts),
    }
    assert_eq!(feed.start_ts(), missed[2]);
    let after = commits(&store, 3).await;
    expect_commits(&mut feed, &after).await;
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_feed_that_keeps_up_sees_every_commit_once_across_prunes() {
    let Some(db) = postgres_db() else { return };
    let store = db.open(schema()).await;
    let sql = sql(&db).await;
    let mut feed = store.commit_feed().await.unwrap();
    for round in 0..3 {
        let ts = commits(&store, 4).await;
        expect_commits(&mut feed, &ts).await;
        let deleted = store.prune_commit_log(Duration::ZERO).await.unwrap();
        assert_eq!(deleted, if round == 0 { 3 } else { 4 });
        assert_eq!(log(&sql).await, vec![ts[3]]);
    }
    // Anything delivered twice, or a reset, would come before this commit.
    let last = commits(&store, 1).await;
    expect_commits(&mut feed, &last).await;
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_pruning_at_once_both_succeed() {
    let Some(db) = postgres_db() else { return };
    let (a, b) = (db.open(schema()).await, db.open(schema()).await);
    let sql = sql(&db).await;
    let mut rows = 0;
    let mut total = 0;
    for round in 0..5 {
        let mut last = Ts(0);
        for i in 0..20 {
            let node = if i % 2 == 0 { &a } else { &b };
            last = commit(node, &format!("r{round}-{i}")).await;
        }
        rows += 20;
        let (pruned_a, pruned_b) = tokio::join!(
            a.prune_commit_log(Duration::ZERO),
            b.prune_commit_log(Duration::ZERO)
        );
        let deleted = pruned_a.unwrap() + pruned_b.unwrap();
        assert_eq!(deleted, rows - 1, "every row but the newest, once");
        rows = 1;
        total += 20;
        assert_eq!(log(&sql).await, vec![last]);
        assert_eq!(user_count(&a).await, (total, last));
        assert_eq!(user_count(&b).await, (total, last));
    }
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_feed_that_lost_the_database_resets_once_back_then_follows() {
    let Some(db) = postgres_db() else { return };
    let (admin_url, name) = db.pg_admin().unwrap();
    let admin = connect(admin_url).await;
    let store = db.open(schema()).await;
    let mut feed = store.commit_feed().await.unwrap();
    let before = commits(&store, 1).await;
    expect_commits(&mut feed, &before).await;

    // End the tailer's session; it reconnects by itself. Nothing is pruned, so nothing is
    // skipped, but what ran on the feed's behalf meanwhile may have failed: readers are told.
    let ended = admin
        .query(
            "SELECT pg_terminate_backend(pid, 30000) FROM pg_stat_activity \
             WHERE datname = $1 AND application_name = 'ss_commit_feed'",
            &[&name],
        )
        .await
        .unwrap();
    assert_eq!(ended.len(), 1, "one feed session");
    let during = commits(&store, 2).await;
    match next(&mut feed).await {
        FeedEvent::Reset(ts) => assert_eq!(ts, before[0], "the reset is where the feed was"),
        FeedEvent::Commit(commit) => panic!("a commit at {:?} instead of a reset", commit.ts),
    }
    expect_commits(&mut feed, &during).await;
    store.close().await.unwrap();
}
