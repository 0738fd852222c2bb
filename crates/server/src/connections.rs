//! The accept loop: hyper's HTTP/1 connection builder with a header-read deadline, an idle
//! keep-alive timeout and half-close support, and caps on open connections (in total and per
//! client address) checked at accept, so stalled or hoarded connections cannot use up the file
//! descriptors that `/health` and real clients need.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt as _;

/// What the accept loop enforces; from `Config`.
#[derive(Clone, Debug)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_per_client: usize,
}

/// Descriptors kept free for the database, files and the listener itself.
const RESERVED_FDS: usize = 128;

impl Limits {
    pub fn from_config(config: &config::Config) -> Limits {
        let mut max_connections = config.max_connections;
        if let Some(allowed) = open_file_limit().map(|n| n.saturating_sub(RESERVED_FDS)) {
            if allowed < max_connections {
                tracing::warn!(
                    configured = max_connections,
                    allowed,
                    "the open-file limit allows fewer connections than configured; raise `ulimit -n` to serve more"
                );
                max_connections = allowed.max(1);
            }
        }
        Limits {
            header_read_timeout: config.header_read_timeout,
            idle_timeout: config.idle_timeout,
            max_connections,
            max_per_client: config.max_connections_per_client,
        }
    }
}

/// The soft open-file limit, raised to the hard one first (a service's soft limit is often 1024).
#[cfg(unix)]
fn open_file_limit() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    usize::try_from(limit.rlim_cur).ok()
}

#[cfg(not(unix))]
fn open_file_limit() -> Option<usize> {
    None
}

/// Open connections, in total and per client address.
#[derive(Default)]
struct Counts {
    total: usize,
    by_client: HashMap<IpAddr, usize>,
}

/// A connection's place under the caps; given back when the socket closes, which for a WebSocket
/// is after the upgrade (the permit travels inside the upgraded stream).
struct Permit {
    counts: Arc<Mutex<Counts>>,
    ip: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut counts = self.counts.lock();
        counts.total -= 1;
        if let Some(n) = counts.by_client.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.by_client.remove(&self.ip);
            }
        }
    }
}

fn admit(counts: &Arc<Mutex<Counts>>, ip: IpAddr, limits: &Limits) -> Option<Permit> {
    let mut guard = counts.lock();
    let mine = guard.by_client.get(&ip).copied().unwrap_or(0);
    if guard.total >= limits.max_connections || mine >= limits.max_per_client {
        return None;
    }
    guard.total += 1;
    *guard.by_client.entry(ip).or_insert(0) += 1;
    Some(Permit {
        counts: counts.clone(),
        ip,
    })
}

/// Written, without waiting, to a connection over a cap before it is closed.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 67\r\n\r\n{\"code\":\"TooManyConnections\",\"message\":\"Too many open connections\"}";

/// A TCP stream holding its permit.
struct Tracked {
    stream: TcpStream,
    _permit: Permit,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// When a connection last finished a request, and how many it has in progress: the idle timer
/// runs only while none is.
struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// Requests answered; until the first, the header deadline alone limits the wait.
    answered: AtomicUsize,
    last_ms: AtomicU64,
}

impl Activity {
    fn last(&self) -> Instant {
        self.opened + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(activity: &Arc<Activity>) -> InFlight {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let ms = self.0.opened.elapsed().as_millis() as u64;
        self.0.last_ms.store(ms, Ordering::Relaxed);
        self.0.answered.fetch_add(1, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves `app` on `listener` until `signal` completes, then lets every open HTTP connection finish
/// the request it is on and waits for them to close (upgraded WebSockets are the hub's to close).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    signal: impl Future<Output = ()>,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // A client that sends a whole request and then shuts down its side still gets the answer.
        .half_close(true);
    let counts = Arc::new(Mutex::new(Counts::default()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Every connection task holds a sender; when all are gone, every connection has closed.
    let (open_tx, mut open_rx) = tokio::sync::mpsc::channel::<()>(1);
    let mut signal = pin!(signal);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: wait a little
                    // rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut signal => break,
        };
        let Some(permit) = admit(&counts, peer.ip(), &limits) else {
            // Fast refusal: no task, no wait; a client that is not reading simply sees the close.
            let _ = stream.try_write(REFUSAL);
            tracing::debug!(%peer, "connection refused: over the connection cap");
            continue;
        };
        // No Nagle delay: a WebSocket message written in several frames must not wait for the
        // client's delayed ACK between them.
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(Tracked {
            stream,
            _permit: permit,
        });
        tokio::spawn(connection(
            builder.clone(),
            io,
            peer,
            app.clone(),
            limits.idle_timeout,
            stop_rx.clone(),
            open_tx.clone(),
        ));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(open_tx);
    let _ = open_rx.recv().await;
}

async fn connection(
    builder: http1::Builder,
    io: TokioIo<Tracked>,
    peer: SocketAddr,
    app: Router,
    idle_timeout: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
    _open: tokio::sync::mpsc::Sender<()>,
) {
    let activity = Arc::new(Activity {
        opened: Instant::now(),
        in_flight: AtomicUsize::new(0),
        answered: AtomicUsize::new(0),
        last_ms: AtomicU64::new(0),
    });
    let tracker = activity.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
        let in_flight = InFlight::begin(&tracker);
        request.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        async move {
            let response = app.oneshot(request.map(axum::body::Body::new)).await;
            drop(in_flight);
            response
        }
    });
    let mut conn = pin!(builder.serve_connection(io, service).with_upgrades());
    let mut closing = false;
    let mut idle_check = activity.last() + idle_timeout;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stop.wait_for(|stopping| *stopping), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = tokio::time::sleep_until(idle_check.into()), if !closing => {
                let busy = activity.in_flight.load(Ordering::Relaxed) > 0
                    || activity.answered.load(Ordering::Relaxed) == 0;
                let due = activity.last() + idle_timeout;
                if busy {
                    idle_check = Instant::now() + idle_timeout;
                } else if due <= Instant::now() {
                    // Closes the connection at once when it is between requests.
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                } else {
                    idle_check = due;
                }
            }
        }
    }
}
