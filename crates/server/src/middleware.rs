//! The middleware stack in one place: request ids, CORS, body limits and timeouts, panic catching,
//! and the client version check.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use config::Config;
use functions::RequestId;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tracing::Instrument;

use crate::error::ApiError;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps `router` in the whole middleware stack (outermost first: panics, request ids, CORS, body
/// timeout and limit).
pub fn apply(router: Router, config: &Config) -> Router {
    let trust_proxy = config.trust_proxy_headers;
    router.layer(
        ServiceBuilder::new()
            .layer(CatchPanicLayer::custom(|_| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalServerError",
                    "Server Error",
                )
                .into_response()
            }))
            .layer(axum::middleware::from_fn(move |request, next| {
                request_meta(trust_proxy, request, next)
            }))
            .layer(cors())
            .layer(RequestBodyTimeoutLayer::new(config.body_read_timeout))
            .layer(DefaultBodyLimit::max(config.max_body_bytes)),
    )
}

/// Browsers: mirror the origin and requested headers with credentials, as the Convex backend does.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_headers(AllowHeaders::mirror_request())
        .allow_credentials(true)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::OPTIONS,
            Method::PATCH,
            Method::DELETE,
            Method::PUT,
        ])
        .expose_headers([REQUEST_ID.clone()])
        .max_age(Duration::from_secs(86400))
}

/// What the handlers know about a request besides its body.
#[derive(Clone, Debug)]
pub struct RequestMeta {
    pub id: RequestId,
    /// The peer address, or with `SUPPORTSIGNAL_TRUST_PROXY_HEADERS` the first `X-Forwarded-For`
    /// entry (only behind a proxy that sets it; otherwise clients could pick their own address).
    pub client_ip: Option<IpAddr>,
}

fn client_ip(request: &Request, trust_proxy: bool) -> Option<IpAddr> {
    let forwarded = || {
        request
            .headers()
            .get("x-forwarded-for")?
            .to_str()
            .ok()?
            .split(',')
            .next()?
            .trim()
            .parse()
            .ok()
    };
    let peer = || {
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
    };
    if trust_proxy {
        forwarded().or_else(peer)
    } else {
        peer()
    }
}

/// Gives every request a fresh id (never taken from the client, so logs cannot be forged), runs it in
/// a span carrying that id, and returns the id in `x-request-id`.
async fn request_meta(trust_proxy: bool, mut request: Request, next: Next) -> Response {
    let id = RequestId::generate();
    let meta = RequestMeta {
        id: id.clone(),
        client_ip: client_ip(&request, trust_proxy),
    };
    request.extensions_mut().insert(meta);
    let span = tracing::debug_span!("request", id = %id, method = %request.method(), path = %request.uri().path());
    let started = std::time::Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::debug!(
            status = response.status().as_u16(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "done"
        );
    });
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    response
}

/// `npm-1.48.0` → (1, 48, 0).
pub fn parse_version(raw: &str) -> Option<(u64, u64, u64)> {
    let core = raw.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

/// npm clients older than 0.19.1 speak an older protocol and are refused (protocol §A.8).
pub async fn client_version(request: Request, next: Next) -> Response {
    let client = request
        .headers()
        .get("convex-client")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(version) = client.strip_prefix("npm-").and_then(parse_version) {
        if version < (0, 19, 1) {
            return ApiError::bad_request(
                "ClientVersionUnsupported",
                format!(
                    "Convex client {client} is no longer supported; upgrade the `convex` package"
                ),
            )
            .into_response();
        }
    }
    next.run(request).await
}
