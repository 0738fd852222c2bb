//! Crash safety: SIGKILL the server in the middle of a stream of mutations, restart it, and check that
//! every acknowledged write is there and the database is intact.
//!
//! The server must be a separate process to be killed, so this test binary re-runs itself: the
//! ignored test `crash_child_process` is the server half, started by the real test with
//! `--ignored --exact`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

const CHILD_ENV: &str = "SS_CRASH_CHILD_DATA_DIR";

#[test]
#[ignore = "the server half of sigkill_mid_stream_loses_no_acknowledged_write; it starts this itself"]
fn crash_child_process() {
    let dir = std::env::var(CHILD_ENV).expect("started by the crash test");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let env: [(&str, &str); 1] = [("SUPPORTSIGNAL_ENV", "test")];
        let overrides = config::Overrides {
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some(dir.into()),
            database_url: None,
        };
        let config = config::Config::from_env(overrides, |k| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
        .unwrap();
        let store = server::open_store(&config, common::functions_under_test::schema())
            .await
            .unwrap();
        let running = server::start(
            config,
            store,
            common::functions_under_test::registry(),
            std::future::pending(),
        )
        .await
        .unwrap();
        println!("LISTENING {}", running.addr);
        running.wait().await.unwrap();
    });
}

fn spawn_child(dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("re-run the test binary as a server");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines.next().expect("child printed its address").unwrap();
        // libtest prints "test crash_child_process ... " without a newline first.
        if let Some((_, addr)) = line.split_once("LISTENING ") {
            break addr.trim().to_string();
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, format!("http://{addr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_stream_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut child, url) = spawn_child(&data);
    let http = reqwest::Client::new();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();

    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (http, url, acked) = (http.clone(), url.clone(), acked.clone());
            tokio::spawn(async move {
                // Bounded, so a server that stops acknowledging cannot hang the test.
                for i in 0..100_000 {
                    let body = json!({"path": "messages:send", "args": [{"body": format!("w{w}-{i}"), "author": format!("w{w}")}]});
                    let Ok(response) = http.post(format!("{url}/api/mutation")).json(&body).send().await else { break };
                    let Ok(reply) = response.json::<serde_json::Value>().await else { break };
                    if reply["status"] == "success" {
                        acked.lock().unwrap().push(reply["value"].as_str().unwrap().to_string());
                    }
                }
            })
        })
        .collect();

    // Kill once a good number of writes are acknowledged and more are in flight.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while acked.lock().unwrap().len() < 400 {
        assert!(
            std::time::Instant::now() < deadline,
            "writes are not being acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix.
    child.wait().unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    // The database file passes SQLite's integrity check after the crash.
    let db = rusqlite::Connection::open(data.join("supportsignal.db")).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(db);

    let (mut child, url) = spawn_child(&data);
    let reply: serde_json::Value = http
        .post(format!("{url}/api/query"))
        .json(&json!({"path": "messages:list", "args": [{}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let present: std::collections::HashSet<&str> = reply["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["_id"].as_str().unwrap())
        .collect();
    let missing: Vec<_> = acked
        .iter()
        .filter(|id| !present.contains(id.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes lost: {missing:?}",
        missing.len(),
        acked.len()
    );
    eprintln!(
        "{} acknowledged, {} present after SIGKILL and restart",
        acked.len(),
        present.len()
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
