//! Counters of what the background layer ran on this node (runs, failures, and the lag from a
//! run's due time to its start), kept in memory for `GET /metrics`. Per node, as Prometheus
//! expects: the scraper sums across nodes. The queue's depth and oldest age are read from the
//! database instead, since those are shared.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// What ran: a job of the queue, a scheduled function, or a cron tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    Job,
    Scheduled,
    Cron,
}

impl Work {
    const ALL: [Work; 3] = [Work::Job, Work::Scheduled, Work::Cron];

    fn label(self) -> &'static str {
        match self {
            Work::Job => "job",
            Work::Scheduled => "scheduled",
            Work::Cron => "cron",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Upper bounds (seconds) of the lag histogram's buckets: the goal (p99 < 100 ms) sits
/// between two of them, and a backlog of minutes still lands in a bucket.
const LAG_BOUNDS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 300.0,
];

#[derive(Default)]
struct PerWork {
    runs: AtomicU64,
    failures: AtomicU64,
    /// Cumulative counts are computed when rendering; each slot counts one bucket, the last
    /// one everything above the largest bound.
    lag_buckets: [AtomicU64; LAG_BOUNDS.len() + 1],
    /// Sum of lags in microseconds (an integer, so it can be an atomic).
    lag_sum_us: AtomicU64,
}

/// The counters; one per runtime, shared by the executor, the queue and the cron runner.
#[derive(Default)]
pub struct Activity {
    work: [PerWork; 3],
}

impl Activity {
    /// A run started `lag_ms` after it was due (negative lags, from clocks apart, count as 0).
    pub fn started(&self, work: Work, lag_ms: f64) {
        let counters = &self.work[work.index()];
        let lag = (lag_ms / 1000.0).max(0.0);
        let bucket = LAG_BOUNDS
            .iter()
            .position(|bound| lag <= *bound)
            .unwrap_or(LAG_BOUNDS.len());
        counters.lag_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        counters
            .lag_sum_us
            .fetch_add((lag * 1e6) as u64, Ordering::Relaxed);
    }

    /// A run ended; `failed` when its function failed.
    pub fn finished(&self, work: Work, failed: bool) {
        let counters = &self.work[work.index()];
        counters.runs.fetch_add(1, Ordering::Relaxed);
        if failed {
            counters.failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Runs that ended so far (for tests and tools).
    pub fn runs(&self, work: Work) -> u64 {
        self.work[work.index()].runs.load(Ordering::Relaxed)
    }

    /// Failed runs so far.
    pub fn failures(&self, work: Work) -> u64 {
        self.work[work.index()].failures.load(Ordering::Relaxed)
    }

    /// The Prometheus text of the counters and the lag histogram.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP supportsignal_background_runs_total Background runs this node finished, by kind."
        );
        let _ = writeln!(out, "# TYPE supportsignal_background_runs_total counter");
        for work in Work::ALL {
            let n = self.runs(work);
            let _ = writeln!(
                out,
                "supportsignal_background_runs_total{{kind=\"{}\"}} {n}",
                work.label()
            );
        }
        let _ = writeln!(
            out,
            "# HELP supportsignal_background_failures_total Background runs whose function failed, by kind."
        );
        let _ = writeln!(
            out,
            "# TYPE supportsignal_background_failures_total counter"
        );
        for work in Work::ALL {
            let n = self.failures(work);
            let _ = writeln!(
                out,
                "supportsignal_background_failures_total{{kind=\"{}\"}} {n}",
                work.label()
            );
        }
        let _ = writeln!(
            out,
            "# HELP supportsignal_background_start_lag_seconds Time from a run's due time to its start."
        );
        let _ = writeln!(
            out,
            "# TYPE supportsignal_background_start_lag_seconds histogram"
        );
        for work in Work::ALL {
            let counters = &self.work[work.index()];
            let label = work.label();
            let mut cumulative = 0;
            for (i, bucket) in counters.lag_buckets.iter().enumerate() {
                cumulative += bucket.load(Ordering::Relaxed);
                let le = LAG_BOUNDS
                    .get(i)
                    .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
                let _ = writeln!(
                    out,
                    "supportsignal_background_start_lag_seconds_bucket{{kind=\"{label}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let sum = counters.lag_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "supportsignal_background_start_lag_seconds_sum{{kind=\"{label}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "supportsignal_background_start_lag_seconds_count{{kind=\"{label}\"}} {cumulative}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lags_land_in_cumulative_buckets() {
        let activity = Activity::default();
        activity.started(Work::Job, 3.0);
        activity.started(Work::Job, 70.0);
        activity.started(Work::Job, 1_000_000.0);
        activity.finished(Work::Job, false);
        activity.finished(Work::Job, true);
        activity.started(Work::Cron, -5.0);
        let text = activity.render();
        let line = |needle: &str| {
            text.lines()
                .find(|l| l.starts_with(needle))
                .unwrap_or_else(|| panic!("{needle} missing from\n{text}"))
                .rsplit(' ')
                .next()
                .unwrap()
                .to_string()
        };
        let bucket = |kind: &str, le: &str| {
            line(&format!(
                "supportsignal_background_start_lag_seconds_bucket{{kind=\"{kind}\",le=\"{le}\"}}"
            ))
        };
        assert_eq!(bucket("job", "0.005"), "1");
        assert_eq!(bucket("job", "0.05"), "1");
        assert_eq!(bucket("job", "0.1"), "2");
        assert_eq!(bucket("job", "300"), "2");
        assert_eq!(bucket("job", "+Inf"), "3");
        assert_eq!(bucket("cron", "0.005"), "1");
        assert_eq!(
            line("supportsignal_background_runs_total{kind=\"job\"}"),
            "2"
        );
        assert_eq!(
            line("supportsignal_background_failures_total{kind=\"job\"}"),
            "1"
        );
        assert_eq!(
            line("supportsignal_background_runs_total{kind=\"scheduled\"}"),
            "0"
        );
    }
}
