//! One WebSocket client: its query set, identity and requests.
//!
//! One task per connection owns the socket and the protocol state; it reads messages, notices
//! silence and writes its own answers. After `ping_interval` without sending it sends a `Ping`
//! message (so the client does not reconnect over silence); after `ping_interval` without hearing
//! from the client it sends a ping frame, whose pong proves the client alive to the idle timeout. Mutations run one at a time, in arrival
//! order, on a worker started with the first one (so queries and actions go on meanwhile); actions
//! run concurrently. Everything else a connection holds is small, because a node holds thousands.
//!
//! Query results reach the client only in Transitions built after re-running the queries the hub
//! marked dirty. The dirty set is the coalescing point: while a slow client keeps the task waiting
//! on a write, invalidations only accumulate in the set, and the next run computes each affected
//! query once, from the newest data. A client that takes in nothing for `send_timeout` is
//! disconnected.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use functions::{Auth, Call, Caller, ErrorCode, FunctionError, FunctionKind, RequestId};
use futures::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use store::Ts;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;
use values::{Format, Value};

use super::hub::ConnSignal;
use super::index::SubId;
use super::mutations::Reply;
use super::protocol::{self, Answer, ClientMessage, Modification, QueryId, StateVersion};
use super::runs::{self, Finished, Outcome, RunKey};
use super::Hub;

/// Queries of one connection re-run at the same time.
const RERUN_CONCURRENCY: usize = 8;
/// How long the last messages (an error, a close frame) and the client's answer to the close
/// may take.
const FAREWELL: Duration = Duration::from_secs(2);
/// Larger messages go out as continuation frames of this size (see `Connection::send`).
const FRAME_BYTES: usize = 2048;
/// First wait before a query whose run failed for a transient reason (the database was
/// unavailable) runs again; it doubles with each failure up to `RETRY_MAX`.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);

pub type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// Why the connection ends, and what the client is told.
struct Closing {
    /// Sent as a `FatalError` message first.
    fatal: Option<String>,
    /// The close frame; `None` when the client closed or the socket is gone.
    frame: Option<(u16, String)>,
}

impl Closing {
    fn fatal(code: u16, message: impl Into<String>) -> Closing {
        let message = message.into();
        Closing {
            frame: Some((code, close_reason(&message))),
            fatal: Some(message),
        }
    }
    fn close(code: u16, reason: impl Into<String>) -> Closing {
        Closing {
            fatal: None,
            frame: Some((code, close_reason(&reason.into()))),
        }
    }
    fn gone() -> Closing {
        Closing {
            fatal: None,
            frame: None,
        }
    }
}

/// Close reasons are limited to 123 bytes.
fn close_reason(message: &str) -> String {
    let mut end = message.len().min(123);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message[..end].to_string()
}

/// Serves one upgraded socket until it closes.
pub async fn serve(hub: Arc<Hub>, socket: Socket, client_ip: Option<IpAddr>) {
    let _live = hub.enter();
    let mut connection = Connection::new(hub, socket, client_ip);
    let closing = connection.run().await;
    connection.release();
    if let Some(message) = &closing.fatal {
        connection
            .hub
            .metrics
            .protocol_errors
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::debug!(%message, "closing a sync connection after a protocol error");
    }
    connection.farewell(closing).await;
}

/// A subscribed query.
struct Subscribed {
    path: String,
    /// The decoded arguments with their encoded text (what identical runs are recognised by), or
    /// why they do not decode.
    args: Result<(Value, String), String>,
    sub: SubId,
    /// Digest of the result the client has (`None` before the first one).
    sent: Option<[u8; 32]>,
}

struct MutationJob {
    request_id: u32,
    session: Option<String>,
    call: Result<Call, FunctionError>,
}

enum Completion {
    Mutation {
        request_id: u32,
        reply: Arc<Reply>,
    },
    Action {
        request_id: u32,
        trace: RequestId,
        result: Result<Value, FunctionError>,
    },
}

