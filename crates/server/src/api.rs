//! The Convex HTTP API (protocol §A): `/api/query`, `/api/mutation`, `/api/action`, `/api/function`,
//! `/api/run/{path}`, plus `/version` and `/health`.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use functions::{Auth, Call, Caller, FunctionError, FunctionKind, FunctionPath, RequestId};
use serde_json::{json, Map, Value as Json_};
use values::json::AsJson;
use values::{Format, Value};

use crate::error::ApiError;
use crate::middleware::RequestMeta;
use crate::AppState;

pub async fn query(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    udf(state, meta, headers, body, Some(FunctionKind::Query)).await
}

pub async fn mutation(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    udf(state, meta, headers, body, Some(FunctionKind::Mutation)).await
}

pub async fn action(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    udf(state, meta, headers, body, Some(FunctionKind::Action)).await
}

/// `/api/function`: any kind, `args` an object.
pub async fn function(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    udf(state, meta, headers, body, None).await
}

/// `/api/run/messages/list` with `{args, format?}`; the default format is clean JSON.
pub async fn run(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Path(route): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let prepared = (|| {
        let path = FunctionPath::from_run_route(&route)
            .map_err(|e| ApiError::bad_request("BadConvexFunctionIdentifier", e.to_string()))?;
        let mut body = read_json_body(&headers, body)?;
        let format = parse_format(body.get("format"), Format::Clean)?;
        let args = parse_args(body.remove("args"), format)?;
        Ok::<_, ApiError>((path.to_string(), format, args))
    })();
    match prepared {
        Ok((path, format, args)) => execute(&state, meta, &headers, path, None, args, format).await,
        Err(e) => e.into_response(),
    }
}

#[derive(serde::Deserialize)]
pub struct QueryParams {
    path: Option<String>,
    args: Option<String>,
    format: Option<String>,
}

/// `GET /api/query?path=&args=<json>&format=`
pub async fn query_get(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    headers: HeaderMap,
    Query(params): Query<QueryParams>,
) -> Response {
    let prepared = (|| {
        let path = params
            .path
            .ok_or_else(|| ApiError::bad_request("BadRequest", "Missing query parameter `path`"))?;
        let format = parse_format(
            params.format.map(Json_::String).as_ref(),
            default_format(&headers),
        )?;
        let args = match params.args {
            Some(raw) => Some(serde_json::from_str::<Json_>(&raw).map_err(|e| {
                ApiError::bad_request("BadJsonBody", format!("`args` is not valid JSON: {e}"))
            })?),
            None => None,
        };
        Ok::<_, ApiError>((path, format, parse_args(args, format)?))
    })();
    match prepared {
        Ok((path, format, args)) => {
            execute(
                &state,
                meta,
                &headers,
                path,
                Some(FunctionKind::Query),
                args,
                format,
            )
            .await
        }
        Err(e) => e.into_response(),
    }
}

async fn udf(
    state: AppState,
    meta: RequestMeta,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    expected: Option<FunctionKind>,
) -> Response {
    let prepared = (|| {
        let mut body = read_json_body(&headers, body)?;
        let path = match body.remove("path") {
            Some(Json_::String(p)) => p,
            Some(_) => {
                return Err(ApiError::bad_request(
                    "BadRequest",
                    "`path` must be a string",
                ))
            }
            None => {
                return Err(ApiError::bad_request(
                    "BadRequest",
                    "Missing `path` in the request body",
                ))
            }
        };
        let format = parse_format(body.get("format"), default_format(&headers))?;
        let args = parse_args(body.remove("args"), format)?;
        Ok::<_, ApiError>((path, format, args))
    })();
    match prepared {
        Ok((path, format, args)) => {
            execute(&state, meta, &headers, path, expected, args, format).await
        }
        Err(e) => e.into_response(),
    }
}

