//! `supportsignal jobs`: an operator at a shell lists the dead jobs the application left, retries
//! one and cancels a pending one, on the same data directory as the (stopped) server.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use functions::jobs::{JobOptions, JobState};
use functions::{FnResult, FunctionError, FunctionRef, MutationCtx, Registry};
use serde::{Deserialize, Serialize};
use store::Schema;
use values::Typed;

#[derive(Serialize, Deserialize, Typed)]
struct NoArgs {}

const FAILS: FunctionRef<NoArgs, ()> = FunctionRef::internal_mutation("testing:alwaysFails");

fn extend(schema: Schema, r: &mut Registry) -> Schema {
    r.internal_mutation(
        FAILS,
        |_: &mut MutationCtx<'_>, _: NoArgs| -> FnResult<()> {
            Err(FunctionError::internal("the relay said no"))
        },
    );
    schema
}

/// `supportsignal jobs --data-dir <data> <args>`.
fn supportsignal(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_supportsignal"))
        .arg("jobs")
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("DATABASE_URL")
        .env("SUPPORTSIGNAL_ENV", "test")
        .output()
        .expect("running supportsignal")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn operators_list_retry_and_cancel_jobs_from_the_shell() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = config::Config::from_env(
        config::Overrides {
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some(data.clone()),
            database_url: None,
        },
        |k| (k == "SUPPORTSIGNAL_ENV").then(|| "test".to_string()),
    )
    .unwrap();
    let options = app::Options {
        extend: Some(Box::new(extend)),
        ..app::Options::default()
    };
    let running = app::start_with(config, options).await.unwrap();
    let runtime = running.runtime.clone();
    let once = JobOptions {
        max_attempts: 1,
        ..JobOptions::default()
    };
    let dead = functions::jobs::enqueue(
        &runtime,
        FAILS.path(),
        values::Value::Object(Default::default()),
        once,
    )
    .await
    .unwrap();
    let later = JobOptions {
        delay_ms: 3_600_000.0,
        ..JobOptions::default()
    };
    let pending = functions::jobs::enqueue(
        &runtime,
        FAILS.path(),
        values::Value::Object(Default::default()),
        later,
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while functions::jobs::get(runtime.store(), &dead)
        .await
        .unwrap()
        .is_none_or(|job| job.state != JobState::Dead)
    {
        assert!(Instant::now() < deadline, "the job never died");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.stop().await.unwrap();

    let (dead, pending) = (dead.encode(), pending.encode());
    let listed = stdout(&supportsignal(&data, &["list", "--json"]));
    let rows: Vec<serde_json::Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{listed}");
    assert_eq!(rows[0]["id"], dead.as_str());
    assert_eq!(rows[0]["function"], "testing:alwaysFails");
    assert_eq!(rows[0]["state"], "dead");
    assert!(rows[0]["lastError"].is_string());
    let table = stdout(&supportsignal(&data, &["list", "--state", "pending"]));
    assert!(
        table.contains(&pending) && table.contains("testing:alwaysFails"),
        "{table}"
    );

    assert!(stdout(&supportsignal(&data, &["retry", &dead])).contains("pending again"));
    // Retried once: it is no longer dead, and retrying it again is refused with its state.
    let again = supportsignal(&data, &["retry", &dead]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("is pending"));
    assert!(stdout(&supportsignal(&data, &["cancel", &pending])).contains("canceled"));
    let canceled = stdout(&supportsignal(
        &data,
        &["list", "--state", "canceled", "--json"],
    ));
    assert!(canceled.contains(&pending), "{canceled}");
    let bad = supportsignal(&data, &["cancel", "not-an-id"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a job's Id"));
}
