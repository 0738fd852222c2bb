//! Smoke test of the live-query benchmark: a few hundred WebSocket subscribers on SQLite, through
//! the server process. It checks that every affected subscriber gets each update and that commits
//! to one company reach only that company's subscribers, never how fast.

use std::path::PathBuf;

use bench::live::LiveOptions;
use bench::runner::Backend;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_affected_subscriber_is_updated_and_no_other() {
    let options = LiveOptions {
        exe: PathBuf::from(env!("CARGO_BIN_EXE_supportsignal-bench")),
        subscribers: 200,
        companies: 4,
        items_per_company: 5,
        mutations: 12,
        connect_parallelism: 16,
    };
    // The run fails if any of a company's 50 subscribers misses an update.
    let report = bench::live::run(&options, &Backend::Sqlite)
        .await
        .expect("live benchmark runs");
    assert_eq!(
        report.pushes_per_commit, 50.0,
        "each commit updates exactly the 50 subscribers of its company: {report:?}"
    );
    assert!(
        report.runs_per_commit >= 1.0 && report.runs_per_commit <= 50.0,
        "{report:?}"
    );
    assert!(report.idle_with_subscriptions.rss_kib > 0);
    let printed = bench::live::render(&[report]);
    assert!(printed.contains("| sqlite | 200 | 4 | 12 |"), "{printed}");
}