async fn execute(
    state: &AppState,
    meta: RequestMeta,
    headers: &HeaderMap,
    path: String,
    expected: Option<FunctionKind>,
    args: Value,
    format: Format,
) -> Response {
    let auth = auth_from_headers(headers).with_client_ip(meta.client_ip);
    if let Some(token) = auth.token() {
        if let Err(message) = check_bearer(state, token, &meta).await {
            return ApiError::new(StatusCode::UNAUTHORIZED, "Unauthenticated", message)
                .into_response();
        }
    }
    let call = Call {
        path,
        expected,
        args,
        auth,
        request_id: meta.id.clone(),
        caller: Caller::Client,
    };
    match state.runtime.call(call).await {
        Ok(outcome) => success_response(&outcome.value, &outcome.log_lines, format),
        Err(error) => function_error_response(&error, &meta.id, format),
    }
}

/// `{"status":"success","value":...,"logLines":[...]}`, serialized straight from the value (no
/// intermediate JSON tree: results of list queries are the hot path).
fn success_response(value: &Value, log_lines: &[String], format: Format) -> Response {
    #[derive(serde::Serialize)]
    struct Success<'a> {
        status: &'static str,
        value: AsJson<'a>,
        #[serde(rename = "logLines", skip_serializing_if = "<[String]>::is_empty")]
        log_lines: &'a [String],
    }
    let body = Success {
        status: "success",
        value: AsJson { value, format },
        log_lines,
    };
    match serde_json::to_vec(&body) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "could not serialize a function result");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "Server Error",
            )
            .into_response()
        }
    }
}

/// Function errors are HTTP 200 with `status: "error"`; `errorData` only for user (ConvexError) errors.
fn function_error_response(
    error: &FunctionError,
    request_id: &RequestId,
    format: Format,
) -> Response {
    let mut body = Map::new();
    body.insert("status".into(), json!("error"));
    body.insert(
        "errorMessage".into(),
        json!(error.client_message(request_id.as_str())),
    );
    if let Some(data) = error.error_data() {
        body.insert("errorData".into(), format.encode(&data));
    }
    Json(Json_::Object(body)).into_response()
}

/// A bearer token is checked as the WebSocket checks an `Authenticate` token (with the query
/// `Registry::authenticate_with` names, same messages), so a garbage token is refused with 401
/// instead of running the function as anonymous (protocol §A.5: an invalid token is 401).
async fn check_bearer(state: &AppState, token: &str, meta: &RequestMeta) -> Result<(), String> {
    if token.is_empty() {
        return Err("Authentication token is empty".into());
    }
    let Some(check) = state.runtime.registry().auth_check() else {
        return Ok(());
    };
    let call = Call {
        path: check.to_string(),
        expected: Some(FunctionKind::Query),
        args: Value::Object(Default::default()),
        auth: Auth::bearer(token).with_client_ip(meta.client_ip),
        request_id: meta.id.clone(),
        caller: Caller::Server,
    };
    match state.runtime.run_query(call).await.result {
        Ok((Value::Null, _)) => Err("Invalid or expired session".into()),
        Ok(_) => Ok(()),
        Err(error) => Err(error.client_message(meta.id.as_str())),
    }
}

fn auth_from_headers(headers: &HeaderMap) -> Auth {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|token| Auth::bearer(token.trim()))
        .unwrap_or_default()
}

fn read_json_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Map<String, Json_>, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedContentType",
            format!("Expected Content-Type: application/json, got {content_type:?}"),
        ));
    }
    let bytes = body.map_err(body_rejection)?;
    match serde_json::from_slice::<Json_>(&bytes) {
        Ok(Json_::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request(
            "BadJsonBody",
            "The request body must be a JSON object",
        )),
        Err(e) => Err(ApiError::bad_request(
            "BadJsonBody",
            format!("The request body is not valid JSON: {e}"),
        )),
    }
}

fn body_rejection(rejection: BytesRejection) -> ApiError {
    let status = rejection.status();
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(status, "PayloadTooLarge", "The request body is too large")
        }
        StatusCode::REQUEST_TIMEOUT => ApiError::new(
            status,
            "RequestTimeout",
            "The request body arrived too slowly",
        ),
        _ => {
            // A body read that timed out surfaces as a generic buffering failure.
            let text = rejection.body_text();
            if text.contains("timed out") || text.contains("timeout") {
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "RequestTimeout",
                    "The request body arrived too slowly",
                )
            } else if text.contains("length limit") {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "PayloadTooLarge",
                    "The request body is too large",
                )
            } else {
                ApiError::new(status, "BadRequestBody", text)
            }
        }
    }
}

