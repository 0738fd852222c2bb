//! One keep-alive HTTP/1.1 connection, on hyper's connection API directly: no pool, no redirects,
//! no per-request allocation beyond the request itself, so the load generator spends as little of
//! the shared CPU as possible.

use std::net::SocketAddr;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// What the official npm client sends in `Convex-Client`; the server checks the version.
const CONVEX_CLIENT: &str = "npm-1.17.4";

pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Connection> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        // Small request/response pairs: Nagle would add delayed-ACK stalls to every call.
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake")?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the server closes; errors surface on the next send.
            let _ = connection.await;
        });
        Ok(Connection {
            sender,
            host: HeaderValue::from_str(&addr.to_string())?,
        })
    }

    /// POSTs a JSON body and returns the status and the whole response body.
    pub async fn post(
        &mut self,
        route: &str,
        body: Vec<u8>,
        headers: &[(HeaderName, HeaderValue)],
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(route)
            .header(HOST, self.host.clone())
            .header(CONTENT_TYPE, "application/json")
            .header("convex-client", CONVEX_CLIENT);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let request = request.body(Full::new(Bytes::from(body)))?;
        self.sender.ready().await.context("connection closed")?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// GETs a route and returns its body as text (the metrics endpoint).
    pub async fn get_text(&mut self, route: &str) -> anyhow::Result<String> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(route)
            .header(HOST, self.host.clone())
            .body(Full::new(Bytes::new()))?;
        self.sender.ready().await.context("connection closed")?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::ensure!(status == StatusCode::OK, "GET {route}: HTTP {status}");
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// Calls a function the way `ConvexHttpClient` does and returns its value, or the error.
    pub async fn call(
        &mut self,
        kind: &str,
        path: &str,
        args: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let body = request_body(path, &args);
        let (status, bytes) = self.post(&format!("/api/{kind}"), body, &[]).await?;
        let parsed: serde_json::Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("{kind} {path}: HTTP {status}, body is not JSON"))?;
        if status != StatusCode::OK || parsed["status"] != "success" {
            anyhow::bail!("{kind} {path}: HTTP {status}: {parsed}");
        }
        Ok(parsed["value"].clone())
    }
}

/// The body `ConvexHttpClient` posts to `/api/query` and `/api/mutation`.
pub fn request_body(path: &str, args: &serde_json::Value) -> Vec<u8> {
    let body = serde_json::json!({"path": path, "format": "convex_encoded_json", "args": [args]});
    serde_json::to_vec(&body).expect("a JSON value serializes")
}

/// Whether a response is a successful function call. The fast path reads only the start of the
/// body (the server writes `status` first); anything else is parsed in full, so an unusual field
/// order is never miscounted as an error.
pub fn is_success(status: StatusCode, body: &[u8]) -> bool {
    if status != StatusCode::OK {
        return false;
    }
    if body.starts_with(br#"{"status":"success""#) {
        return true;
    }
    serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| v["status"] == "success")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_is_recognised_in_any_field_order() {
        let ok = StatusCode::OK;
        assert!(is_success(ok, br#"{"status":"success","value":1}"#));
        assert!(is_success(
            ok,
            br#"{"logLines":[],"status":"success","value":1}"#
        ));
        assert!(!is_success(ok, br#"{"errorMessage":"x","status":"error"}"#));
        assert!(!is_success(ok, b"not json"));
        assert!(!is_success(
            StatusCode::BAD_REQUEST,
            br#"{"status":"success"}"#
        ));
    }

    #[test]
    fn body_matches_the_npm_client() {
        let body = request_body("bench:getOne", &serde_json::json!({"key": "k1"}));
        let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({"path": "bench:getOne", "format": "convex_encoded_json", "args": [{"key": "k1"}]})
        );
    }
}
