//! Shared by the sync tests: the server with the sync test functions, a raw protocol client that
//! checks the version chain of every Transition, and a TCP proxy that can cut connections.
#![allow(dead_code)]

pub mod functions;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value as Json};
use server::SyncOptions;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::common::Place;

/// How long any single expected message may take.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub struct SyncServer {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    running: Option<server::Running>,
}

impl SyncServer {
    pub async fn start(place: &Place) -> SyncServer {
        SyncServer::start_with(place, SyncOptions::default()).await
    }

    pub async fn start_with(place: &Place, options: SyncOptions) -> SyncServer {
        let config = place.config(&[]);
        let store = server::open_store(&config, functions::schema())
            .await
            .expect("open store");
        let running = server::start_with(
            config,
            store,
            functions::registry(),
            options,
            std::future::pending(),
        )
        .await
        .expect("server starts");
        SyncServer {
            addr: running.addr,
            http: reqwest::Client::new(),
            running: Some(running),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The npm client's URL form: the client version in the path.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/api/1.48.0/sync", self.addr)
    }

    pub async fn stop(mut self) {
        self.running
            .take()
            .expect("running")
            .stop()
            .await
            .expect("clean shutdown");
    }

    /// A function's value over the HTTP API (another client than the WebSocket ones).
    pub async fn ok(&self, kind: &str, path: &str, args: Json) -> Json {
        let body: Json = self
            .http
            .post(format!("{}/api/{kind}", self.url()))
            .json(&json!({"path": path, "format": "convex_encoded_json", "args": [args]}))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("JSON body");
        assert_eq!(body["status"], "success", "{kind} {path}: {body}");
        body["value"].clone()
    }

    /// One value of `GET /metrics`.
    pub async fn metric(&self, name: &str) -> i64 {
        let text = self
            .http
            .get(format!("{}/metrics", self.url()))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics body");
        let prefix = format!("supportsignal_{name} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
            .parse()
            .expect("metric value")
    }
}

impl Drop for SyncServer {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            tokio::spawn(async move {
                let _ = running.stop().await;
            });
        }
    }
}

/// A client speaking the protocol directly, so tests see every message. It checks that each
/// Transition starts where the previous one ended and never goes back in time.
pub struct Raw {
    ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
    pub session_id: String,
    pub version: Json,
    /// Every message received, in order, Pings excluded.
    pub log: Vec<Json>,
}

impl Raw {
    /// Connects and sends `Connect` with a fresh session id.
    pub async fn connect(url: &str) -> Raw {
        let session = format!("session-{}", hex::encode(rand::random::<[u8; 8]>()));
        Raw::connect_as(url, &session).await
    }

    /// Connects and sends `Connect` for `session_id` (a reconnect of that client).
    pub async fn connect_as(url: &str, session_id: &str) -> Raw {
        let mut raw = Raw::open(url).await;
        raw.session_id = session_id.to_string();
        raw.send(json!({
            "type": "Connect", "sessionId": session_id, "connectionCount": 0,
            "lastCloseReason": "InitialConnect", "clientTs": 0,
        }))
        .await;
        raw
    }

    /// Connects without sending anything.
    pub async fn open(url: &str) -> Raw {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("WebSocket connects");
        Raw {
            ws,
            session_id: String::new(),
            version: json!({"querySet": 0, "identity": 0, "ts": "AAAAAAAAAAA="}),
            log: Vec::new(),
        }
    }

