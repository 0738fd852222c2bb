//! The official clients over WebSocket against the real server: the npm `ConvexClient` (through
//! scripts in tests/npm) and the Rust crate `convex` 0.10.

mod common;
mod sync_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{backends, Place};
use convex::{ConvexClient, FunctionResult, Value as ConvexValue};
use futures::StreamExt;
use serde_json::{json, Value as Json};
use sync_support::{Proxy, SyncServer, PATIENCE};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn npm_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/npm")
}

/// Installs the npm client on first use (package-lock.json pins the version).
async fn ensure_npm_client() {
    let dir = npm_dir();
    if dir.join("node_modules/convex/package.json").exists() {
        return;
    }
    let status = tokio::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
        .current_dir(&dir)
        .status()
        .await
        .expect("npm is installed (Node.js 18 or newer is needed for this test)");
    assert!(status.success(), "npm ci failed in {}", dir.display());
}

#[tokio::test]
async fn npm_convex_client_live_queries() {
    ensure_npm_client().await;
    for db in backends() {
        let place = Place::new(db).await;
        let server = SyncServer::start(&place).await;
        let output = tokio::process::Command::new("node")
            .arg("sync_client.mjs")
            .arg(server.url())
            .current_dir(npm_dir())
            .output()
            .await
            .expect("node runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{db:?}: node failed:\n{stdout}\n{stderr}"
        );
        let out: Json = serde_json::from_str(stdout.lines().last().unwrap_or_default())
            .unwrap_or_else(|e| panic!("bad output ({e}):\n{stdout}\n{stderr}"));
        eprintln!("{db:?}: {out}");

        assert_eq!(out["initial"], json!([]));
        assert_eq!(out["afterSend"], json!(["hello from npm"]));
        assert_eq!(out["sentId"].as_str().unwrap().len(), 32);
        assert_eq!(
            out["countWhenResolved"], 2,
            "a resolved mutation is already reflected in its client's subscriptions"
        );
        assert_eq!(out["oneShot"], 2);
        assert_eq!(out["bigLength"], 100_002, "\"2:\" and 100000 bytes");
        assert_eq!(out["acted"]["count"], 3);
        assert_eq!(out["failure"]["isConvexError"], true);
        assert_eq!(
            out["failure"]["data"],
            json!({"code": "CONFLICT", "message": "That message clashes with another", "field": "body"})
        );
        assert_eq!(
            out["actionFailure"],
            json!({"isConvexError": true, "data": {"code": "RATE_LIMITED", "message": "Slow down"}})
        );
        assert_eq!(out["me"], json!({"name": "npm-user", "role": "member"}));
        assert_eq!(out["authChanges"], json!([true]), "the token was confirmed");
        assert_eq!(
            out["afterLogout"]["error"]["code"], "UNAUTHENTICATED",
            "{out}"
        );
        assert_eq!(out["updatesAfterUnsubscribe"], 0);
        server.stop().await;
    }
}

/// Reads the script's next step (the client also logs lines of its own, such as reconnects).
async fn next_step(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) -> Json {
    loop {
        let line = tokio::time::timeout(PATIENCE * 2, lines.next_line())
            .await
            .expect("the script answers in time")
            .expect("stdout readable")
            .expect("the script is still running");
        match serde_json::from_str::<Json>(&line) {
            Ok(step) if step.get("step").is_some() => return step,
            _ => eprintln!("client: {line}"),
        }
    }
}

