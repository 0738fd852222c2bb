//! The middleware stack in one place: request ids, CORS, body limits and timeouts, panic catching,
//! and the client version check.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
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
use tracing::Instrument;

use crate::error::ApiError;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps `router` in the whole middleware stack (outermost first: panics, request ids, CORS, body
/// deadline and limit).
pub fn apply(router: Router, config: &Config) -> Router {
    let trust_proxy = config.trust_proxy_headers;
    let (body_timeout, max_body) = (config.body_read_timeout, config.max_body_bytes);
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
            .layer(axum::middleware::from_fn(move |request, next| {
                body_limits(body_timeout, max_body, request, next)
            }))
            .layer(DefaultBodyLimit::max(config.max_body_bytes)),
    )
}

/// Refuses a declared body over the limit before reading any of it, and gives the body a deadline
/// counted from now (the end of the request head): a body that drips in fails with 408 when it
/// passes, however steadily bytes arrive.
async fn body_limits(timeout: Duration, max: usize, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLarge",
            "The request body is too large",
        )
        .into_response();
    }
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let request = request.map(|body| {
        Body::new(DeadlineBody {
            body,
            deadline,
            sleep: None,
        })
    });
    next.run(request).await
}

/// A request body that fails once its deadline passes.
struct DeadlineBody {
    body: Body,
    deadline: tokio::time::Instant,
    /// Made the first time the body has nothing ready (most bodies arrive whole and never need it).
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// The text `api::body_rejection` recognises as a timeout.
#[derive(Debug)]
struct BodyDeadlinePassed;

impl std::fmt::Display for BodyDeadlinePassed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body timed out (its deadline passed)")
    }
}

impl std::error::Error for BodyDeadlinePassed {}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::BoxError>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = self.deadline;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyDeadlinePassed.into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
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
