//! File storage over HTTP (protocol §C): `POST /api/storage/upload?token=…` takes the raw bytes of
//! one file and answers `{storageId}`; `GET /api/storage/<id>?exp=…&sig=…` serves a file to whoever
//! holds a signed, unexpired URL, with `Range`, `ETag`, `Content-Type` and `Content-Disposition`.
//! The checks themselves are in `functions::storage`.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use functions::storage::{Download, DownloadError, FileStorage, UploadError};
use futures::StreamExt;
use serde::Deserialize;

use crate::error::ApiError;
use crate::middleware::RequestMeta;
use crate::AppState;

#[derive(Deserialize)]
pub struct UploadParams {
    token: Option<String>,
}

fn storage(state: &AppState) -> Result<&FileStorage, ApiError> {
    state.runtime.storage().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "StorageDisabled",
            "File storage is not enabled on this server",
        )
    })
}

fn upload_error(meta: &RequestMeta, error: UploadError) -> ApiError {
    if let UploadError::Failed(functions::FunctionError::Internal(detail)) = &error {
        tracing::error!(request_id = %meta.id, %detail, "upload failed");
    }
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    ApiError::new(status, error.code(), error.message())
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `POST /api/storage/upload?token=…`.
pub async fn upload(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Query(params): Query<UploadParams>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match receive(&state, &meta, params, &headers, body).await {
        Ok(id) => Json(serde_json::json!({ "storageId": id })).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn receive(
    state: &AppState,
    meta: &RequestMeta,
    params: UploadParams,
    headers: &HeaderMap,
    body: Body,
) -> Result<String, ApiError> {
    let files = storage(state)?;
    let store = state.runtime.store();
    let token = params.token.unwrap_or_default();
    let mut upload = files
        .begin_upload(store, &token)
        .await
        .map_err(|e| upload_error(meta, e))?;
    let declared = header_str(headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > files.max_upload_bytes()) {
        let max = files.max_upload_bytes();
        return Err(upload_error(meta, UploadError::TooLarge { max }));
    }
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => upload
                .write(&bytes)
                .await
                .map_err(|e| upload_error(meta, e))?,
            // The partial blob is removed when `upload` drops.
            Err(e) if e.to_string().contains("timed out") => {
                return Err(ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "RequestTimeout",
                    "The file did not arrive in time",
                ))
            }
            Err(e) => {
                return Err(upload_error(meta, UploadError::Interrupted(e.to_string())));
            }
        }
    }
    let file = upload
        .finish(
            store,
            header_str(headers, header::CONTENT_TYPE),
            header_str(headers, header::HeaderName::from_static("digest")),
            meta.client_ip,
        )
        .await
        .map_err(|e| upload_error(meta, e))?;
    Ok(file.id)
}

#[derive(Deserialize)]
pub struct DownloadParams {
    exp: Option<u64>,
    by: Option<String>,
    sig: Option<String>,
}

/// `GET /api/storage/<storage id>?exp=…&sig=…`.
pub async fn download(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Path(storage_id): Path<String>,
    Query(params): Query<DownloadParams>,
    headers: HeaderMap,
) -> Response {
    match serve(&state, &meta, &storage_id, params, &headers).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "FileNotFound",
        "No such file, or the link is not valid",
    )
}

