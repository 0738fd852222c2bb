//! The one start path: what `supportsignal serve`, the benchmark and the application's tests run.
//!
//! [`start`] opens the database the configuration names (migrations applied), rewrites values that
//! earlier versions stored, creates the first system administrator when asked to, starts the HTTP
//! and WebSocket server with the scheduler, the job queue and the crons, seeds the default prompts
//! (email goes out through the job queue). Tests that start the application this way run what
//! production runs.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use anyhow::Context as _;
use config::Config;
use functions::{Registry, Runtime};
use secrecy::SecretString;
use store::{Schema, Store};

/// Adds tables (returning the schema) and functions to the application's.
pub type Extend = Box<dyn FnOnce(Schema, &mut Registry) -> Schema + Send>;

/// What may differ from a production start. `Options::default()` is production.
pub struct Options {
    /// Completes when the application should stop by itself (a signal); `Running::stop` stops it
    /// too.
    pub shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// Limits of the WebSocket sync endpoint.
    pub sync: server::SyncOptions,
    /// Tables and functions beside the application's own (the benchmark adds its fixtures).
    pub extend: Option<Extend>,
    /// The first system administrator, created when none exists. `serve` takes it from
    /// `SUPPORTSIGNAL_ADMIN_EMAIL` / `_PASSWORD` / `_NAME`.
    pub first_admin: Option<FirstAdmin>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            shutdown: Box::pin(std::future::pending()),
            sync: server::SyncOptions::default(),
            extend: None,
            first_admin: None,
        }
    }
}

/// A system administrator to create at start. No `Debug`: it holds a password.
pub struct FirstAdmin {
    pub email: String,
    pub name: String,
    pub password: SecretString,
}

impl FirstAdmin {
    /// From `SUPPORTSIGNAL_ADMIN_EMAIL` and `SUPPORTSIGNAL_ADMIN_PASSWORD` (and optionally
    /// `SUPPORTSIGNAL_ADMIN_NAME`); `None` unless both are set.
    pub fn from_env() -> Option<FirstAdmin> {
        let email = std::env::var("SUPPORTSIGNAL_ADMIN_EMAIL").ok()?;
        let password = std::env::var("SUPPORTSIGNAL_ADMIN_PASSWORD").ok()?;
        let name = std::env::var("SUPPORTSIGNAL_ADMIN_NAME")
            .unwrap_or_else(|_| "System Administrator".into());
        Some(FirstAdmin {
            email,
            name,
            password: SecretString::from(password),
        })
    }
}

/// The running application.
pub struct Running {
    pub addr: SocketAddr,
    pub runtime: Runtime,
    server: server::Running,
}

impl Running {
    pub fn store(&self) -> &Store {
        self.runtime.store()
    }

    /// Stops: in-flight requests, scheduled runs, jobs (email sends among them) and cron runs
    /// finish, then the database closes.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.server.stop().await
    }

    /// Waits until the application stops by itself (its `shutdown` future completed).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.server.wait().await
    }
}

/// Starts the application as production runs it.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    start_with(config, Options::default()).await
}

/// [`start`] with [`Options`].
pub async fn start_with(config: Config, options: Options) -> anyhow::Result<Running> {
    let mut registry = crate::registry(&config);
    let schema = match options.extend {
        Some(extend) => extend(crate::schema(), &mut registry),
        None => crate::schema(),
    };
    // A mail setting that cannot work stops the start here rather than failing every email later.
    crate::email::mailer_from_config(&config)
        .map_err(|e| anyhow::anyhow!("email: {}", e.message))?;
    let store = server::open_store(&config, schema).await?;
    if let Err(e) = prepare(&store, options.first_admin.as_ref()).await {
        store.close().await.ok();
        return Err(e);
    }
    let server =
        server::start_with(config, store, registry, options.sync, options.shutdown).await?;
    let runtime = server.runtime.clone();
    // Before anyone is told the address, so the first request sees the prompts.
    crate::ai_service::seed_default_prompts(&runtime).await;
    Ok(Running {
        addr: server.addr,
        runtime,
        server,
    })
}

/// What runs before anything is served: values earlier versions stored are rewritten, and the
/// first system administrator is created when asked for.
async fn prepare(store: &Store, admin: Option<&FirstAdmin>) -> anyhow::Result<()> {
    crate::incidents::upgrade::run(store)
        .await
        .context("upgrading stored incidents")?;
    if let Some(admin) = admin {
        first_admin(store, admin).await?;
    }
    Ok(())
}

async fn first_admin(store: &Store, admin: &FirstAdmin) -> anyhow::Result<()> {
    if crate::users::has_system_admin(store).await? {
        return Ok(());
    }
    crate::users::create_system_admin(store, &admin.email, &admin.name, &admin.password)
        .await
        .context("creating the first system administrator from SUPPORTSIGNAL_ADMIN_EMAIL")?;
    Ok(())
}