/// Without a `format`, current npm, Rust and unknown clients get clean JSON; npm ≤ 1.4.1 got the
/// encoded form (protocol §A.3).
fn default_format(headers: &HeaderMap) -> Format {
    let client = headers
        .get("convex-client")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match client
        .strip_prefix("npm-")
        .and_then(crate::middleware::parse_version)
    {
        Some(version) if version <= (1, 4, 1) => Format::Encoded,
        _ => Format::Clean,
    }
}

fn parse_format(raw: Option<&Json_>, default: Format) -> Result<Format, ApiError> {
    match raw {
        None | Some(Json_::Null) => Ok(default),
        Some(Json_::String(name)) => Format::parse(name).ok_or_else(|| {
            ApiError::bad_request(
                "InvalidFormat",
                format!("Unknown format {name:?}; use \"json\" or \"convex_encoded_json\""),
            )
        }),
        Some(_) => Err(ApiError::bad_request(
            "InvalidFormat",
            "`format` must be a string",
        )),
    }
}

/// `args` may be `[{...}]` (what clients send), a bare object, or missing (`{}`).
fn parse_args(raw: Option<Json_>, format: Format) -> Result<Value, ApiError> {
    let object = match raw {
        None | Some(Json_::Null) => Json_::Object(Map::new()),
        Some(Json_::Array(mut items)) if items.len() == 1 => items.pop().expect("one item"),
        Some(Json_::Array(items)) => {
            return Err(ApiError::bad_request(
                "InvalidArgs",
                format!(
                    "`args` must be an array of exactly one object, got {} items",
                    items.len()
                ),
            ))
        }
        Some(other) => other,
    };
    if !object.is_object() {
        return Err(ApiError::bad_request(
            "InvalidArgs",
            "`args` must be an object",
        ));
    }
    format.decode(&object).map_err(|e| {
        ApiError::bad_request("InvalidArgs", format!("`args` could not be decoded: {e}"))
    })
}

pub async fn version() -> impl IntoResponse {
    crate::VERSION
}

/// Reports whether the database answers reads and takes writes, so load balancers can take a
/// broken node out. Writability is the outcome of the last write when recent, else of a small
/// write probe (`Store::write_health`), so a node whose every write fails (full disk, read-only
/// database) is not reported healthy.
pub async fn health(State(state): State<AppState>) -> Response {
    let store = state.runtime.store();
    let limit = Duration::from_secs(5);
    let timed_out = || store::StoreError::Unavailable("timed out".into());
    let (read, write) = tokio::join!(
        tokio::time::timeout(limit, store.health_check()),
        tokio::time::timeout(limit, store.write_health()),
    );
    let read = read.unwrap_or_else(|_| Err(timed_out()));
    let write = write.unwrap_or_else(|_| Err(timed_out()));
    // An unreachable database explains failed writes too; otherwise the write error says more.
    let failure = match (read, write) {
        (Ok(()), Ok(())) => None,
        (Err(e), _) | (Ok(()), Err(e)) => Some(e),
    };
    let mut body = json!({
        "status": "ok",
        "database": "ok",
        "version": crate::VERSION,
        "environment": state.config.environment.as_str(),
    });
    let Some(error) = failure else {
        return (StatusCode::OK, Json(body)).into_response();
    };
    tracing::warn!(detail = %error, "health check failed");
    let database = match &error {
        store::StoreError::StorageFull(_) => "storage_full",
        store::StoreError::ReadOnly(_) => "read_only",
        _ => "unavailable",
    };
    // The client-facing code and message of the same failure in a function call; the detail
    // (paths, addresses) stays in the log.
    let error = FunctionError::from(error);
    body["status"] = json!("error");
    body["database"] = json!(database);
    if let Some(code) = error.code() {
        body["code"] = json!(code.as_str());
    }
    body["message"] = json!(match error.code() {
        Some(_) => error.client_message(""),
        None => "The database failed its health check".to_string(),
    });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NotFound", "No such route")
}