    pub async fn send(&mut self, message: Json) {
        self.send_text(message.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// A text frame holding `bytes` as they are, UTF-8 or not.
    pub async fn send_text_bytes(&mut self, bytes: Vec<u8>) {
        use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
        use tokio_tungstenite::tungstenite::protocol::frame::Frame;
        let frame = Frame::message(bytes, OpCode::Data(Data::Text), true);
        self.ws.send(Message::Frame(frame)).await.expect("send");
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws
            .send(Message::Binary(bytes.into()))
            .await
            .expect("send");
    }

    /// The next message other than Ping; `None` when the server closed the socket (the close
    /// reason, if any, is logged as `{"closed": code, "reason": ...}`).
    pub async fn next(&mut self) -> Option<Json> {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("a message within the patience limit");
            let message = match frame {
                Some(Ok(Message::Text(text))) => serde_json::from_str::<Json>(&text).unwrap(),
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    self.log.push(json!({"closed": code, "reason": reason}));
                    return None;
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            };
            if message["type"] == "Ping" {
                continue;
            }
            if message["type"] == "Transition" {
                self.check_transition(&message);
            }
            self.log.push(message.clone());
            return Some(message);
        }
    }

    /// Reads (and so answers ping frames) for `duration`, expecting nothing but Pings; returns
    /// how many Ping messages came.
    pub async fn listen_for(&mut self, duration: Duration) -> usize {
        let until = tokio::time::Instant::now() + duration;
        let mut pings = 0;
        loop {
            match tokio::time::timeout_at(until, self.ws.next()).await {
                Err(_) => return pings,
                Ok(Some(Ok(Message::Text(text)))) => {
                    assert_eq!(text.as_str(), r#"{"type":"Ping"}"#, "only Pings expected");
                    pings += 1;
                }
                Ok(Some(Ok(Message::Close(frame)))) => panic!("closed while listening: {frame:?}"),
                Ok(Some(Ok(_))) => {}
                Ok(other) => panic!("connection failed while listening: {other:?}"),
            }
        }
    }

    /// The next message, which must be of `kind`.
    pub async fn expect(&mut self, kind: &str) -> Json {
        let message = self
            .next()
            .await
            .unwrap_or_else(|| panic!("closed while waiting for {kind}: {:?}", self.log));
        assert_eq!(message["type"], kind, "expected {kind}, got {message}");
        message
    }

    /// Messages until one satisfies `done`; returns that one.
    pub async fn until(&mut self, what: &str, done: impl Fn(&Json) -> bool) -> Json {
        loop {
            let message = self
                .next()
                .await
                .unwrap_or_else(|| panic!("closed while waiting for {what}: {:?}", self.log));
            if done(&message) {
                return message;
            }
        }
    }

    /// Waits for the socket to close; returns the close code and reason.
    pub async fn closed(&mut self) -> (u16, String) {
        while self.next().await.is_some() {}
        match self.log.last() {
            Some(last) if last.get("closed").is_some() => (
                last["closed"].as_u64().unwrap() as u16,
                last["reason"].as_str().unwrap().to_string(),
            ),
            _ => (1006, String::new()),
        }
    }

    fn check_transition(&mut self, message: &Json) {
        assert_eq!(
            message["startVersion"], self.version,
            "a Transition must start where the last one ended: {message}"
        );
        let end = &message["endVersion"];
        assert!(
            ts(end) >= ts(&self.version),
            "Transition ts went backwards: {message}"
        );
        self.version = end.clone();
    }

    /// Sends a ModifyQuerySet moving from the current query set version to the next.
    pub async fn modify(&mut self, base: u32, modifications: Json) {
        self.send(json!({
            "type": "ModifyQuerySet", "baseVersion": base, "newVersion": base + 1,
            "modifications": modifications,
        }))
        .await;
    }

    pub async fn add(&mut self, base: u32, query_id: u32, path: &str, args: Json) -> Json {
        self.modify(
            base,
            json!([{"type": "Add", "queryId": query_id, "udfPath": path, "args": [args]}]),
        )
        .await;
        let transition = self.expect("Transition").await;
        modification(&transition, query_id)
            .unwrap_or_else(|| panic!("no result for query {query_id}: {transition}"))
    }

    pub async fn mutation(&mut self, request_id: u32, path: &str, args: Json) {
        self.send(
            json!({"type": "Mutation", "requestId": request_id, "udfPath": path, "args": [args]}),
        )
        .await;
    }
}

/// The ts of a version, as the number it encodes.
pub fn ts(version: &Json) -> u64 {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(version["ts"].as_str().expect("ts is a string"))
        .expect("ts is base64");
    u64::from_le_bytes(bytes.try_into().expect("8 bytes"))
}

pub fn ts_of(encoded: &Json) -> u64 {
    ts(&json!({ "ts": encoded }))
}

/// The modification for `query_id` in a Transition.
pub fn modification(transition: &Json, query_id: u32) -> Option<Json> {
    transition["modifications"]
        .as_array()?
        .iter()
        .find(|m| m["queryId"] == query_id)
        .cloned()
}

/// A TCP proxy in front of a server: `cut` drops every proxied connection (as a network failure
/// would) while the server keeps running; `retarget` points new connections at another server.
pub struct Proxy {
    pub addr: SocketAddr,
    target: Arc<Mutex<SocketAddr>>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let target = Arc::new(Mutex::new(target));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (to, list) = (target.clone(), links.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let target = *to.lock().unwrap();
                let link = tokio::spawn(async move {
                    if let Ok(mut upstream) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
                list.lock().unwrap().push(link);
            }
        });
        Proxy {
            addr,
            target,
            links,
            accept,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn cut(&self) {
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    pub fn retarget(&self, target: SocketAddr) {
        *self.target.lock().unwrap() = target;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}