/// Where finished mutations and actions report back; made with the first request. Items are
/// boxed: a channel allocates a block of slots up front, which for mostly idle channels on
/// thousands of connections adds up.
struct Requests {
    completions: mpsc::Receiver<Box<Completion>>,
    completions_tx: mpsc::Sender<Box<Completion>>,
    /// The mutation worker's queue and the worker, once a mutation came.
    mutations: Option<(mpsc::Sender<Box<MutationJob>>, JoinHandle<()>)>,
}

struct Connection {
    hub: Arc<Hub>,
    socket: Socket,
    signal: Arc<ConnSignal>,
    client_ip: Option<IpAddr>,
    session_id: Option<String>,
    /// The token of the last successful `Authenticate` (never logged).
    token: Option<String>,
    /// Re-checks of the token, while it is still valid.
    recheck: Option<tokio::time::Interval>,
    /// The latest query set version the client asked for.
    query_set: u32,
    identity: u32,
    /// The version the client is at: the end of the last Transition sent.
    sent: StateVersion,
    queries: HashMap<QueryId, Subscribed>,
    /// Modifications for the next Transition.
    pending: Vec<String>,
    /// Send a Transition even without modifications (query set or identity changed, a mutation
    /// failed).
    force: bool,
    /// A mutation's commit ts the client waits to see a Transition reach.
    awaiting: Option<Ts>,
    requests: Option<Requests>,
    inflight: usize,
    last_received: Instant,
    last_sent: Instant,
    /// When the last ping frame went out (a client that only listens answers nothing else).
    last_probe: Instant,
    /// Queries whose last run failed for a transient reason: failures in a row, and when the
    /// next run is due. A failed run may have read nothing, so no commit would ever wake it.
    retries: HashMap<QueryId, (u32, Instant)>,
}

impl Connection {
    fn new(hub: Arc<Hub>, socket: Socket, client_ip: Option<IpAddr>) -> Connection {
        let now = Instant::now();
        Connection {
            hub,
            socket,
            signal: Arc::new(ConnSignal::default()),
            client_ip,
            session_id: None,
            token: None,
            recheck: None,
            query_set: 0,
            identity: 0,
            sent: StateVersion {
                query_set: 0,
                identity: 0,
                ts: Ts(0),
            },
            queries: HashMap::new(),
            pending: Vec::new(),
            force: false,
            awaiting: None,
            requests: None,
            inflight: 0,
            last_received: now,
            last_sent: now,
            last_probe: now,
            retries: HashMap::new(),
        }
    }

    /// Unregisters every subscription and stops taking mutations (one already running finishes and
    /// is recorded).
    fn release(&mut self) {
        for (_, query) in self.queries.drain() {
            self.hub.subscriptions.unregister(query.sub);
        }
        if let Some((_, worker)) = self.requests.as_mut().and_then(|r| r.mutations.take()) {
            worker.abort();
        }
    }

