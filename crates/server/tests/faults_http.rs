//! Misbehaving HTTP clients over raw TCP (issue 17): stalled heads, dripping bodies, idle
//! keep-alive connections, connections over the caps, half-closed requests and oversized declared
//! bodies. Timeouts are set short by each test; assertions on time are only "closed within the
//! configured timeout plus a margin".

mod common;
mod sync_support;

use std::time::Duration;

use common::{Place, TestServer};
use serde_json::json;
use sync_support::{Raw, SyncServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Generous room for a loaded machine on top of a configured timeout.
const MARGIN: Duration = Duration::from_secs(4);

async fn connect(s: &TestServer) -> TcpStream {
    TcpStream::connect(s.url.trim_start_matches("http://"))
        .await
        .expect("connect")
}

/// Reads until the server closes the connection (or resets it); `None` if it is still open after
/// `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut seen = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&seen).into_owned())
}

/// Reads one response whose body has a `content-length`.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(MARGIN, stream.read(&mut buf))
            .await
            .expect("response in time")
            .expect("read");
        assert!(n > 0, "closed before a whole response: {seen:?}");
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .expect("content-length");
            if seen.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

#[tokio::test]
async fn stalled_heads_are_closed_after_the_header_timeout() {
    let place = Place::new(common::Db::Sqlite).await;
    let s = TestServer::start_with(&place, &[("SUPPORTSIGNAL_HEADER_TIMEOUT_SECS", "1")]).await;
    // Sends nothing at all.
    let mut silent = connect(&s).await;
    // Slowloris: a header line now and then, never the end of the head.
    let mut slow = connect(&s).await;
    slow.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let dripping = tokio::spawn(async move {
        for i in 0..20 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if slow
                .write_all(format!("x-drip-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                return true;
            }
        }
        false
    });
    let within = Duration::from_secs(1) + MARGIN;
    let answer = closed_within(&mut silent, within).await;
    assert!(answer.is_some(), "a silent connection stays open");
    assert!(
        tokio::time::timeout(within, dripping)
            .await
            .unwrap()
            .unwrap(),
        "a slowloris connection stays open"
    );
    // Others are still served.
    let r = reqwest::get(format!("{}/health", s.url)).await.unwrap();
    assert_eq!(r.status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn a_dripping_body_fails_at_its_deadline() {
    let place = Place::new(common::Db::Sqlite).await;
    let s = TestServer::start_with(&place, &[("SUPPORTSIGNAL_BODY_TIMEOUT_SECS", "1")]).await;
    let mut stream = connect(&s).await;
    stream
        .write_all(
            b"POST /api/mutation HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n",
        )
        .await
        .unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // A byte every 200 ms: never silent for long, but far too slow to finish.
    let drip = tokio::spawn(async move {
        for _ in 0..100 {
            if writer.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let mut seen = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(1) + MARGIN, async {
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("\r\n\r\n") {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    drip.abort();
    assert!(read.is_ok(), "no answer to a dripping body");
    let text = String::from_utf8_lossy(&seen);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    s.stop().await;
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let place = Place::new(common::Db::Sqlite).await;
    let s = TestServer::start_with(&place, &[("SUPPORTSIGNAL_IDLE_TIMEOUT_SECS", "1")]).await;
    let mut stream = connect(&s).await;
    for _ in 0..2 {
        stream
            .write_all(b"GET /version HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let response = read_response(&mut stream).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
    let rest = closed_within(&mut stream, Duration::from_secs(1) + MARGIN).await;
    assert_eq!(rest.as_deref(), Some(""), "an idle connection stays open");
    s.stop().await;
}

#[tokio::test]
async fn connections_over_the_caps_are_refused_at_once() {
    for (key, cap) in [
        ("SUPPORTSIGNAL_MAX_CONNECTIONS_PER_CLIENT", 3),
        ("SUPPORTSIGNAL_MAX_CONNECTIONS", 4),
    ] {
        let place = Place::new(common::Db::Sqlite).await;
        let cap_text = cap.to_string();
        let s = TestServer::start_with(&place, &[(key, cap_text.as_str())]).await;
        let mut held = Vec::new();
        for _ in 0..cap {
            held.push(connect(&s).await);
        }
        // The server counts a connection when it accepts it; give it the moment that takes.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut over = connect(&s).await;
        let answer = closed_within(&mut over, MARGIN)
            .await
            .unwrap_or_else(|| panic!("{key}: a connection over the cap is left waiting"));
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 503"),
            "{key}: {answer}"
        );
        if !answer.is_empty() {
            assert!(answer.contains("TooManyConnections"), "{answer}");
        }
        // One closes: /health is served again.
        held.pop();
        let mut health = None;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let mut stream = connect(&s).await;
            stream
                .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                .await
                .unwrap();
            let answer = closed_within(&mut stream, MARGIN).await.unwrap_or_default();
            if answer.starts_with("HTTP/1.1 200") {
                health = Some(answer);
                break;
            }
        }
        assert!(health.is_some(), "{key}: /health not served after a close");
        drop(held);
        s.stop().await;
    }
}

#[tokio::test]
async fn a_half_closed_request_still_gets_its_answer() {
    let place = Place::new(common::Db::Sqlite).await;
    let s = TestServer::start(&place).await;
    let body = json!({"path": "messages:send", "args": [{"body": "half-closed"}]}).to_string();
    let mut stream = connect(&s).await;
    stream
        .write_all(
            format!(
                "POST /api/mutation HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    stream.shutdown().await.unwrap();
    let answer = closed_within(&mut stream, MARGIN)
        .await
        .expect("the connection closes after the answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(answer.contains("\"status\":\"success\""), "{answer}");
    assert_eq!(s.ok("query", "messages:count", json!({})).await, json!(1.0));
    s.stop().await;
}

#[tokio::test]
async fn a_declared_body_over_the_limit_is_refused_before_it_is_read() {
    let place = Place::new(common::Db::Sqlite).await;
    let s = TestServer::start_with(&place, &[("SUPPORTSIGNAL_MAX_BODY_BYTES", "4096")]).await;
    for length in ["5000", "1000000000000"] {
        let mut stream = connect(&s).await;
        stream
            .write_all(
                format!(
                    "POST /api/mutation HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        // No body follows: only a refusal that does not wait for it arrives in time.
        let answer = read_response(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{length}: {answer}");
        assert!(answer.contains("PayloadTooLarge"), "{answer}");
    }
    s.stop().await;
}

#[tokio::test]
async fn a_garbage_bearer_token_is_refused_as_the_websocket_refuses_it() {
    let place = Place::new(common::Db::Sqlite).await;
    let server = SyncServer::start(&place).await;
    let call = |token: &str| {
        server
            .http
            .post(format!("{}/api/query", server.url()))
            .bearer_auth(token)
            .json(&json!({"path": "auth:me", "args": [{}]}))
            .send()
    };
    let r = call("garbage").await.unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "Unauthenticated", "{body}");

    let mut ws = Raw::connect(&server.ws_url()).await;
    ws.send(
        json!({"type": "Authenticate", "tokenType": "User", "value": "garbage", "baseVersion": 0}),
    )
    .await;
    let refused = ws.expect("AuthError").await;
    assert_eq!(body["message"], refused["error"], "{body} vs {refused}");

    // A real session still works over HTTP.
    let token = server
        .ok("mutation", "auth:login", json!({"name": "ann"}))
        .await;
    let r = call(token.as_str().unwrap()).await.unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "success", "{body}");
    assert_eq!(body["value"]["name"], "ann", "{body}");
    server.stop().await;
}

/// Protocol misuse the Convex backend answers with a FatalError before closing (§B.5.7).
#[tokio::test]
async fn websocket_protocol_misuse_gets_a_fatal_error() {
    let place = Place::new(common::Db::Sqlite).await;
    let server = SyncServer::start(&place).await;
    let url = server.ws_url();
    let fatal = |mut raw: Raw, expected: &'static str| async move {
        let fatal = raw.expect("FatalError").await;
        let error = fatal["error"].as_str().unwrap().to_string();
        assert!(error.contains(expected), "{error}");
        raw.closed().await;
    };
    let modify =
        json!({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": []});
    let mutation =
        json!({"type": "Mutation", "requestId": 0, "udfPath": "messages:list", "args": [{}]});
    for early in [modify.clone(), mutation] {
        let mut raw = Raw::open(&url).await;
        raw.send(early).await;
        fatal(raw, "the first message must be Connect").await;
    }

    let mut twice = Raw::connect(&url).await;
    twice
        .send(json!({"type": "Connect", "sessionId": "again", "connectionCount": 1, "lastCloseReason": "x", "clientTs": 0}))
        .await;
    fatal(twice, "Connect was already sent").await;

    let mut malformed = Raw::open(&url).await;
    malformed
        .send(json!({"type": "Connect", "sessionId": "s", "connectionCount": 0, "lastCloseReason": "InitialConnect", "clientTs": 0, "maxObservedTimestamp": "not a timestamp"}))
        .await;
    fatal(malformed, "maxObservedTimestamp").await;
    // A well-formed one is accepted.
    let mut fine = Raw::open(&url).await;
    fine.send(json!({"type": "Connect", "sessionId": "s2", "connectionCount": 0, "lastCloseReason": "InitialConnect", "clientTs": 0, "maxObservedTimestamp": "AQAAAAAAAAA="}))
        .await;
    fine.send(modify.clone()).await;
    fine.expect("Transition").await;

    let mut backwards = Raw::connect(&url).await;
    backwards.send(modify).await;
    backwards.expect("Transition").await;
    backwards
        .send(json!({"type": "ModifyQuerySet", "baseVersion": 1, "newVersion": 0, "modifications": []}))
        .await;
    fatal(backwards, "InvalidQuerySetVersion").await;

    let mut garbled = Raw::connect(&url).await;
    garbled.send_text_bytes(vec![b'{', 0xff, 0xfe, b'}']).await;
    fatal(garbled, "InvalidUtf8").await;
    server.stop().await;
}
