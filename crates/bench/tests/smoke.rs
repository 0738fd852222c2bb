//! Smoke test: one short run of every scenario on SQLite, end to end through the server process.
//! It checks that requests succeed and get counted, never how fast they are.

use std::path::PathBuf;
use std::time::Duration;

use bench::runner::{Backend, Options};
use bench::scenarios::SeedPlan;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_without_errors_on_sqlite() {
    let options = Options {
        exe: PathBuf::from(env!("CARGO_BIN_EXE_supportsignal-bench")),
        clients: vec![2],
        warmup: Duration::from_millis(50),
        duration: Duration::from_millis(200),
        plan: SeedPlan {
            items: 200,
            groups: 4,
            payload_len: 20,
        },
        scenarios: Vec::new(),
        incident_sizes: vec![300, 600],
    };
    let report = bench::run(&options, &[Backend::Sqlite])
        .await
        .expect("benchmark runs");
    let names: Vec<_> = report.rows.iter().map(|r| r.scenario.as_str()).collect();
    assert_eq!(
        names,
        [
            "getOne",
            "range50",
            "authList50",
            "incidentList300",
            "incidentList600",
            "analysisQueue",
            "getAnalysis",
            "insert",
            "createIncident",
            "login"
        ]
    );
    for row in &report.rows {
        assert_eq!(row.errors, 0, "{row:?}: {:?}", report.error_samples);
        assert!(row.count > 0, "{row:?}");
    }
    let memory = &report.memory[0];
    assert!(memory.idle.rss_kib > 0 && memory.peak_under_load_kib >= memory.idle.rss_kib);
    let printed = bench::render(&options, 2, &report);
    assert!(printed.contains("| sqlite | getOne | 2 |"), "{printed}");
}
