//! The database failing under a running server: an outage of a private PostgreSQL the test starts
//! and stops itself (live queries recover), a connection lost during COMMIT, and a database that
//! stops taking writes (`/health` and the write's error say so), the last two injected.

mod common;
mod sync_support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Db, Place};
use config::{Config, Overrides};
use serde_json::{json, Value as Json};
use store::Fault;
use sync_support::{modification, Raw};

/// A PostgreSQL server of the test's own (initdb into a temporary directory, a free port), so it
/// can be stopped and started again under a running server.
struct PrivatePg {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// Commands run as this user (`initdb` refuses to run as root).
    run_as: Option<String>,
}

impl PrivatePg {
    /// `None`, with the reason printed, where the PostgreSQL server binaries are not installed.
    fn create() -> Option<PrivatePg> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .into_iter()
            .flatten()
            .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
            .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
            .max();
        let Some(bin) = bin else {
            eprintln!("no initdb/pg_ctl under /usr/lib/postgresql/*/bin: outage test skipped");
            return None;
        };
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
        let run_as = root.then(|| "postgres".to_string());
        let dir = tempfile::tempdir().expect("tempdir");
        if let Some(user) = &run_as {
            let owned = Command::new("chown")
                .arg(format!("{user}:"))
                .arg(dir.path())
                .status();
            if !owned.is_ok_and(|s| s.success()) {
                eprintln!("running as root without a {user} user for initdb: outage test skipped");
                return None;
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = PrivatePg {
            bin,
            dir,
            port,
            run_as,
        };
        let data = pg.data();
        pg.run(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        Some(pg)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let tool = self.bin.join(tool);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&tool);
                c
            }
            None => Command::new(&tool),
        };
        let out = command.args(args).output().expect("run a PostgreSQL tool");
        assert!(
            out.status.success(),
            "{} {args:?} failed: {}{}",
            tool.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
    }

    /// Stops it the way an operator restarting it would: sessions are ended.
    fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let tool = self.bin.join("pg_ctl");
        let data = self.data();
        let args = ["-D", data.as_str(), "-m", "immediate", "stop"];
        let _ = match &self.run_as {
            Some(user) => Command::new("runuser")
                .args(["-u", user, "--"])
                .arg(&tool)
                .args(args)
                .output(),
            None => Command::new(&tool).args(args).output(),
        };
    }
}

fn config(data_dir: &Path, database_url: Option<String>) -> Config {
    let env: HashMap<String, String> = [("SUPPORTSIGNAL_ENV".to_string(), "test".to_string())]
        .into_iter()
        .collect();
    let overrides = Overrides {
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(data_dir.to_path_buf()),
        database_url,
    };
    Config::from_env(overrides, move |k| env.get(k).cloned()).expect("test configuration")
}

/// A server with the sync test functions, and its store (to inject faults into).
struct Node {
    url: String,
    ws_url: String,
    store: store::Store,
    http: reqwest::Client,
    running: Option<server::Running>,
}

impl Node {
    async fn start(config: Config) -> Node {
        let store = server::open_store(&config, sync_support::functions::schema())
            .await
            .expect("open store");
        let running = server::start(
            config,
            store.clone(),
            sync_support::functions::registry(),
            std::future::pending(),
        )
        .await
        .expect("server starts");
        Node {
            url: format!("http://{}", running.addr),
            ws_url: format!("ws://{}/api/1.48.0/sync", running.addr),
            store,
            http: reqwest::Client::new(),
            running: Some(running),
        }
    }

    async fn call(&self, kind: &str, path: &str, args: Json) -> Json {
        self.http
            .post(format!("{}/api/{kind}", self.url))
            .json(&json!({"path": path, "format": "convex_encoded_json", "args": [args]}))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("JSON body")
    }

