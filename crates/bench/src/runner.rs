//! One backend's run: start the server process, seed, read idle memory, then for each scenario
//! prepare it (seeding only it needs), check it answers correctly, and measure its (scenario,
//! clients) cells while sampling the server's RSS.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::http::Connection;
use crate::load::{run_cell, CellConfig, RssSampler};
use crate::pg::FreshDatabase;
use crate::report::{MemoryReport, Row};
use crate::scenarios::{seed_requests, standard, Scenario, SeedPlan};
use crate::serve::{cpu_seconds, ServerProcess};

#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    /// A fresh database is created through this URL and dropped afterwards.
    Postgres {
        admin_url: String,
    },
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    /// The bench binary, re-executed as `serve` for the server process.
    pub exe: PathBuf,
    pub clients: Vec<usize>,
    pub warmup: Duration,
    pub duration: Duration,
    pub plan: SeedPlan,
    /// Scenario names to run; empty runs all.
    pub scenarios: Vec<String>,
    /// Company sizes (incidents) the incident list is measured at.
    pub incident_sizes: Vec<usize>,
}

pub struct BackendRun {
    pub rows: Vec<Row>,
    pub memory: MemoryReport,
    /// Error messages sampled from failed requests, for the report.
    pub error_samples: Vec<String>,
}

/// The scenarios `options` selects, failing on names that do not exist.
pub fn selected_scenarios(options: &Options) -> anyhow::Result<Vec<Arc<dyn Scenario>>> {
    let all = standard(options.plan, &options.incident_sizes);
    for wanted in &options.scenarios {
        if !all.iter().any(|s| s.name() == wanted) {
            let names: Vec<_> = all.iter().map(|s| s.name()).collect();
            anyhow::bail!("unknown scenario {wanted:?}; known: {}", names.join(", "));
        }
    }
    Ok(all
        .into_iter()
        .filter(|s| options.scenarios.is_empty() || options.scenarios.iter().any(|w| w == s.name()))
        .collect())
}

pub async fn run_backend(options: &Options, backend: &Backend) -> anyhow::Result<BackendRun> {
    match backend {
        Backend::Sqlite => run_on(options, backend.name(), None).await,
        Backend::Postgres { admin_url } => {
            let database = FreshDatabase::create(admin_url).await?;
            progress(format!("postgres: created database {}", database.name()));
            let result = run_on(options, backend.name(), Some(database.url.clone())).await;
            // Dropped whatever happened, so failed runs leave nothing behind either.
            let dropped = database.drop_database().await;
            let run = result?;
            dropped?;
            Ok(run)
        }
    }
}

async fn run_on(
    options: &Options,
    backend: &str,
    database_url: Option<String>,
) -> anyhow::Result<BackendRun> {
    let scenarios = selected_scenarios(options)?;
    let dir = tempfile::tempdir().context("creating a data directory")?;
    let (exe, data_dir) = (options.exe.clone(), dir.path().join("data"));
    let server = tokio::task::spawn_blocking(move || {
        ServerProcess::spawn(&exe, &data_dir, database_url.as_deref())
    })
    .await??;
    progress(format!(
        "{backend}: server pid {} on {}",
        server.pid(),
        server.addr
    ));

    let started = Instant::now();
    seed(server.addr, options.plan).await?;
    progress(format!(
        "{backend}: seeded {} items in {} groups in {:.1} s",
        options.plan.seeded(),
        options.plan.groups,
        started.elapsed().as_secs_f64()
    ));
    // Idle means after start-up and seeding have finished their work, not mid-commit.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = server.memory()?;

    let mut rows = Vec::new();
    let mut error_samples = Vec::new();
    let mut peak = idle.rss_kib;
    for scenario in &scenarios {
        let mut connection = Connection::open(server.addr).await?;
        scenario
            .prepare(&mut connection)
            .await
            .with_context(|| format!("preparing {}", scenario.name()))?;
        check_scenarios(server.addr, std::slice::from_ref(scenario)).await?;
        for &clients in &options.clients {
            let sampler = RssSampler::start(server.pid());
            let config = CellConfig {
                clients,
                warmup: options.warmup,
                duration: options.duration,
            };
            let cpu = CpuMeter::start(server.pid())?;
            let cell = run_cell(server.addr, scenario.clone(), config).await?;
            let (server_cpu, bench_cpu) = cpu.cores_used()?;
            peak = peak.max(sampler.finish().await);
            let row = Row {
                backend: backend.to_string(),
                scenario: scenario.name().to_string(),
                clients,
                requests_per_sec: cell.throughput(),
                p50_ms: cell.percentile_ms(0.50),
                p99_ms: cell.percentile_ms(0.99),
                count: cell.count,
                errors: cell.errors,
                server_cpu,
                bench_cpu,
            };
            progress(format!(
                "{backend} {} x{clients}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
                row.scenario, row.requests_per_sec, row.p50_ms, row.p99_ms, row.errors
            ));
            error_samples.extend(
                cell.error_samples
                    .into_iter()
                    .map(|e| format!("{backend} {} x{clients}: {e}", row.scenario)),
            );
            rows.push(row);
        }
    }
    let high_water_kib = server.memory()?.hwm_kib;
    tokio::task::spawn_blocking(move || server.stop()).await??;
    Ok(BackendRun {
        rows,
        memory: MemoryReport {
            backend: backend.to_string(),
            idle,
            peak_under_load_kib: peak,
            high_water_kib,
        },
        error_samples,
    })
}

