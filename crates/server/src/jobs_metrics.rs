//! The job queue's gauges for `GET /metrics`, read from the jobs table when scraped (counts come
//! from the index, so a scrape stays cheap with a large backlog).

use std::fmt::Write as _;

use functions::Runtime;

pub(crate) async fn render(runtime: &Runtime) -> String {
    let stats = match functions::jobs::stats(runtime.store()).await {
        Ok(stats) => stats,
        // No jobs table (a store not opened by `open_store`), or the database is down: no gauges
        // rather than wrong ones.
        Err(error) => {
            tracing::debug!(%error, "metrics: job queue stats unavailable");
            return String::new();
        }
    };
    let rows = [
        (
            "jobs_pending",
            "Jobs waiting to run (due or not).",
            stats.pending as f64,
        ),
        (
            "jobs_running",
            "Jobs leased by a worker.",
            stats.running as f64,
        ),
        (
            "jobs_dead",
            "Jobs that used up their attempts.",
            stats.dead as f64,
        ),
        (
            "jobs_oldest_pending_age_seconds",
            "How long the longest-waiting due pending job has waited.",
            stats.oldest_pending_age_ms / 1000.0,
        ),
    ];
    let mut out = String::new();
    for (name, help, value) in rows {
        let _ = writeln!(out, "# HELP supportsignal_{name} {help}");
        let _ = writeln!(out, "# TYPE supportsignal_{name} gauge");
        let _ = writeln!(out, "supportsignal_{name} {value}");
    }
    out
}
