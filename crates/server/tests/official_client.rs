//! The official npm `convex` client (ConvexHttpClient) against the real server.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{backends, Place, TestServer};

fn npm_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/npm")
}

/// Installs the client from the npm registry on first use (package-lock.json pins the version).
fn ensure_client_installed() {
    let dir = npm_dir();
    if dir.join("node_modules/convex/package.json").exists() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
        .current_dir(&dir)
        .status()
        .expect("npm is installed (Node.js 18 or newer is needed for this test)");
    assert!(status.success(), "npm ci failed in {}", dir.display());
}

fn run_node(script: &str, url: &str) -> serde_json::Value {
    let output = Command::new("node")
        .arg(script)
        .arg(url)
        .current_dir(npm_dir())
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "node {script} failed:\n{stdout}\n{stderr}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("bad output ({e}):\n{stdout}\n{stderr}"))
}

#[tokio::test]
async fn convex_http_client_works_unchanged() {
    tokio::task::spawn_blocking(ensure_client_installed)
        .await
        .unwrap();
    for db in backends() {
        let place = Place::new(db).await;
        let server = TestServer::start(&place).await;
        let url = server.url.clone();
        let out = tokio::task::spawn_blocking(move || run_node("http_client.mjs", &url))
            .await
            .unwrap();
        eprintln!("{db:?}: {out}");

        let id = out["sent"].as_str().expect("mutation result is the id");
        assert_eq!(id.len(), 32);
        assert_eq!(out["list"][0]["_id"], id);
        assert_eq!(out["list"][0]["n"], "5n", "int64 arrives as a bigint");
        assert_eq!(out["acted"]["count"], 2);
        assert_eq!(
            out["echo"]["big"], "9007199254740993n",
            "int64 beyond 2^53 survives"
        );
        assert_eq!(out["echo"]["bytes"], serde_json::json!([1, 2, 255]));
        assert_eq!(out["echo"]["neg"], "-0");

        let failure = &out["failure"];
        assert_eq!(failure["isConvexError"], true, "{failure}");
        assert_eq!(
            failure["data"],
            serde_json::json!({"code": "CONFLICT", "message": "That message clashes with another", "field": "body"})
        );
        assert_eq!(out["internal"]["isConvexError"], false);
        assert!(out["internal"]["message"]
            .as_str()
            .unwrap()
            .contains("Server Error"));
        assert_eq!(
            out["whoami"], "token of length 18",
            "setAuth sends a bearer token"
        );
        assert_eq!(out["count"], 2);
        server.stop().await;
    }
}
