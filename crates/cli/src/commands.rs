//! The subcommands: serve, migrate, admin, functions, codegen.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use config::{Config, Overrides};
use secrecy::SecretString;

#[derive(Parser)]
#[command(name = "supportsignal", version, about = "The SupportSignal backend")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (SQLite in ./data and 127.0.0.1:3210 unless configured otherwise).
    Serve(Where),
    /// Apply database migrations and exit.
    Migrate(Where),
    /// Administrative tasks.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
        #[command(flatten)]
        place: Where,
    },
    /// See and act on the job queue (works while the server runs).
    Jobs {
        #[command(subcommand)]
        command: crate::jobs::JobsCommand,
        #[command(flatten)]
        place: Where,
    },
    /// Print the spec of every function (path, kind, args and returns validators) as JSON.
    Functions,
    /// Write the TypeScript a Convex client app imports from `convex/_generated` (api.d.ts,
    /// api.js, dataModel.d.ts), typed from the functions' validators and the tables.
    Codegen {
        /// The directory to write into, e.g. ../web/convex/_generated.
        #[arg(long)]
        out: PathBuf,
        /// Write nothing; exit non-zero, naming the files, when those in --out differ from what
        /// would be written (for a client repository's CI).
        #[arg(long)]
        check: bool,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a system administrator. The password comes from --password-stdin or
    /// SUPPORTSIGNAL_ADMIN_PASSWORD.
    CreateSystemAdmin {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Write a consistent copy of the SQLite database to a new file; safe while the server runs.
    /// (With PostgreSQL, use pg_dump.)
    Backup {
        /// The file to create; it must not exist.
        #[arg(long)]
        to: PathBuf,
    },
}

/// Where the server listens and keeps its data; flags win over the environment.
#[derive(Args, Clone, Default)]
struct Where {
    /// Address to listen on [env: SUPPORTSIGNAL_LISTEN] [default: 127.0.0.1:3210]
    #[arg(long)]
    listen: Option<String>,
    /// Directory for the SQLite database and files [env: SUPPORTSIGNAL_DATA_DIR] [default: ./data]
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// postgres://... to use PostgreSQL instead of SQLite [env: DATABASE_URL]
    #[arg(long)]
    database_url: Option<String>,
}

impl Where {
    fn config(&self) -> anyhow::Result<Config> {
        Ok(Config::load(Overrides {
            listen: self.listen.clone(),
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
        })?)
    }
}

pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("SUPPORTSIGNAL_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("SUPPORTSIGNAL_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(place) => serve(place.config()?).await,
        Command::Migrate(place) => {
            let config = place.config()?;
            let store = server::open_store(&config, app::schema()).await?;
            let upgraded = app::incidents::upgrade::run(&store).await;
            store.close().await?;
            upgraded?;
            println!("migrations applied ({:?})", config.database);
            Ok(())
        }
        Command::Admin { command, place } => match command {
            AdminCommand::CreateSystemAdmin {
                email,
                name,
                password_stdin,
            } => {
                let password = read_password(password_stdin)?;
                let config = place.config()?;
                let store = server::open_store(&config, app::schema()).await?;
                let result =
                    app::users::create_system_admin(&store, &email, &name, &password).await;
                store.close().await?;
                let id = result?;
                println!("created system administrator {email} ({id})");
                Ok(())
            }
            AdminCommand::Backup { to } => {
                let config = place.config()?;
                let config::Database::Sqlite { path } = &config.database else {
                    bail!("backup copies the SQLite database; for PostgreSQL use pg_dump");
                };
                let bytes = store::backup_sqlite(path, &to)?;
                println!(
                    "backed up {} to {} ({bytes} bytes, checked)",
                    path.display(),
                    to.display()
                );
                Ok(())
            }
        },
        Command::Jobs { command, place } => {
            let config = place.config()?;
            let store = server::open_store(&config, app::schema()).await?;
            let result = crate::jobs::run(&store, command).await;
            store.close().await?;
            result
        }
        Command::Functions => {
            let config = Where::default().config()?;
            let spec = app::registry(&config).spec_json();
            println!("{}", serde_json::to_string_pretty(&spec)?);
            Ok(())
        }
        Command::Codegen { out, check } => crate::codegen::run(&out, check),
    }
}

fn read_password(from_stdin: bool) -> anyhow::Result<SecretString> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        let password = line.trim_end_matches(['\n', '\r']).to_string();
        if password.is_empty() {
            bail!("no password on standard input");
        }
        return Ok(SecretString::from(password));
    }
    match std::env::var("SUPPORTSIGNAL_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => Ok(SecretString::from(p)),
        _ => bail!("give the password with --password-stdin or SUPPORTSIGNAL_ADMIN_PASSWORD"),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let environment = config.environment;
    let database = format!("{:?}", config.database);
    let running = app::start_with(
        config,
        app::Options {
            shutdown: Box::pin(shutdown_signal()),
            first_admin: app::FirstAdmin::from_env(),
            ..app::Options::default()
        },
    )
    .await?;
    // The one line a person (or a script) looks for.
    println!(
        "supportsignal {} listening on http://{}",
        server::VERSION,
        running.addr
    );
    tracing::info!(environment = environment.as_str(), database, "serving");
    running.wait().await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
