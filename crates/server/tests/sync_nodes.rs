//! Two server nodes on one PostgreSQL database: each follows the shared commit log, so a
//! subscriber on one node sees what is committed through the other. Runs when TEST_DATABASE_URL
//! is set.

mod common;
mod sync_support;

use common::{Db, Place};
use serde_json::json;
use sync_support::{modification, ts, ts_of, Raw, SyncServer};

fn postgres() -> bool {
    let set = std::env::var("TEST_DATABASE_URL").is_ok();
    if !set {
        eprintln!("TEST_DATABASE_URL not set: multi-node test skipped");
    }
    set
}

#[tokio::test]
async fn a_subscriber_on_one_node_sees_commits_made_on_another() {
    if !postgres() {
        return;
    }
    let place = Place::new(Db::Postgres).await;
    let first = SyncServer::start(&place).await;
    let second = SyncServer::start(&place).await;
    assert_ne!(first.addr, second.addr);

    let mut watcher = Raw::connect(&first.ws_url()).await;
    watcher.add(0, 0, "messages:list", json!({})).await;

    // A WebSocket mutation on the second node.
    let mut writer = Raw::connect(&second.ws_url()).await;
    writer
        .mutation(0, "messages:send", json!({"body": "from node two"}))
        .await;
    let response = writer.expect("MutationResponse").await;
    let committed = ts_of(&response["ts"]);
    // The writer's own node answers with a Transition at or past the commit, too.
    let reached = writer.expect("Transition").await;
    assert!(ts(&reached["endVersion"]) >= committed);

    let update = watcher.expect("Transition").await;
    let list = modification(&update, 0).expect("the list changed");
    assert_eq!(list["value"][0]["body"], "from node two");
    assert!(ts(&update["endVersion"]) >= committed);

    // And over HTTP, in the other direction.
    let mut far = Raw::connect(&second.ws_url()).await;
    far.add(0, 0, "messages:count", json!({})).await;
    first
        .ok(
            "mutation",
            "messages:send",
            json!({"body": "from node one"}),
        )
        .await;
    let update = far.expect("Transition").await;
    assert_eq!(modification(&update, 0).unwrap()["value"], 2.0);
    first.stop().await;
    second.stop().await;
}

#[tokio::test]
async fn concurrent_commits_on_both_nodes_all_reach_every_subscriber() {
    if !postgres() {
        return;
    }
    let place = Place::new(Db::Postgres).await;
    let nodes = [
        SyncServer::start(&place).await,
        SyncServer::start(&place).await,
    ];
    let company = format!("company-{}", hex::encode(rand::random::<[u8; 4]>()));
    let mut watchers = Vec::new();
    for node in &nodes {
        let mut watcher = Raw::connect(&node.ws_url()).await;
        watcher
            .add(0, 0, "items:list", json!({"company": company}))
            .await;
        watchers.push(watcher);
    }

    // 2 nodes x 4 writers x 10 inserts, all at once: commits interleave across nodes.
    let mut writers = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for w in 0..4 {
            let url = node.ws_url();
            let company = company.clone();
            writers.push(tokio::spawn(async move {
                let mut client = Raw::connect(&url).await;
                for i in 0..10u32 {
                    client
                        .mutation(
                            i,
                            "items:add",
                            json!({"company": company, "text": format!("{n}-{w}-{i}")}),
                        )
                        .await;
                }
                for _ in 0..10 {
                    let response = client
                        .until("a response", |m| m["type"] == "MutationResponse")
                        .await;
                    assert_eq!(response["success"], true, "{response}");
                }
            }));
        }
    }
    for writer in writers {
        writer.await.unwrap();
    }
    for watcher in &mut watchers {
        let last = watcher
            .until("all 80 items", |m| {
                m["type"] == "Transition"
                    && modification(m, 0)
                        .is_some_and(|q| q["value"].as_array().unwrap().len() == 80)
            })
            .await;
        assert!(ts(&last["endVersion"]) > 0);
    }
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test]
async fn a_retry_on_another_node_is_answered_from_the_first_run() {
    if !postgres() {
        return;
    }
    let place = Place::new(Db::Postgres).await;
    let first = SyncServer::start(&place).await;
    let second = SyncServer::start(&place).await;
    let name = format!("nodes-{}", hex::encode(rand::random::<[u8; 4]>()));

    let mut client = Raw::connect(&first.ws_url()).await;
    let session = client.session_id.clone();
    client
        .mutation(0, "counter:bump", json!({"name": name}))
        .await;
    assert_eq!(client.expect("MutationResponse").await["result"], 1.0);
    drop(client);

    // The load balancer sends the reconnected client to the other node.
    let mut moved = Raw::connect_as(&second.ws_url(), &session).await;
    moved
        .mutation(0, "counter:bump", json!({"name": name}))
        .await;
    let replayed = moved.expect("MutationResponse").await;
    assert_eq!(replayed["result"], 1.0);
    let reached = moved.expect("Transition").await;
    assert!(ts(&reached["endVersion"]) >= ts_of(&replayed["ts"]));
    assert_eq!(
        second
            .ok("query", "counter:get", json!({"name": name}))
            .await,
        1.0
    );
    first.stop().await;
    second.stop().await;
}