    async fn health(&self) -> (u16, Json) {
        let response = self
            .http
            .get(format!("{}/health", self.url))
            .send()
            .await
            .expect("health");
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.stop().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn live_queries_recover_after_a_database_outage() {
    let Some(pg) = PrivatePg::create() else {
        return;
    };
    pg.start();
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(config(dir.path(), Some(pg.url()))).await;
    let mut watcher = Raw::connect(&node.ws_url).await;
    let list = watcher.add(0, 0, "messages:list", json!({})).await;
    assert_eq!(list["value"], json!([]), "{list}");

    pg.stop();
    // A subscription made during the outage fails, honestly.
    let failed = watcher.add(1, 1, "messages:count", json!({})).await;
    assert_eq!(failed["type"], "QueryFailed", "{failed}");
    // So do writes: nothing reached the database, so trying again later is right.
    let refused = node
        .call("mutation", "messages:send", json!({"body": "during"}))
        .await;
    assert_eq!(refused["errorData"]["code"], "UNAVAILABLE", "{refused}");
    let (status, health) = node.health().await;
    assert_eq!((status, &health["database"]), (503, &json!("unavailable")));

    pg.start();
    let mut written = json!(null);
    for _ in 0..50 {
        written = node
            .call("mutation", "messages:send", json!({"body": "after"}))
            .await;
        if written["status"] == "success" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(written["status"], "success", "{written}");

    // Both subscriptions catch up: the one subscribed before the outage through the feed, the one
    // that failed during it by being retried.
    // (Pings keep `next` from timing out, hence the deadline around it.)
    let recovered = tokio::time::timeout(Duration::from_secs(30), async {
        let (mut list_done, mut count_done) = (false, false);
        while !(list_done && count_done) {
            let Some(message) = watcher.next().await else {
                panic!("closed while recovering: {:?}", watcher.log);
            };
            if let Some(list) = modification(&message, 0) {
                list_done = list["value"].as_array().is_some_and(|a| a.len() == 1);
            }
            if let Some(count) = modification(&message, 1) {
                count_done = count["value"] == json!(1.0);
            }
        }
    })
    .await;
    assert!(
        recovered.is_ok(),
        "a subscriber stayed stale after the outage: {:?}",
        watcher.log
    );
    let (status, health) = node.health().await;
    assert_eq!(
        (status, &health["database"]),
        (200, &json!("ok")),
        "{health}"
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn health_and_failed_writes_tell_a_full_disk_from_an_outage() {
    for db in common::backends() {
        let place = Place::new(db).await;
        let node = Node::start(place.config(&[])).await;
        let (status, health) = node.health().await;
        assert_eq!(status, 200, "{db:?}: {health}");

        // Reads work, writes do not: the node is not healthy, and says why.
        node.store.inject_fault(Some(Fault::DiskFull));
        let refused = node
            .call("mutation", "messages:send", json!({"body": "no room"}))
            .await;
        assert_eq!(refused["status"], "error", "{db:?}: {refused}");
        assert_eq!(
            refused["errorData"]["code"], "STORAGE_FULL",
            "{db:?}: {refused}"
        );
        let (status, health) = node.health().await;
        assert_eq!(status, 503, "{db:?}: {health}");
        assert_eq!(health["database"], "storage_full", "{db:?}: {health}");
        assert_eq!(health["code"], "STORAGE_FULL", "{db:?}: {health}");
        let count = node.call("query", "messages:count", json!({})).await;
        assert_eq!(count["value"], 0.0, "{db:?}: reads still work: {count}");

        // Space again: the next write succeeds and health follows it.
        node.store.inject_fault(None);
        let sent = node
            .call("mutation", "messages:send", json!({"body": "room"}))
            .await;
        assert_eq!(sent["status"], "success", "{db:?}: {sent}");
        let (status, health) = node.health().await;
        assert_eq!(status, 200, "{db:?}: {health}");
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknowable_commit_is_answered_commit_unknown_not_try_again() {
    if std::env::var("TEST_DATABASE_URL").is_err() {
        eprintln!("TEST_DATABASE_URL not set: skipped");
        return;
    }
    let place = Place::new(Db::Postgres).await;
    let node = Node::start(place.config(&[])).await;
    node.store.inject_fault(Some(Fault::CommitUnknowable));
    let answer = node
        .call("mutation", "messages:send", json!({"body": "maybe"}))
        .await;
    assert_eq!(answer["errorData"]["code"], "COMMIT_UNKNOWN", "{answer}");
    let message = answer["errorMessage"].as_str().unwrap_or_default();
    assert!(!message.contains("try again"), "{answer}");
    node.store.inject_fault(None);
    node.stop().await;
}
