//! Runs steps of the Node scripts in `tests/npm` (which use the official `convex` npm client)
//! against a test server: each step is one `node <script> <url> <step> <input JSON>` run whose
//! last line of output is its JSON result.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

use serde_json::Value as Json;

fn npm_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/npm")
}

/// Installs the client from the npm registry on first use (package-lock.json pins the version).
pub fn ensure_client_installed() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
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
    });
}

/// Runs step `name` of `script` against the server at `url` (on a blocking thread); `label` names
/// the run in failures (e.g. the backend).
pub async fn step(script: &'static str, url: &str, name: &str, input: Json, label: String) -> Json {
    let args = vec![url.to_string(), name.to_string(), input.to_string()];
    node(script, args, label).await
}

/// Runs `script` with the server's `url` and `input` as its arguments (on a blocking thread).
pub async fn run(script: &'static str, url: &str, input: Json, label: String) -> Json {
    node(script, vec![url.to_string(), input.to_string()], label).await
}

/// `node <script> <args...>` in `tests/npm`; the JSON on the last line of its output.
async fn node(script: &'static str, args: Vec<String>, label: String) -> Json {
    tokio::task::spawn_blocking(move || {
        let output = Command::new("node")
            .arg(script)
            .args(&args)
            .current_dir(npm_dir())
            .output()
            .expect("node runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let what = args.get(1).map(String::as_str).unwrap_or_default();
        assert!(
            output.status.success(),
            "{label}: {script} {what} failed:\n{stdout}\n{stderr}"
        );
        let last = stdout.lines().last().unwrap_or_default();
        serde_json::from_str(last)
            .unwrap_or_else(|e| panic!("{script} {what}: bad output ({e}):\n{stdout}\n{stderr}"))
    })
    .await
    .unwrap()
}