/// CPU used by the server and by this process over a cell, in cores (1.0 = one core busy), so a
/// reader can tell whether the server or the load generator ran out of CPU.
struct CpuMeter {
    pid: String,
    started: Instant,
    server: f64,
    bench: f64,
}

impl CpuMeter {
    fn start(pid: u32) -> anyhow::Result<CpuMeter> {
        let pid = pid.to_string();
        Ok(CpuMeter {
            server: cpu_seconds(&pid)?,
            bench: cpu_seconds("self")?,
            started: Instant::now(),
            pid,
        })
    }

    fn cores_used(&self) -> anyhow::Result<(f64, f64)> {
        let wall = self.started.elapsed().as_secs_f64();
        let server = cpu_seconds(&self.pid)? - self.server;
        let bench = cpu_seconds("self")? - self.bench;
        Ok((server / wall, bench / wall))
    }
}

/// Seeds through the HTTP API, a few groups at a time so it stays short on slower commits.
async fn seed(addr: SocketAddr, plan: SeedPlan) -> anyhow::Result<()> {
    const PARALLEL: usize = 4;
    let requests: Vec<_> = seed_requests(plan).collect();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..PARALLEL {
        let mine: Vec<_> = requests
            .iter()
            .skip(worker)
            .step_by(PARALLEL)
            .cloned()
            .collect();
        workers.spawn(async move {
            let mut connection = Connection::open(addr).await?;
            for (path, args) in mine {
                connection
                    .call("mutation", &path, args)
                    .await
                    .context("seeding")?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = workers.join_next().await {
        done??;
    }
    seed_auth(addr).await
}

/// A company with a signed-in team lead and participants, created through the real API.
async fn seed_auth(addr: SocketAddr) -> anyhow::Result<()> {
    use crate::functions::{AUTH_TOKEN, PARTICIPANTS};
    let mut connection = Connection::open(addr).await?;
    connection
        .call("mutation", "bench:seedAuth", serde_json::json!({}))
        .await?;
    for i in 0..PARTICIPANTS {
        let args = serde_json::json!({
            "sessionToken": AUTH_TOKEN,
            "first_name": format!("Pat{i:03}"),
            "last_name": format!("Person{i:03}"),
            "date_of_birth": "1985-04-12",
            "ndis_number": format!("43{:07}", i),
            "support_level": "medium",
        });
        connection
            .call("mutation", "participants/create:createParticipant", args)
            .await
            .context("seeding participants")?;
    }
    Ok(())
}

/// Calls each scenario a few times and checks the answers in full: a scenario must do its work
/// correctly before its speed means anything.
async fn check_scenarios(addr: SocketAddr, scenarios: &[Arc<dyn Scenario>]) -> anyhow::Result<()> {
    let mut connection = Connection::open(addr).await?;
    // A client index no load client uses, so checks never repeat a measured request.
    let client = usize::MAX;
    for scenario in scenarios {
        let headers = scenario.headers(client);
        for seq in 0..3 {
            let (status, body) = connection
                .post(scenario.route(), scenario.body(client, seq), &headers)
                .await?;
            let parsed: serde_json::Value = serde_json::from_slice(&body)
                .with_context(|| format!("{}: HTTP {status}, body is not JSON", scenario.name()))?;
            if parsed["status"] != "success" {
                anyhow::bail!("{}: HTTP {status}: {parsed}", scenario.name());
            }
            scenario
                .check(client, seq, &parsed["value"])
                .map_err(|problem| anyhow::anyhow!("{}: {problem}", scenario.name()))?;
        }
    }
    Ok(())
}

/// Progress goes to stderr so stdout carries only the report.
pub fn progress(message: String) {
    eprintln!("[bench] {message}");
}