#[tokio::test]
async fn npm_client_survives_a_dropped_connection_and_a_restart() {
    ensure_npm_client().await;
    for db in backends() {
        let place = Place::new(db).await;
        let server = SyncServer::start(&place).await;
        let proxy = Proxy::start(server.addr).await;
        let name = format!("restart-{}", hex::encode(rand::random::<[u8; 4]>()));
        let mut child = tokio::process::Command::new("node")
            .arg("sync_restart.mjs")
            .arg(proxy.url())
            .arg(&name)
            .current_dir(npm_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let mut stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();

        assert_eq!(next_step(&mut lines).await["step"], "subscribed");
        assert_eq!(next_step(&mut lines).await["step"], "sent");
        // The mutation is running on the server (it waits 600 ms before its transaction) when
        // the network drops; the client reconnects and sends it again.
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        proxy.cut();
        let bumped = next_step(&mut lines).await;
        assert_eq!(bumped["step"], "bumped", "{bumped}");
        assert_eq!(bumped["result"], 1, "{db:?}: the mutation's own result");
        assert_eq!(
            server
                .ok("query", "counter:get", json!({"name": name}))
                .await,
            1.0,
            "{db:?}: applied once although sent twice"
        );
        assert_eq!(
            server.metric("sync_mutation_replays_total").await,
            1,
            "{db:?}: the second send was answered from the first run"
        );

        // The server restarts; the client reconnects, resubscribes and carries on.
        server.stop().await;
        let server = SyncServer::start(&place).await;
        proxy.retarget(server.addr);
        stdin.write_all(b"restarted\n").await.unwrap();
        let done = next_step(&mut lines).await;
        assert_eq!(done["step"], "done", "{done}");
        assert_eq!(done["result"], 2);
        assert_eq!(
            server
                .ok("query", "counter:get", json!({"name": name}))
                .await,
            2.0
        );
        assert!(child.wait().await.unwrap().success());
        server.stop().await;
    }
}

fn args(pairs: &[(&str, ConvexValue)]) -> BTreeMap<String, ConvexValue> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

async fn next_value(subscription: &mut convex::QuerySubscription) -> FunctionResult {
    tokio::time::timeout(PATIENCE, subscription.next())
        .await
        .expect("an update in time")
        .expect("the subscription is open")
}

fn bodies(result: &FunctionResult) -> Vec<String> {
    let FunctionResult::Value(ConvexValue::Array(docs)) = result else {
        panic!("not a list: {result:?}")
    };
    docs.iter()
        .map(|doc| match doc {
            ConvexValue::Object(fields) => match fields.get("body") {
                Some(ConvexValue::String(body)) => body.clone(),
                other => panic!("no body: {other:?}"),
            },
            other => panic!("not a document: {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn rust_convex_client_live_queries() {
    for db in backends() {
        let place = Place::new(db).await;
        let server = SyncServer::start(&place).await;
        let mut watcher = ConvexClient::new(&server.url()).await.expect("connects");
        let mut writer = ConvexClient::new(&server.url()).await.expect("connects");

        let mut list = watcher
            .subscribe("messages:list", BTreeMap::new())
            .await
            .unwrap();
        assert!(bodies(&next_value(&mut list).await).is_empty());

        let sent = writer
            .mutation(
                "messages:send",
                args(&[("body", ConvexValue::from("hello from rust"))]),
            )
            .await
            .unwrap();
        let FunctionResult::Value(ConvexValue::String(id)) = &sent else {
            panic!("{db:?}: the mutation returns the id, got {sent:?}")
        };
        assert_eq!(id.len(), 32);
        assert_eq!(
            bodies(&next_value(&mut list).await),
            vec!["hello from rust"]
        );

        // A large result (sent as several frames).
        let big = writer
            .query(
                "messages:big",
                args(&[("size", ConvexValue::Float64(100_000.0))]),
            )
            .await
            .unwrap();
        let FunctionResult::Value(ConvexValue::String(big)) = big else {
            panic!("{db:?}: {big:?}")
        };
        assert_eq!(big.len(), 100_002);

        // One-shot query (a temporary subscription), action, ConvexError.
        let count = writer
            .query("messages:count", BTreeMap::new())
            .await
            .unwrap();
        assert_eq!(count, FunctionResult::Value(ConvexValue::Float64(1.0)));
        let acted = writer
            .action(
                "messages:act",
                args(&[("body", ConvexValue::from("via action"))]),
            )
            .await
            .unwrap();
        let FunctionResult::Value(ConvexValue::Object(acted)) = acted else {
            panic!("{db:?}: action result {acted:?}")
        };
        assert_eq!(acted.get("count"), Some(&ConvexValue::Float64(2.0)));
        assert_eq!(
            bodies(&next_value(&mut list).await),
            vec!["hello from rust", "via action"]
        );
        match writer
            .mutation("messages:fail", BTreeMap::new())
            .await
            .unwrap()
        {
            FunctionResult::ConvexError(error) => {
                assert_eq!(error.message, "That message clashes with another");
                let ConvexValue::Object(data) = &error.data else {
                    panic!("data {:?}", error.data)
                };
                assert_eq!(data.get("code"), Some(&ConvexValue::from("CONFLICT")));
                assert_eq!(data.get("field"), Some(&ConvexValue::from("body")));
            }
            other => panic!("{db:?}: expected a ConvexError, got {other:?}"),
        }
        match writer
            .query("messages:boom", BTreeMap::new())
            .await
            .unwrap()
        {
            FunctionResult::ErrorMessage(message) => {
                assert!(message.ends_with("Server Error"), "{message}");
                assert!(!message.contains("secret"));
            }
            other => panic!("{db:?}: expected an error, got {other:?}"),
        }

        // Authentication: the identity reaches the functions; signing out ends the result.
        let token = match writer
            .mutation(
                "auth:login",
                args(&[("name", ConvexValue::from("rust-user"))]),
            )
            .await
            .unwrap()
        {
            FunctionResult::Value(ConvexValue::String(token)) => token,
            other => panic!("{db:?}: login returned {other:?}"),
        };
        watcher.set_auth(Some(token.clone())).await;
        let mut me = watcher.subscribe("auth:me", BTreeMap::new()).await.unwrap();
        let FunctionResult::Value(ConvexValue::Object(user)) = next_value(&mut me).await else {
            panic!("{db:?}: not signed in")
        };
        assert_eq!(user.get("name"), Some(&ConvexValue::from("rust-user")));
        writer
            .mutation("auth:logout", args(&[("token", ConvexValue::from(token))]))
            .await
            .unwrap();
        match next_value(&mut me).await {
            FunctionResult::ConvexError(error) => {
                let ConvexValue::Object(data) = &error.data else {
                    panic!("data {:?}", error.data)
                };
                assert_eq!(
                    data.get("code"),
                    Some(&ConvexValue::from("UNAUTHENTICATED"))
                );
            }
            other => panic!("{db:?}: expected the session to end, got {other:?}"),
        }

        // Unsubscribing: dropping the subscription removes the query from the server.
        let before = server.metric("sync_subscriptions").await;
        drop(list);
        let deadline = std::time::Instant::now() + PATIENCE;
        while server.metric("sync_subscriptions").await >= before {
            assert!(std::time::Instant::now() < deadline, "never unsubscribed");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        drop(me);
        drop(watcher);
        drop(writer);
        server.stop().await;
    }
}
