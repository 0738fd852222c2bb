//! The HTTP server: the Convex HTTP API, WebSocket sync (live queries), health, version and
//! metrics, CORS, limits, timeouts and request ids.

mod api;
mod connections;
mod error;
mod jobs_metrics;
mod middleware;
mod storage;
mod sync;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use axum::routing::{get, post};
use axum::Router;
use config::Config;
use functions::{Registry, Runtime};
use store::{Backend, Schema, Store, StoreConfig};
use tokio::net::TcpListener;

pub use error::ApiError;
pub use sync::SyncOptions;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Clone)]
pub(crate) struct AppState {
    pub runtime: Runtime,
    pub config: Arc<Config>,
    pub sync: Arc<sync::Hub>,
    #[allow(dead_code)]
    pub started: Instant,
}

/// Opens the store the configuration names and applies migrations. The schema gets the table that
/// makes WebSocket mutations apply once across reconnects and nodes, and the tables of the
/// scheduler, the job queue and the crons.
pub async fn open_store(config: &Config, schema: Schema) -> anyhow::Result<Store> {
    let schema = schema
        .table(sync::mutations_table())
        .table(functions::scheduler::table())
        .table(functions::jobs::table())
        .table(functions::crons::table());
    let schema = functions::storage::tables()
        .into_iter()
        .fold(schema, Schema::table);
    let backend = match &config.database {
        config::Database::Sqlite { path } => Backend::Sqlite { path: path.clone() },
        config::Database::Postgres { url } => Backend::Postgres { url: url.clone() },
    };
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let pool_size = match &backend {
        // Reads are CPU-bound: a few more threads than cores covers page-cache misses without the
        // time-slicing that many threads bring to tail latency.
        Backend::Sqlite { .. } => cores * 2,
        Backend::Postgres { .. } => (cores * 4).max(8),
    };
    Store::open(StoreConfig { backend, pool_size }, schema)
        .await
        .with_context(|| format!("opening the database ({:?})", config.database))
}

pub fn router(runtime: Runtime, config: Arc<Config>, sync: Arc<sync::Hub>) -> Router {
    let state = AppState {
        runtime,
        config: config.clone(),
        sync,
        started: Instant::now(),
    };
    let api = Router::new()
        .route("/api/query", post(api::query).get(api::query_get))
        .route("/api/mutation", post(api::mutation))
        .route("/api/action", post(api::action))
        .route("/api/function", post(api::function))
        .route("/api/run/{*path}", post(api::run))
        .route("/api/storage/upload", post(storage::upload))
        .route("/api/storage/{storage_id}", get(storage::download))
        .route("/api/sync", get(sync::upgrade))
        .route("/api/{version}/sync", get(sync::upgrade))
        .layer(axum::middleware::from_fn(middleware::client_version));
    let app = Router::new()
        .merge(api)
        .route("/version", get(api::version))
        .route("/health", get(api::health))
        .route("/metrics", get(sync::metrics))
        .fallback(api::not_found)
        .with_state(state);
    middleware::apply(app, &config)
}

