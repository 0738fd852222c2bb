//! Live queries over the Convex WebSocket sync protocol (`/api/sync`, `/api/{version}/sync`,
//! reference §B).
//!
//! A client subscribes to queries; each runs once and its read set is registered with the node's
//! `Subscriptions`. The store's commit feed (the in-process broadcast on SQLite; the tailed commit
//! log on PostgreSQL, so commits of every node arrive) invalidates exactly the subscriptions whose
//! read sets a commit's write set intersects; their connections re-run them (identical
//! subscriptions share one run, `runs`) and send a Transition when a result changed. Mutations
//! apply once per (session id, request id) (`mutations`).
//!
//! SQLite serves one process: commits made by another process on the same file (a CLI command
//! while the server runs) reach no subscription until something else changes the same data.

mod connection;
mod hub;
mod index;
mod metrics;
mod mutations;
mod protocol;
mod runs;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use functions::Runtime;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use crate::error::ApiError;
use crate::middleware::RequestMeta;
use crate::AppState;
use hub::Subscriptions;
use metrics::Metrics;
use mutations::MutationLog;
use runs::Runs;

pub use mutations::{register_prune, table as mutations_table};

/// Limits and timings of the sync endpoint.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    /// Queries one connection may subscribe to.
    pub max_subscriptions: usize,
    /// Largest message a client may send.
    pub max_message_bytes: usize,
    /// A `Ping` (and a ping frame) after this long without sending anything.
    pub ping_interval: Duration,
    /// Clients silent this long (no message, no pong) are dropped.
    pub idle_timeout: Duration,
    /// A client that takes in nothing of a message for this long is disconnected. Messages are
    /// written one at a time; while one waits, newer results only accumulate as "query changed"
    /// marks, so a slow client costs one message of memory, never a backlog.
    pub send_timeout: Duration,
    /// Mutations and actions one connection may have queued or running.
    pub max_inflight: usize,
    /// How long the outcome of a mutation is kept to answer a retry of it.
    pub mutation_memory: Duration,
    /// How often an authenticated connection's token is checked again. Sessions also end by
    /// time, which no commit announces; when the token stops being valid, the connection's
    /// queries run again (and fail or change as the functions decide).
    pub identity_recheck: Duration,
}

impl Default for SyncOptions {
    fn default() -> SyncOptions {
        SyncOptions {
            max_subscriptions: 1000,
            max_message_bytes: 8 * 1024 * 1024,
            ping_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(120),
            send_timeout: Duration::from_secs(30),
            max_inflight: 1000,
            mutation_memory: Duration::from_secs(600),
            identity_recheck: Duration::from_secs(60),
        }
    }
}

/// Initial read buffer of a connection.
const READ_BUFFER: usize = 2048;

/// The sync endpoint's shared state: one per server.
pub struct Hub {
    runtime: Runtime,
    options: SyncOptions,
    metrics: Arc<Metrics>,
    subscriptions: Arc<Subscriptions>,
    runs: Arc<Runs>,
    mutations: Arc<MutationLog>,
    stop: watch::Sender<bool>,
    live: watch::Sender<usize>,
}

impl Hub {
    /// Starts following the store's commits.
    pub async fn start(runtime: Runtime, options: SyncOptions) -> anyhow::Result<Arc<Hub>> {
        let feed = runtime
            .store()
            .commit_feed()
            .await
            .context("starting the commit feed for live queries")?;
        let metrics = Arc::new(Metrics::default());
        let (stop, stopped) = watch::channel(false);
        let subscriptions = Subscriptions::start(feed, metrics.clone(), stopped.clone());
        let runs = Runs::new(runtime.clone(), subscriptions.clone(), metrics.clone());
        let mutations = Arc::new(MutationLog::new(
            runtime.clone(),
            options.mutation_memory,
            metrics.clone(),
        ));
        Ok(Arc::new(Hub {
            runtime,
            options,
            metrics,
            subscriptions,
            runs,
            mutations,
            stop,
            live: watch::Sender::new(0),
        }))
    }

