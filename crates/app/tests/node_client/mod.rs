//! Runs steps of the Node scripts in `tests/npm` (which use the official `convex` npm client)
//! against a test server: each step is one `node <script> <url> <step> <input JSON>` run whose
//! last line of output is its JSON result.

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
    let (url, name) = (url.to_string(), name.to_string());
    tokio::task::spawn_blocking(move || {
        let output = Command::new("node")
            .arg(script)
            .arg(&url)
            .arg(&name)
            .arg(input.to_string())
            .current_dir(npm_dir())
            .output()
            .expect("node runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{label}: step {name} failed:\n{stdout}\n{stderr}"
        );
        let last = stdout.lines().last().unwrap_or_default();
        serde_json::from_str(last)
            .unwrap_or_else(|e| panic!("step {name}: bad output ({e}):\n{stdout}\n{stderr}"))
    })
    .await
    .unwrap()
}
