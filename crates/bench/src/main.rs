//! `supportsignal-bench`: parses the command line; the hidden `serve` subcommand is the server
//! process the benchmark starts from its own executable.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use bench::runner::{Backend, Options};
use bench::scenarios::SeedPlan;
use clap::{Parser, Subcommand};

// Request handling allocates many small short-lived buffers; mimalloc's thread-local free lists
// measured 20-25% more throughput than the system allocator on the 50-document range query.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "supportsignal-bench",
    about = "Loopback HTTP benchmark of the supportsignal server on SQLite and PostgreSQL"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Live queries: WebSocket subscribers over many companies' lists, one mutation at a time.
    Live(LiveArgs),
    /// Internal: the server process the benchmark measures.
    #[command(hide = true)]
    Serve {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long, env = "DATABASE_URL")]
        database_url: Option<String>,
    },
}

#[derive(clap::Args)]
struct LiveArgs {
    /// WebSocket connections, each subscribed to one company's list.
    #[arg(long, default_value_t = 10_000)]
    subscribers: usize,
    /// Companies the subscribers are spread over.
    #[arg(long, default_value_t = 100)]
    companies: usize,
    /// Items each company's list starts with.
    #[arg(long, default_value_t = 20)]
    items_per_company: usize,
    /// Mutations measured, one at a time.
    #[arg(long, default_value_t = 200)]
    mutations: usize,
    /// Also run on PostgreSQL: a fresh database is created through this URL and dropped after.
    #[arg(long, env = "BENCH_DATABASE_URL")]
    postgres_url: Option<String>,
    /// Skip SQLite.
    #[arg(long)]
    no_sqlite: bool,
    /// Worker threads of the client runtime.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Concurrent clients per cell.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    clients: Vec<usize>,
    /// Seconds of load before measuring, per cell.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Seconds measured per cell.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Smoke run: 0.2 s warm-up and 0.5 s measured per cell.
    #[arg(long)]
    quick: bool,
    /// Scenarios to run (getOne, range50, authList50, incidentList<size>, analysisQueue,
    /// getAnalysis, insert, createIncident, login); all by default.
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Also run on PostgreSQL: a fresh database is created through this URL and dropped after.
    #[arg(long, env = "BENCH_DATABASE_URL")]
    postgres_url: Option<String>,
    /// Skip SQLite (e.g. to measure only PostgreSQL).
    #[arg(long)]
    no_sqlite: bool,
    /// Worker threads of the load generator's runtime.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// Documents seeded before measuring.
    #[arg(long, default_value_t = 10_000)]
    items: usize,
    /// Groups the documents are spread over (items / groups must be at least 50).
    #[arg(long, default_value_t = 200)]
    groups: usize,
    /// Bytes of the `payload` field of each document.
    #[arg(long, default_value_t = 100)]
    payload_len: usize,
    /// Company sizes (incidents) the incident list is measured at; each is seeded before its
    /// measurement, so the largest sets how long the run takes.
    #[arg(long, value_delimiter = ',', default_value = "10000,1000000")]
    incidents: Vec<usize>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Serve {
            data_dir,
            database_url,
        }) => bench::serve::serve_main(data_dir, database_url).map(|()| ExitCode::SUCCESS),
        Some(Command::Live(args)) => live_main(args),
        None => bench_main(cli.run),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::FAILURE
    })
}

fn live_main(args: LiveArgs) -> anyhow::Result<ExitCode> {
    let options = bench::live::LiveOptions {
        exe: std::env::current_exe().context("locating the bench executable")?,
        subscribers: args.subscribers,
        companies: args.companies,
        items_per_company: args.items_per_company,
        mutations: args.mutations,
        connect_parallelism: 64,
    };
    let mut backends = Vec::new();
    if !args.no_sqlite {
        backends.push(Backend::Sqlite);
    }
    if let Some(admin_url) = args.postgres_url {
        backends.push(Backend::Postgres { admin_url });
    }
    anyhow::ensure!(
        !backends.is_empty(),
        "nothing to run: --no-sqlite without --postgres-url"
    );
    anyhow::ensure!(args.client_threads > 0, "--client-threads must be positive");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .enable_all()
        .build()
        .context("starting the client runtime")?;
    let reports = runtime.block_on(async {
        let mut reports = Vec::new();
        for backend in &backends {
            reports.push(bench::live::run(&options, backend).await?);
        }
        anyhow::Ok(reports)
    })?;
    println!(
        "# supportsignal live-query benchmark, {}\n",
        bench::report::utc_now()
    );
    println!("{}\n", bench::report::machine_line());
    let profile = if cfg!(debug_assertions) {
        "DEBUG build: figures are meaningless, use --release"
    } else {
        "release build"
    };
    println!(
        "{profile}; the server runs as its own process; subscribers, the writer and the server share the machine's cores.\n"
    );
    print!("{}", bench::live::render(&reports));
    Ok(ExitCode::SUCCESS)
}

fn bench_main(args: RunArgs) -> anyhow::Result<ExitCode> {
    let plan = SeedPlan {
        items: args.items,
        groups: args.groups,
        payload_len: args.payload_len,
    };
    plan.validate().map_err(anyhow::Error::msg)?;
    anyhow::ensure!(
        !args.clients.is_empty() && !args.clients.contains(&0),
        "--clients needs positive counts"
    );
    anyhow::ensure!(args.client_threads > 0, "--client-threads must be positive");
    let (warmup, duration) = if args.quick {
        (0.2, 0.5)
    } else {
        (args.warmup, args.duration)
    };
    let seconds = |s: f64, flag: &str| {
        Duration::try_from_secs_f64(s)
            .ok()
            .filter(|_| s.is_finite())
            .with_context(|| format!("{flag} must be a number of seconds"))
    };
    let options = Options {
        exe: std::env::current_exe().context("locating the bench executable")?,
        clients: args.clients,
        warmup: seconds(warmup, "--warmup")?,
        duration: seconds(duration, "--duration")?,
        plan,
        scenarios: args.scenarios,
        incident_sizes: args.incidents,
    };
    anyhow::ensure!(!options.duration.is_zero(), "--duration must be positive");
    bench::runner::selected_scenarios(&options)?;
    let mut backends = Vec::new();
    if !args.no_sqlite {
        backends.push(Backend::Sqlite);
    }
    if let Some(admin_url) = args.postgres_url {
        backends.push(Backend::Postgres { admin_url });
    }
    anyhow::ensure!(
        !backends.is_empty(),
        "nothing to run: --no-sqlite without --postgres-url"
    );

    // Few threads on purpose: every thread the client uses is taken from the server's cores.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .enable_all()
        .build()
        .context("starting the client runtime")?;
    let report = runtime.block_on(bench::run(&options, &backends))?;
    print!("{}", bench::render(&options, args.client_threads, &report));
    // Failed requests make the run fail, so a script or CI job cannot mistake it for a clean one.
    Ok(if report.total_errors() > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