    /// Tells the client why (a `FatalError`, a close frame) and waits a little for it to answer
    /// the close, so the socket closes cleanly and the reason arrives.
    async fn farewell(&mut self, closing: Closing) {
        if let Some(message) = &closing.fatal {
            let text = protocol::fatal_error(message);
            let _ = timeout(FAREWELL, self.socket.send(Message::Text(text.into()))).await;
        }
        let Some((code, reason)) = closing.frame else {
            // The client closed first: this sends the answer tungstenite queued for its close.
            let _ = timeout(FAREWELL, self.socket.close(None)).await;
            return;
        };
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        if let Ok(Ok(())) = timeout(FAREWELL, self.socket.send(Message::Close(Some(frame)))).await {
            let socket = &mut self.socket;
            let _ = timeout(FAREWELL, async {
                while let Some(Ok(message)) = socket.next().await {
                    if matches!(message, Message::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        }
    }

    async fn run(&mut self) -> Closing {
        let mut stop = self.hub.stop_signal();
        let mut position = self.hub.subscriptions.watch_position();
        let options = self.hub.options.clone();
        loop {
            let waiting = self
                .awaiting
                .is_some_and(|ts| ts > self.hub.subscriptions.position());
            let retry = self.retries.values().map(|(_, due)| *due).min();
            let step = tokio::select! {
                biased;
                _ = super::stopped(&mut stop) => {
                    return Closing::close(1012, "InternalServerError: the server is restarting");
                }
                message = self.socket.next() => self.receive(message).await,
                Some(done) = completion(&mut self.requests) => self.complete(*done).await,
                _ = self.signal.notify.notified() => Ok(()),
                _ = position.changed(), if waiting => Ok(()),
                _ = sleep_until(retry.unwrap_or_else(Instant::now)), if retry.is_some() => {
                    let now = Instant::now();
                    let due = self.retries.iter().filter(|(_, (_, at))| *at <= now);
                    self.signal.mark_all(due.map(|(id, _)| *id).collect::<Vec<_>>());
                    Ok(())
                }
                _ = tick(&mut self.recheck) => {
                    self.recheck_identity().await;
                    Ok(())
                }
                _ = sleep_until(self.last_sent + options.ping_interval) => {
                    self.send(protocol::PING.to_string()).await
                }
                _ = sleep_until(self.last_received.max(self.last_probe) + options.ping_interval) => {
                    self.last_probe = Instant::now();
                    self.send_message(Message::Ping(Default::default())).await
                }
                _ = sleep_until(self.last_received + options.idle_timeout) => Err(Closing::close(
                    1001,
                    format!("ClientIdle: nothing received for {} s", options.idle_timeout.as_secs()),
                )),
            };
            if let Err(closing) = step {
                return closing;
            }
            if let Err(closing) = self.sync().await {
                return closing;
            }
        }
    }

    async fn receive(&mut self, message: Option<Result<Message, WsError>>) -> Result<(), Closing> {
        let too_large = || {
            Closing::fatal(
                1009,
                format!(
                    "MessageTooLarge: messages are limited to {} bytes",
                    self.hub.options.max_message_bytes
                ),
            )
        };
        match message {
            None | Some(Ok(Message::Close(_))) => Err(Closing::gone()),
            Some(Err(WsError::Capacity(_))) => Err(too_large()),
            Some(Err(WsError::Utf8(_))) => Err(Closing::fatal(
                1007,
                "InvalidUtf8: a text frame must hold UTF-8",
            )),
            Some(Err(error)) => {
                tracing::debug!(%error, "sync connection read failed");
                Err(Closing::gone())
            }
            Some(Ok(message)) => {
                self.last_received = Instant::now();
                match message {
                    Message::Text(text) if text.len() > self.hub.options.max_message_bytes => {
                        Err(too_large())
                    }
                    Message::Text(text) => self.handle(text.as_str()).await,
                    Message::Binary(_) => Err(Closing::fatal(
                        1003,
                        "BinaryMessage: the sync protocol uses text frames",
                    )),
                    // Pings and pongs only prove the client alive.
                    _ => Ok(()),
                }
            }
        }
    }

    /// Sends a text message; a large one as continuation frames, so the socket's write buffer
    /// never grows beyond one frame (it keeps its capacity for the connection's lifetime).
    async fn send(&mut self, text: String) -> Result<(), Closing> {
        if text.len() <= FRAME_BYTES {
            return self.send_message(Message::Text(text.into())).await;
        }
        let socket = &mut self.socket;
        let frames = async {
            let mut rest = text.as_str();
            let mut opcode = OpCode::Data(Data::Text);
            while !rest.is_empty() {
                let mut end = rest.len().min(FRAME_BYTES);
                while !rest.is_char_boundary(end) {
                    end -= 1;
                }
                let (chunk, tail) = rest.split_at(end);
                let frame = Frame::message(chunk.as_bytes().to_vec(), opcode, tail.is_empty());
                socket.feed(Message::Frame(frame)).await?;
                opcode = OpCode::Data(Data::Continue);
                rest = tail;
            }
            socket.flush().await
        };
        let sent = timeout(self.hub.options.send_timeout, frames).await;
        self.after_send(sent)
    }

    async fn send_message(&mut self, message: Message) -> Result<(), Closing> {
        let sent = timeout(self.hub.options.send_timeout, self.socket.send(message)).await;
        self.after_send(sent)
    }

    fn after_send(
        &mut self,
        sent: Result<Result<(), WsError>, tokio::time::error::Elapsed>,
    ) -> Result<(), Closing> {
        match sent {
            Ok(Ok(())) => {
                self.last_sent = Instant::now();
                Ok(())
            }
            Ok(Err(_)) => Err(Closing::gone()),
            Err(_) => {
                self.hub
                    .metrics
                    .slow_client_disconnects
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // The socket is mid-write; nothing more can be sent on it.
                Err(Closing::gone())
            }
        }
    }

    async fn handle(&mut self, text: &str) -> Result<(), Closing> {
        let message = protocol::parse(text).map_err(|e| Closing::fatal(1008, e))?;
        // Everything but telemetry comes after the one Connect that opens the session (§B.1).
        let connected = self.session_id.is_some();
        match &message {
            ClientMessage::Connect { .. } if connected => {
                return Err(Closing::fatal(
                    1008,
                    "Invalid message: Connect was already sent on this connection",
                ))
            }
            ClientMessage::Connect { .. } | ClientMessage::Event {} => {}
            _ if !connected => {
                return Err(Closing::fatal(
                    1008,
                    "Invalid message: the first message must be Connect",
                ))
            }
            _ => {}
        }
        match message {
            ClientMessage::Connect {
                session_id,
                max_observed_timestamp,
            } => {
                if let Some(ts) = &max_observed_timestamp {
                    if protocol::decode_ts(ts).is_none() {
                        return Err(Closing::fatal(
                            1008,
                            "Invalid message: maxObservedTimestamp is not a timestamp (base64 of 8 little-endian bytes)",
                        ));
                    }
                }
                self.session_id = Some(session_id);
                Ok(())
            }
            ClientMessage::ModifyQuerySet {
                base_version,
                new_version,
                modifications,
            } => self.modify(base_version, new_version, modifications),
            ClientMessage::Mutation {
                request_id,
                udf_path,
                args,
            } => self.submit_mutation(request_id, udf_path, args),
            ClientMessage::Action {
                request_id,
                udf_path,
                args,
            } => self.submit_action(request_id, udf_path, args),
            ClientMessage::Authenticate {
                token_type,
                value,
                base_version,
            } => self.authenticate(&token_type, value, base_version).await,
            ClientMessage::Event {} => Ok(()),
        }
    }

    fn modify(
        &mut self,
        base_version: u32,
        new_version: u32,
        modifications: Vec<Modification>,
    ) -> Result<(), Closing> {
        if base_version != self.query_set {
            return Err(Closing::fatal(
                1008,
                format!(
                    "BaseVersionMismatch: the query set is at version {}, not {base_version}",
                    self.query_set
                ),
            ));
        }
        if new_version <= base_version {
            return Err(Closing::fatal(
                1008,
                format!("InvalidQuerySetVersion: {new_version} does not follow {base_version}"),
            ));
        }
        let max = self.hub.options.max_subscriptions;
        for modification in modifications {
            match modification {
                Modification::Add {
                    query_id,
                    udf_path,
                    args,
                } => {
                    if self.queries.contains_key(&query_id) {
                        return Err(Closing::fatal(
                            1008,
                            format!("DuplicateQueryId: query {query_id} is already subscribed"),
                        ));
                    }
                    if self.queries.len() >= max {
                        return Err(Closing::fatal(
                            1008,
                            format!("TooManySubscriptions: at most {max} queries per connection"),
                        ));
                    }
                    let query = Subscribed {
                        path: udf_path,
                        args: protocol::decode_args(args).map(|args| {
                            let text = Format::Encoded.encode_to_string(&args);
                            (args, text)
                        }),
                        sub: self.hub.subscriptions.new_id(),
                        sent: None,
                    };
                    self.queries.insert(query_id, query);
                    // The next sync runs it, like any query whose result may have changed.
                    self.signal.mark(query_id);
                }
                Modification::Remove { query_id } => {
                    let Some(query) = self.queries.remove(&query_id) else {
                        return Err(Closing::fatal(
                            1008,
                            format!("UnknownQueryId: query {query_id} is not subscribed"),
                        ));
                    };
                    self.hub.subscriptions.unregister(query.sub);
                    self.retries.remove(&query_id);
                    self.pending.push(protocol::query_removed(query_id));
                }
            }
        }
        self.query_set = new_version;
        self.force = true;
        Ok(())
    }

    fn auth(&self) -> Auth {
        match &self.token {
            Some(token) => Auth::bearer(token.clone()),
            None => Auth::anonymous(),
        }
        .with_client_ip(self.client_ip)
    }

    fn call(&self, path: String, kind: FunctionKind, args: Value) -> Call {
        Call {
            path,
            expected: Some(kind),
            args,
            auth: self.auth(),
            request_id: RequestId::generate(),
            caller: Caller::Client,
        }
    }

    fn requests(&mut self) -> &mut Requests {
        let capacity = self.hub.options.max_inflight.max(1);
        self.requests.get_or_insert_with(|| {
            let (completions_tx, completions) = mpsc::channel(capacity);
            Requests {
                completions,
                completions_tx,
                mutations: None,
            }
        })
    }

    fn admit_request(&mut self) -> Result<(), Closing> {
        if self.inflight >= self.hub.options.max_inflight {
            return Err(Closing::close(
                1013,
                format!(
                    "TooManyConcurrentRequests: at most {} mutations and actions in flight per connection",
                    self.hub.options.max_inflight
                ),
            ));
        }
        self.inflight += 1;
        Ok(())
    }

    fn submit_mutation(
        &mut self,
        request_id: u32,
        path: String,
        args: serde_json::Value,
    ) -> Result<(), Closing> {
        self.hub
            .metrics
            .mutations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.admit_request()?;
        let call = protocol::decode_args(args)
            .map(|args| self.call(path, FunctionKind::Mutation, args))
            .map_err(|message| FunctionError::plain(ErrorCode::Validation, message));
        let job = MutationJob {
            request_id,
            session: self.session_id.clone(),
            call,
        };
        let capacity = self.hub.options.max_inflight.max(1);
        let hub = self.hub.clone();
        let requests = self.requests();
        let done = requests.completions_tx.clone();
        let (queue, _) = requests.mutations.get_or_insert_with(|| {
            let (queue, jobs) = mpsc::channel(capacity);
            (queue, tokio::spawn(run_mutations(hub, jobs, done)))
        });
        // Capacity matches the in-flight limit admitted above.
        queue
            .try_send(Box::new(job))
            .map_err(|_| Closing::close(1011, "InternalServerError: mutation queue unavailable"))
    }

    fn submit_action(
        &mut self,
        request_id: u32,
        path: String,
        args: serde_json::Value,
    ) -> Result<(), Closing> {
        self.hub
            .metrics
            .actions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.admit_request()?;
        let call = protocol::decode_args(args)
            .map(|args| self.call(path, FunctionKind::Action, args))
            .map_err(|message| FunctionError::plain(ErrorCode::Validation, message));
        let runtime = self.hub.runtime.clone();
        let done = self.requests().completions_tx.clone();
        tokio::spawn(async move {
            let (trace, result) = match call {
                Ok(call) => {
                    let trace = call.request_id.clone();
                    (trace, runtime.call(call).await.map(|outcome| outcome.value))
                }
                Err(error) => (RequestId::generate(), Err(error)),
            };
            let completion = Completion::Action {
                request_id,
                trace,
                result,
            };
            let _ = done.send(Box::new(completion)).await;
        });
        Ok(())
    }

    async fn authenticate(
        &mut self,
        token_type: &str,
        value: Option<String>,
        base_version: u32,
    ) -> Result<(), Closing> {
        if base_version != self.identity {
            return Err(Closing::fatal(
                1008,
                format!(
                    "IdentityVersionMismatch: the identity is at version {}, not {base_version}",
                    self.identity
                ),
            ));
        }
        match token_type {
            "User" => {
                let token = value.unwrap_or_default();
                if let Err(message) = self.check_token(&token).await {
                    let error = protocol::auth_error(&message, self.identity, true);
                    self.send(error).await?;
                    return Err(Closing::close(1000, "AuthError"));
                }
                self.token = Some(token);
                let every = self.hub.options.identity_recheck;
                let mut recheck = tokio::time::interval_at(Instant::now() + every, every);
                recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                self.recheck = Some(recheck);
            }
            "None" => {
                self.token = None;
                self.recheck = None;
            }
            "Admin" => {
                let message = "Admin keys are not accepted; authenticate with a session token";
                self.send(protocol::auth_error(message, self.identity, true))
                    .await?;
                return Err(Closing::close(1000, "AuthError"));
            }
            other => {
                return Err(Closing::fatal(
                    1008,
                    format!("Invalid message: unknown tokenType {other:?}"),
                ))
            }
        }
        self.identity += 1;
        // Every result may depend on who is asking.
        self.signal.mark_all(self.queries.keys().copied());
        self.force = true;
        Ok(())
    }

    /// Validates a session token with the query the registry names (`Registry::authenticate_with`):
    /// the same check the HTTP API's bearer path leads to inside every function. (`&mut self`
    /// because the socket is not `Sync`: a shared borrow of the connection cannot cross an await.)
    async fn check_token(&mut self, token: &str) -> Result<(), String> {
        if token.is_empty() {
            return Err("Authentication token is empty".into());
        }
        let Some(path) = self.hub.runtime.registry().auth_check() else {
            return Ok(());
        };
        let call = Call {
            path: path.to_string(),
            expected: Some(FunctionKind::Query),
            args: Value::Object(Default::default()),
            auth: Auth::bearer(token).with_client_ip(self.client_ip),
            request_id: RequestId::generate(),
            caller: Caller::Server,
        };
        let trace = call.request_id.clone();
        match self.hub.runtime.run_query(call).await.result {
            Ok((Value::Null, _)) => Err("Invalid or expired session".into()),
            Ok(_) => Ok(()),
            Err(error) => Err(error.client_message(trace.as_str())),
        }
    }

    /// A token that was valid may have expired since (sessions end by time too): then every
    /// query runs again under it, and checks stop until the client authenticates again.
    async fn recheck_identity(&mut self) {
        let Some(token) = self.token.clone() else {
            self.recheck = None;
            return;
        };
        if self.check_token(&token).await.is_err() {
            self.recheck = None;
            self.signal.mark_all(self.queries.keys().copied());
        }
    }

    async fn complete(&mut self, done: Completion) -> Result<(), Closing> {
        self.inflight = self.inflight.saturating_sub(1);
        match done {
            Completion::Mutation { request_id, reply } => match &reply.result {
                Ok((value, log_lines)) => {
                    let answer = Answer::Success { value, log_lines };
                    self.send(protocol::mutation_response(request_id, answer, reply.ts))
                        .await?;
                    match reply.ts {
                        Some(ts) => self.awaiting = Some(self.awaiting.map_or(ts, |t| t.max(ts))),
                        None => self.force = true,
                    }
                }
                Err(error) => {
                    let answer = Answer::Failure {
                        error,
                        request_id: reply.trace.as_str(),
                        log_lines: &[],
                    };
                    self.send(protocol::mutation_response(request_id, answer, None))
                        .await?;
                    // The backend follows failures with a Transition too; the Rust client waits
                    // for one after a ConvexError.
                    self.force = true;
                }
            },
            Completion::Action {
                request_id,
                trace,
                result,
            } => {
                let text = match &result {
                    Ok(value) => protocol::action_response(
                        request_id,
                        Answer::Success {
                            value,
                            log_lines: &[],
                        },
                    ),
                    Err(error) => protocol::action_response(
                        request_id,
                        Answer::Failure {
                            error,
                            request_id: trace.as_str(),
                            log_lines: &[],
                        },
                    ),
                };
                self.send(text).await?;
            }
        }
        Ok(())
    }

    /// Re-runs the dirty queries and sends a Transition when there is something to tell: changed
    /// results, a query set or identity change, or a mutation's ts now reached.
    async fn sync(&mut self) -> Result<(), Closing> {
        // Read the position before taking the dirty set: every invalidation up to it is in the set.
        let position = self.hub.subscriptions.position();
        let dirty = self.signal.take();
        if !dirty.is_empty() {
            self.rerun(dirty, position).await;
        }
        let reached = self.awaiting.is_some_and(|ts| ts <= position);
        if self.pending.is_empty() && !self.force && !reached {
            return Ok(());
        }
        let end = StateVersion {
            query_set: self.query_set,
            identity: self.identity,
            ts: self.sent.ts.max(position),
        };
        let text = protocol::transition(self.sent, end, &self.pending);
        self.pending.clear();
        self.force = false;
        if reached {
            self.awaiting = None;
        }
        self.sent = end;
        self.hub
            .metrics
            .transitions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.send(text).await
    }

    async fn rerun(&mut self, dirty: HashSet<QueryId>, position: Ts) {
        let token = self.token.clone();
        let client_ip = self.client_ip;
        let runs = self.hub.runs.clone();
        let work: Vec<_> = dirty
            .into_iter()
            .filter_map(|id| {
                let query = self.queries.get(&id)?;
                Some((id, query.sub, query.path.clone(), query.args.clone()))
            })
            .collect();
        let results: Vec<(QueryId, SubId, Arc<Finished>)> = futures::stream::iter(work)
            .map(|(id, sub, path, args)| {
                let (runs, token) = (runs.clone(), token.clone());
                async move {
                    let finished = match args {
                        Ok((args, text)) => {
                            let key = RunKey {
                                path,
                                args: text,
                                token,
                                client_ip,
                            };
                            runs.run(key, args, position).await
                        }
                        Err(message) => Arc::new(runs::invalid_args(message)),
                    };
                    (id, sub, finished)
                }
            })
            .buffer_unordered(RERUN_CONCURRENCY)
            .collect()
            .await;
        for (id, sub, finished) in results {
            let Some(query) = self.queries.get_mut(&id).filter(|q| q.sub == sub) else {
                continue;
            };
            self.hub
                .subscriptions
                .register(sub, &self.signal, id, finished.reads.clone());
            match &finished.outcome {
                // Retried with backoff until it succeeds: the outage ends without a commit
                // touching what this run (did not) read.
                Outcome::Error(error) if error.code() == Some(ErrorCode::Unavailable) => {
                    let failures = self.retries.get(&id).map_or(0, |(n, _)| *n) + 1;
                    self.retries
                        .insert(id, (failures, Instant::now() + backoff(failures)));
                }
                _ => {
                    self.retries.remove(&id);
                }
            }
            if query.sent == Some(finished.digest) {
                continue;
            }
            query.sent = Some(finished.digest);
            self.pending.push(match &finished.outcome {
                Outcome::Value(encoded, log_lines) => {
                    protocol::query_updated_encoded(id, encoded, log_lines)
                }
                Outcome::Error(error) => {
                    protocol::query_failed(id, error, finished.request_id.as_str(), &[])
                }
            });
            self.hub
                .metrics
                .pushes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// The wait before the next run of a query that failed `failures` times in a row: doubling from
/// `RETRY_FIRST` to `RETRY_MAX`, less up to a half at random so that the subscribers of an outage
/// do not all return at once.
fn backoff(failures: u32) -> Duration {
    let full = RETRY_FIRST
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(RETRY_MAX);
    full.mul_f64(1.0 - rand::random::<f64>() / 2.0)
}

/// The next finished request; never resolves before the first request.
async fn completion(requests: &mut Option<Requests>) -> Option<Box<Completion>> {
    match requests {
        Some(requests) => requests.completions.recv().await,
        None => std::future::pending().await,
    }
}

/// The next tick of an optional interval; never resolves without one.
async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Runs a connection's mutations one at a time, in arrival order.
async fn run_mutations(
    hub: Arc<Hub>,
    mut queue: mpsc::Receiver<Box<MutationJob>>,
    done: mpsc::Sender<Box<Completion>>,
) {
    while let Some(job) = queue.recv().await {
        let reply = match job.call {
            Ok(call) => {
                hub.mutations
                    .run(job.session.as_deref(), job.request_id, call)
                    .await
            }
            Err(error) => Arc::new(Reply {
                result: Err(error),
                ts: None,
                trace: RequestId::generate(),
            }),
        };
        let completion = Completion::Mutation {
            request_id: job.request_id,
            reply,
        };
        if done.send(Box::new(completion)).await.is_err() {
            return;
        }
    }
}