async fn serve(
    state: &AppState,
    meta: &RequestMeta,
    storage_id: &str,
    params: DownloadParams,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let files = storage(state)?;
    let store = state.runtime.store();
    let (Some(exp), Some(sig)) = (params.exp, params.sig) else {
        return Err(not_found());
    };
    let by = params.by.unwrap_or_default();
    let file = files
        .open_download(store, storage_id, exp, &by, &sig)
        .await
        .map_err(|e| match e {
            DownloadError::NotFound => not_found(),
            DownloadError::Expired => ApiError::new(
                StatusCode::FORBIDDEN,
                "DownloadUrlExpired",
                "This download link has expired; ask for a new one",
            ),
            DownloadError::Failed(error) => internal(meta, &error.to_string()),
        })?;
    let etag = format!("\"{}\"", file.sha256);
    if header_str(headers, header::IF_NONE_MATCH).is_some_and(|v| {
        v.split(',')
            .any(|tag| tag.trim() == etag || tag.trim() == "*")
    }) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let range = match header_str(headers, header::RANGE) {
        Some(raw) => match parse_range(raw, file.size) {
            RangeRequest::Satisfiable(start, end) => Some((start, end)),
            RangeRequest::Ignored => None,
            RangeRequest::Unsatisfiable => {
                return Ok((
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [(header::CONTENT_RANGE, format!("bytes */{}", file.size))],
                )
                    .into_response())
            }
        },
        None => None,
    };
    let (status, start, len) = match range {
        Some((start, end)) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        None => (StatusCode::OK, 0, file.size),
    };
    let stream = match files.read(&file, start, len).await {
        Ok(stream) => stream,
        // Deleted between the lookup and now.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found()),
        Err(e) => return Err(internal(meta, &e.to_string())),
    };
    files
        .log_download(store, storage_id, &by, meta.client_ip)
        .await
        .map_err(|e| internal(meta, &e.to_string()))?;
    let body = Body::from_stream(stream);
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_LENGTH, len)
        .header(header::ETAG, &etag)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "private, no-store")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(body)
        .map_err(|e| internal(meta, &e.to_string()))?;
    let out = response.headers_mut();
    let content_type = file
        .content_type
        .as_deref()
        .unwrap_or("application/octet-stream");
    if let Ok(value) = HeaderValue::from_str(content_type) {
        out.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&disposition(&file)) {
        out.insert(header::CONTENT_DISPOSITION, value);
    }
    if let Some((start, end)) = range {
        let value = format!("bytes {start}-{end}/{}", file.size);
        out.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&value).expect("digits and ASCII"),
        );
    }
    Ok(response)
}

fn internal(meta: &RequestMeta, detail: &str) -> ApiError {
    tracing::error!(request_id = %meta.id, %detail, "download failed");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalServerError",
        format!("[Request ID: {}] Server Error", meta.id),
    )
}

/// `attachment; filename="…"` with only characters that are safe in a quoted header value.
fn disposition(file: &Download) -> String {
    match &file.file_name {
        Some(name) => {
            let safe: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "-_. ".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            format!("attachment; filename=\"{safe}\"")
        }
        None => "attachment".to_string(),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    /// Inclusive byte positions.
    Satisfiable(u64, u64),
    /// Not one we serve partially (several ranges, another unit, malformed): the whole file goes.
    Ignored,
    Unsatisfiable,
}

/// One `bytes=` range of a file of `size` bytes (RFC 9110 §14.1.2).
fn parse_range(raw: &str, size: u64) -> RangeRequest {
    let Some(spec) = raw.trim().strip_prefix("bytes=") else {
        return RangeRequest::Ignored;
    };
    if spec.contains(',') {
        return RangeRequest::Ignored;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Ignored;
    };
    let (first, last) = (first.trim(), last.trim());
    let parsed = match (first.is_empty(), last.is_empty()) {
        (true, false) => match last.parse::<u64>() {
            Ok(0) => return RangeRequest::Unsatisfiable,
            Ok(suffix) => (size.saturating_sub(suffix), size.saturating_sub(1)),
            Err(_) => return RangeRequest::Ignored,
        },
        (false, _) => {
            let Ok(start) = first.parse::<u64>() else {
                return RangeRequest::Ignored;
            };
            let end = if last.is_empty() {
                size.saturating_sub(1)
            } else {
                match last.parse::<u64>() {
                    Ok(end) if end >= start => end.min(size.saturating_sub(1)),
                    _ => return RangeRequest::Ignored,
                }
            };
            (start, end)
        }
        (true, true) => return RangeRequest::Ignored,
    };
    if size == 0 || parsed.0 >= size {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Satisfiable(parsed.0, parsed.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeRequest::*;
        assert_eq!(parse_range("bytes=0-9", 100), Satisfiable(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), Satisfiable(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), Satisfiable(90, 99));
        assert_eq!(parse_range("bytes=-500", 100), Satisfiable(0, 99));
        assert_eq!(parse_range("bytes=50-500", 100), Satisfiable(50, 99));
        assert_eq!(parse_range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ignored);
        assert_eq!(parse_range("items=0-1", 100), Ignored);
        assert_eq!(parse_range("bytes=9-3", 100), Ignored);
    }
}