/// File storage in `<data dir>/files`, when the schema has its tables (`open_store` adds them).
async fn file_storage(
    config: &Config,
    store: &Store,
) -> anyhow::Result<Option<functions::storage::FileStorage>> {
    if store.table_number(functions::storage::FILES).is_none() {
        return Ok(None);
    }
    let root = config.data_dir.join("files");
    tokio::fs::create_dir_all(&root)
        .await
        .with_context(|| format!("creating the file directory {}", root.display()))?;
    let settings =
        functions::storage::StorageSettings {
            root,
            api_base: config.api_url.as_str().trim_end_matches('/').to_string(),
            server_secret: config.oauth.secret_key.expose().to_vec(),
            max_upload_bytes: config.storage.max_upload_bytes,
            company_quota_bytes: config.storage.company_quota_bytes,
            upload_url_ttl: config.storage.upload_url_ttl,
            download_url_ttl: config.storage.download_url_ttl,
            bucket: config.storage.object_store.as_ref().map(|s3| {
                functions::storage::BucketSettings {
                    bucket: s3.bucket.clone(),
                    prefix: s3.prefix.clone(),
                    region: s3.region.clone(),
                    endpoint: s3.endpoint.clone(),
                    access_key_id: s3.access_key_id.clone(),
                    secret_access_key: s3.secret_access_key.clone(),
                    allow_http: s3.allow_http,
                }
            }),
        };
    functions::storage::FileStorage::new(settings)
        .map(Some)
        .map_err(anyhow::Error::msg)
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub runtime: Runtime,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stops accepting connections, lets in-flight requests finish, then closes the database.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        self.task.await.context("server task panicked")?
    }

    /// Waits until the server stops by itself (after a shutdown signal).
    pub async fn wait(self) -> anyhow::Result<()> {
        let Running { shutdown, task, .. } = self;
        let result = task.await.context("server task panicked")?;
        drop(shutdown);
        result
    }
}

/// Binds the configured address (port 0 picks a free one), and serves until `stop` is called or
/// `external_shutdown` completes.
pub async fn start(
    config: Config,
    store: Store,
    registry: Registry,
    external_shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Running> {
    start_with(
        config,
        store,
        registry,
        SyncOptions::default(),
        external_shutdown,
    )
    .await
}

/// `start` with other limits for the WebSocket sync endpoint.
pub async fn start_with(
    config: Config,
    store: Store,
    registry: Registry,
    sync_options: SyncOptions,
    external_shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Running> {
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let mut config = config;
    // Listening on port 0 (tests): links to this server name the port it got.
    if config.api_url.port() == Some(0) {
        let _ = config.api_url.set_port(Some(addr.port()));
    }
    // Old WebSocket mutation records are pruned by a cron of their own.
    let mut registry = registry;
    sync::register_prune(&mut registry, &store, sync_options.mutation_memory);
    let files = file_storage(&config, &store).await?;
    if files.is_some() {
        functions::storage::register(&mut registry);
    }
    let mut runtime = Runtime::new(registry, store.clone(), config.function_timeout);
    if let Some(files) = files {
        runtime = runtime.with_storage(files);
    }
    let hub = sync::Hub::start(runtime.clone(), sync_options).await?;
    // Runs what functions scheduled, on every node (each schedule still runs once).
    let scheduler = background::Executor::start(
        runtime.clone(),
        background::SchedulerOptions {
            retention: config.scheduler_retention,
            ..background::SchedulerOptions::default()
        },
    );
    let limits = connections::Limits::from_config(&config);
    // Runs enqueued jobs, on every node (each claimed under a lease).
    let jobs = background::Queue::start(
        runtime.clone(),
        background::QueueOptions {
            retention: config.scheduler_retention,
            ..background::QueueOptions::default()
        },
    );
    // Runs the crons the registry declares, on every node (each tick still runs once).
    let crons = background::CronRunner::start(runtime.clone(), background::CronOptions::default());
    let app = router(runtime.clone(), Arc::new(config), hub.clone());
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let closing = hub.clone();
        let signal = async move {
            tokio::select! {
                _ = stopped => {}
                _ = external_shutdown => {}
            }
            tracing::info!("shutting down: finishing in-flight requests");
            // WebSocket clients are told to reconnect; they resume elsewhere or after the restart.
            closing.shutdown();
        };
        connections::serve(listener, app, limits, signal).await;
        // Scheduled runs, jobs and cron runs in progress finish before the database closes.
        tokio::join!(scheduler.stop(), jobs.stop(), crons.stop());
        hub.drained(std::time::Duration::from_secs(5)).await;
        store.close().await.context("closing the database")?;
        tracing::info!("database closed");
        Ok(())
    });
    Ok(Running {
        addr,
        runtime,
        shutdown,
        task,
    })
}
