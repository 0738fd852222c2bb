//! `supportsignal-bench`: load over loopback HTTP against the server running as its own process, on
//! SQLite and PostgreSQL, reporting throughput, latency percentiles and server memory.

pub mod functions;
pub mod http;
pub mod live;
pub mod load;
pub mod pg;
pub mod report;
pub mod runner;
pub mod scenarios;
pub mod serve;

use std::fmt::Write as _;

use report::{goal_lines, machine_line, memory_table, results_table, utc_now, MemoryReport, Row};
use runner::{run_backend, Backend, Options};

/// Everything one invocation measured.
pub struct Report {
    pub rows: Vec<Row>,
    pub memory: Vec<MemoryReport>,
    pub error_samples: Vec<String>,
}

impl Report {
    pub fn total_errors(&self) -> u64 {
        self.rows.iter().map(|r| r.errors).sum()
    }
}

/// Runs every backend in turn (never at once: they would compete for the same cores).
pub async fn run(options: &Options, backends: &[Backend]) -> anyhow::Result<Report> {
    let mut report = Report {
        rows: Vec::new(),
        memory: Vec::new(),
        error_samples: Vec::new(),
    };
    for backend in backends {
        let run = run_backend(options, backend).await?;
        report.rows.extend(run.rows);
        report.memory.push(run.memory);
        report.error_samples.extend(run.error_samples);
    }
    Ok(report)
}

/// The markdown printed on stdout.
pub fn render(options: &Options, client_threads: usize, report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# supportsignal benchmark, {}\n", utc_now());
    let _ = writeln!(out, "{}\n", machine_line());
    let profile = if cfg!(debug_assertions) {
        "DEBUG build: figures are meaningless, use --release"
    } else {
        "release build"
    };
    let _ = writeln!(
        out,
        "{profile}; {} items in {} groups ({} B payload); {:.1} s warm-up + {:.1} s measured per cell; \
         closed loop, one keep-alive HTTP/1.1 connection per client over loopback.\n",
        options.plan.seeded(),
        options.plan.groups,
        options.plan.payload_len,
        options.warmup.as_secs_f64(),
        options.duration.as_secs_f64(),
    );
    let _ = writeln!(
        out,
        "SQLite runs in a fresh directory under {} (WAL, synchronous=FULL: an insert is fsynced before it is \
         answered); PostgreSQL in a fresh database.\n",
        std::env::temp_dir().display()
    );
    let _ = writeln!(
        out,
        "Note: the load generator ({client_threads} client threads) runs on the same cores as the server, \
         so it takes CPU the server would otherwise have; the figures are lower than the server alone could do. \
         `server CPU` and `bench CPU` are the cores each process used during the cell.\n"
    );
    out.push_str(&results_table(&report.rows));
    out.push('\n');
    out.push_str("Server process memory (PostgreSQL's own processes not included):\n\n");
    out.push_str(&memory_table(&report.memory));
    let goals = goal_lines(&report.rows);
    if !goals.is_empty() {
        out.push_str("\nGoals (SQLite):\n\n");
        for line in goals {
            let _ = writeln!(out, "- {line}");
        }
    }
    let errors = report.total_errors();
    if errors > 0 {
        let _ = writeln!(out, "\n**{errors} requests FAILED.** First errors:\n");
        for sample in &report.error_samples {
            let _ = writeln!(out, "- {sample}");
        }
    }
    out
}