    /// Closes every connection (clients reconnect, to this node once it is back or to another).
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }

    /// Waits until every connection has closed, at most `limit`.
    pub async fn drained(&self, limit: Duration) {
        let mut live = self.live.subscribe();
        let _ = tokio::time::timeout(limit, live.wait_for(|n| *n == 0)).await;
    }

    fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Counts a connection while the guard lives.
    fn enter(self: &Arc<Hub>) -> LiveGuard {
        self.live.send_modify(|n| *n += 1);
        self.metrics
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.metrics
            .connections_total
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        LiveGuard(self.clone())
    }
}

struct LiveGuard(Arc<Hub>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0
            .metrics
            .connections
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        self.0.live.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Resolves once the server stops (or the hub is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // Only the outcome matters; the borrowed value must not live across awaits.
    let _ = stop.wait_for(|stopped| *stopped).await.map(|_| ());
}

/// `GET /api/sync` and `GET /api/{client version}/sync`: the WebSocket upgrade (RFC 6455 §4.2).
///
/// Done here rather than with axum's `WebSocketUpgrade` because the connection needs tungstenite's
/// frame-level writes: large messages go out as continuation frames, so no connection keeps a
/// write buffer the size of its largest message (with thousands of connections, that is most of
/// the memory they cost).
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    request: Request,
) -> Response {
    let hub = state.sync.clone();
    if hub.stopping() {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The server is shutting down",
        )
        .into_response();
    }
    let (mut parts, _) = request.into_parts();
    let headers = &parts.headers;
    let lists = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    let upgrade_requested = parts.method == Method::GET
        && lists(header::CONNECTION, "upgrade")
        && lists(header::UPGRADE, "websocket");
    if !upgrade_requested {
        return ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "UpgradeRequired",
            "This endpoint speaks the WebSocket sync protocol",
        )
        .into_response();
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v != "13")
    {
        return ApiError::bad_request("BadWebSocketVersion", "Sec-WebSocket-Version must be 13")
            .into_response();
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return ApiError::bad_request("BadWebSocketKey", "Sec-WebSocket-Key is missing")
            .into_response();
    };
    let accept = derive_accept_key(key.as_bytes());
    let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
        return ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "UpgradeRequired",
            "This connection cannot be upgraded",
        )
        .into_response();
    };
    // The connection refuses messages over the limit itself, with a FatalError and a clean close;
    // tungstenite's own (higher) limit only stops the absurd, and leaves the socket unusable.
    let hard_limit = hub.options.max_message_bytes.saturating_mul(2);
    // A small read buffer that grows for large messages: the 128 KiB default, touched on every
    // connection, would make 10k idle subscribers cost over a gigabyte.
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(Some(hard_limit))
        .max_frame_size(Some(hard_limit));
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let socket = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                connection::serve(hub, socket, meta.client_ip).await;
            }
            Err(error) => tracing::debug!(%error, "WebSocket upgrade failed"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// `GET /metrics`: Prometheus text format. With `SUPPORTSIGNAL_METRICS_TOKEN` set it wants that
/// token as a bearer token; without one it is open, except in production, where it is off.
pub(crate) async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match (&state.config.metrics_token, presented) {
        (Some(token), Some(presented)) if token.matches(presented.trim()) => {}
        (Some(_), _) => {
            let refusal = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "Unauthenticated",
                "GET /metrics needs the metrics token: Authorization: Bearer <SUPPORTSIGNAL_METRICS_TOKEN>",
            );
            return ([(header::WWW_AUTHENTICATE, "Bearer")], refusal).into_response();
        }
        (None, _) if state.config.environment == config::Environment::Production => {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "MetricsDisabled",
                "GET /metrics is off in production until SUPPORTSIGNAL_METRICS_TOKEN is set",
            )
            .into_response();
        }
        (None, _) => {}
    }
    let hub = &state.sync;
    let mut body = hub.metrics.render(hub.subscriptions.position());
    body.push_str(&crate::jobs_metrics::render(&state.runtime).await);
    body.push_str(&state.runtime.activity().render());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
