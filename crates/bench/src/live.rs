//! The live-query benchmark: many WebSocket subscribers over many companies' lists, one mutation at
//! a time to one company, and how long it takes until the last subscriber of that company has the
//! new result. Also: query runs per commit (only the changed company's subscribers should run) and
//! the server's memory with every subscription open.
//!
//! Latency is measured from the commit's own ts (nanoseconds since the epoch, taken by the server
//! just before it commits; the bench runs on the same machine, so the clocks agree) to the moment a
//! subscriber's task has read and parsed its update.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{json, Value as Json};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::functions::{group_name, item_key};
use crate::http::Connection;
use crate::load::RssSampler;
use crate::pg::FreshDatabase;
use crate::runner::{progress, Backend};
use crate::serve::{Memory, ServerProcess};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Clone, Debug)]
pub struct LiveOptions {
    pub exe: PathBuf,
    pub subscribers: usize,
    pub companies: usize,
    pub items_per_company: usize,
    pub mutations: usize,
    /// Subscriptions opened at the same time while connecting.
    pub connect_parallelism: usize,
}

/// What one backend's run measured.
#[derive(Clone, Debug)]
pub struct LiveReport {
    pub backend: String,
    pub subscribers: usize,
    pub companies: usize,
    pub mutations: usize,
    /// Commit to the last affected subscriber's update.
    pub last_p50_ms: f64,
    pub last_p99_ms: f64,
    pub last_max_ms: f64,
    /// Commit to the first affected subscriber's update.
    pub first_p50_ms: f64,
    /// Subscription query runs per commit: identical subscriptions share a run, and subscriptions
    /// of other companies must not run at all.
    pub runs_per_commit: f64,
    /// Updated results sent per commit: exactly the changed company's subscribers.
    pub pushes_per_commit: f64,
    /// Server memory once every subscription is open, and the most sampled during the mutations.
    pub idle_with_subscriptions: Memory,
    pub peak_rss_kib: u64,
    pub connect_seconds: f64,
}

pub async fn run(options: &LiveOptions, backend: &Backend) -> anyhow::Result<LiveReport> {
    anyhow::ensure!(
        options.companies > 0 && options.subscribers >= options.companies,
        "need at least one subscriber per company"
    );
    match backend {
        Backend::Sqlite => run_on(options, backend.name(), None).await,
        Backend::Postgres { admin_url } => {
            let database = FreshDatabase::create(admin_url).await?;
            let result = run_on(options, backend.name(), Some(database.url.clone())).await;
            let dropped = database.drop_database().await;
            let report = result?;
            dropped?;
            Ok(report)
        }
    }
}

/// What a subscriber saw: its company, the last item of the list, and when.
struct Seen {
    company: usize,
    last_key: String,
    at_ns: u64,
}

async fn run_on(
    options: &LiveOptions,
    backend: &str,
    database_url: Option<String>,
) -> anyhow::Result<LiveReport> {
    let dir = tempfile::tempdir().context("creating a data directory")?;
    let (exe, data_dir) = (options.exe.clone(), dir.path().join("data"));
    let server = tokio::task::spawn_blocking(move || {
        ServerProcess::spawn(&exe, &data_dir, database_url.as_deref())
    })
    .await??;
    progress(format!(
        "{backend} live: server pid {} on {}",
        server.pid(),
        server.addr
    ));
    seed(server.addr, options).await?;

    let started = Instant::now();
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let gate = Arc::new(Semaphore::new(options.connect_parallelism.max(1)));
    let mut opening = tokio::task::JoinSet::new();
    for n in 0..options.subscribers {
        let company = n % options.companies;
        let (gate, seen_tx, addr) = (gate.clone(), seen_tx.clone(), server.addr);
        opening.spawn(async move {
            let permit = gate.acquire_owned().await?;
            let socket = subscribe(addr, company).await?;
            drop(permit);
            tokio::spawn(follow(socket, company, seen_tx));
            anyhow::Ok(())
        });
    }
    drop(seen_tx);
    while let Some(opened) = opening.join_next().await {
        opened??;
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    progress(format!(
        "{backend} live: {} subscriptions open in {connect_seconds:.1} s",
        options.subscribers
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_with_subscriptions = server.memory()?;
    let mut http = Connection::open(server.addr).await?;
    let runs_before = metric(&mut http, "sync_query_runs_total").await?;
    let pushes_before = metric(&mut http, "sync_query_pushes_total").await?;
    // Updates that arrived while connecting are not measurements.
    while seen.try_recv().is_ok() {}

    let sampler = RssSampler::start(server.pid());
    let mut writer = Writer::open(server.addr).await?;
    let mut last = histogram();
    let mut first = histogram();
    for m in 0..options.mutations {
        // Spread over the companies, so each change lands on a list nobody is still catching up on.
        let company = (m * 37) % options.companies;
        let key = item_key(1_000_000 + m);
        let n = (options.items_per_company + m) as f64;
        let committed = writer
            .mutation(
                "bench:insert",
                json!({"group": group_name(company), "key": key, "n": n, "payload": "live"}),
            )
            .await?;
        let expected = (0..options.subscribers)
            .filter(|s| s % options.companies == company)
            .count();
        let (mut got, mut earliest, mut latest) = (0, u64::MAX, 0);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while got < expected {
            let report = tokio::time::timeout_at(deadline, seen.recv())
                .await
                .with_context(|| {
                    format!("mutation {m}: only {got} of {expected} subscribers updated in 30 s")
                })?
                .context("subscribers went away")?;
            if report.company == company && report.last_key == key {
                got += 1;
                earliest = earliest.min(report.at_ns);
                latest = latest.max(report.at_ns);
            }
        }
        last.record(latest.saturating_sub(committed) / 1000).ok();
        first.record(earliest.saturating_sub(committed) / 1000).ok();
    }
    let peak_rss_kib = sampler.finish().await;
    let runs = metric(&mut http, "sync_query_runs_total").await? - runs_before;
    let pushes = metric(&mut http, "sync_query_pushes_total").await? - pushes_before;
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let report = LiveReport {
        backend: backend.to_string(),
        subscribers: options.subscribers,
        companies: options.companies,
        mutations: options.mutations,
        last_p50_ms: ms(&last, 0.50),
        last_p99_ms: ms(&last, 0.99),
        last_max_ms: last.max() as f64 / 1000.0,
        first_p50_ms: ms(&first, 0.50),
        runs_per_commit: runs as f64 / options.mutations.max(1) as f64,
        pushes_per_commit: pushes as f64 / options.mutations.max(1) as f64,
        idle_with_subscriptions,
        peak_rss_kib,
        connect_seconds,
    };
    tokio::task::spawn_blocking(move || server.stop()).await??;
    Ok(report)
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("static histogram bounds are valid")
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

async fn seed(addr: SocketAddr, options: &LiveOptions) -> anyhow::Result<()> {
    let mut connection = Connection::open(addr).await?;
    for company in 0..options.companies {
        connection
            .call(
                "mutation",
                "bench:seed",
                json!({
                    "group": group_name(company),
                    "first": (company * options.items_per_company) as f64,
                    "count": options.items_per_company as f64,
                    "payloadLen": 100.0,
                }),
            )
            .await
            .context("seeding the companies' lists")?;
    }
    Ok(())
}

async fn open(addr: SocketAddr) -> anyhow::Result<Socket> {
    let url = format!("ws://{addr}/api/sync");
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .with_context(|| format!("connecting to {url}"))?;
    let session = format!("bench-{}", hex::encode(rand::random::<[u8; 8]>()));
    send(
        &mut socket,
        json!({"type": "Connect", "sessionId": session, "connectionCount": 0, "lastCloseReason": "InitialConnect", "clientTs": 0}),
    )
    .await?;
    Ok(socket)
}

async fn send(socket: &mut Socket, message: Json) -> anyhow::Result<()> {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .context("sending on the WebSocket")
}

/// The next protocol message other than Ping.
async fn receive(socket: &mut Socket) -> anyhow::Result<Json> {
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                let message: Json = serde_json::from_str(&text)?;
                if message["type"] != "Ping" {
                    return Ok(message);
                }
            }
            Some(Ok(Message::Close(frame))) => bail!("the server closed the socket: {frame:?}"),
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error.into()),
            None => bail!("the server closed the socket"),
        }
    }
}

/// Opens a connection subscribed to one company's list and waits for the first result.
async fn subscribe(addr: SocketAddr, company: usize) -> anyhow::Result<Socket> {
    let mut socket = open(addr).await?;
    send(
        &mut socket,
        json!({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": [
            {"type": "Add", "queryId": 0, "udfPath": "bench:range50", "args": [{"group": group_name(company)}]}
        ]}),
    )
    .await?;
    let first = receive(&mut socket).await?;
    if first["type"] != "Transition" || first["modifications"][0]["type"] != "QueryUpdated" {
        bail!("unexpected first answer to a subscription: {first}");
    }
    Ok(socket)
}

/// Reports every update of a subscriber's list until the socket closes.
async fn follow(mut socket: Socket, company: usize, seen: mpsc::UnboundedSender<Seen>) {
    while let Ok(message) = receive(&mut socket).await {
        let at_ns = now_ns();
        let Some(list) = message["modifications"]
            .as_array()
            .and_then(|mods| mods.iter().find(|m| m["queryId"] == 0))
        else {
            continue;
        };
        let last_key = list["value"]
            .as_array()
            .and_then(|docs| docs.last())
            .and_then(|doc| doc["key"].as_str())
            .unwrap_or_default()
            .to_string();
        if seen
            .send(Seen {
                company,
                last_key,
                at_ns,
            })
            .is_err()
        {
            return;
        }
    }
}

/// Sends mutations over WebSocket (their response carries the commit ts).
struct Writer {
    socket: Socket,
    next_request: u32,
}

impl Writer {
    async fn open(addr: SocketAddr) -> anyhow::Result<Writer> {
        Ok(Writer {
            socket: open(addr).await?,
            next_request: 0,
        })
    }

    /// Runs a mutation; returns its commit ts (ns since the epoch).
    async fn mutation(&mut self, path: &str, args: Json) -> anyhow::Result<u64> {
        let request = self.next_request;
        self.next_request += 1;
        send(
            &mut self.socket,
            json!({"type": "Mutation", "requestId": request, "udfPath": path, "args": [args]}),
        )
        .await?;
        loop {
            let message = receive(&mut self.socket).await?;
            if message["type"] != "MutationResponse" {
                continue;
            }
            if message["success"] != true {
                bail!("{path} failed: {message}");
            }
            let ts = message["ts"].as_str().context("a ts")?;
            let bytes = base64::engine::general_purpose::STANDARD.decode(ts)?;
            let bytes: [u8; 8] = bytes
                .try_into()
                .map_err(|_| anyhow::anyhow!("a ts has 8 bytes"))?;
            return Ok(u64::from_le_bytes(bytes));
        }
    }
}

async fn metric(http: &mut Connection, name: &str) -> anyhow::Result<i64> {
    let text = http.get_text("/metrics").await?;
    let prefix = format!("supportsignal_{name} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .with_context(|| format!("no metric {name}"))?
        .trim()
        .parse()
        .with_context(|| format!("metric {name}"))
}

/// The markdown printed for the live-query runs.
pub fn render(reports: &[LiveReport]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| backend | subscribers | companies | mutations | commit→last update p50 | p99 | max | commit→first update p50 | query runs / commit | updates sent / commit | server RSS, all subscribed | peak RSS | connect time |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in reports {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} | {:.1} | {:.0} MiB | {:.0} MiB | {:.1} s |",
            r.backend,
            r.subscribers,
            r.companies,
            r.mutations,
            r.last_p50_ms,
            r.last_p99_ms,
            r.last_max_ms,
            r.first_p50_ms,
            r.runs_per_commit,
            r.pushes_per_commit,
            r.idle_with_subscriptions.rss_kib as f64 / 1024.0,
            r.peak_rss_kib as f64 / 1024.0,
            r.connect_seconds,
        );
    }
    for r in reports {
        let affected = r.subscribers as f64 / r.companies as f64;
        let _ = writeln!(
            out,
            "\n{}: goal p99 < 50 ms for the {affected:.0} subscribers of the changed company: {} ({:.1} ms); \
             unaffected subscribers cost nothing: {} ({:.1} query runs and {:.0} updates per commit for {affected:.0} affected); \
             RSS < 200 MiB: {} ({:.0} MiB peak)",
            r.backend,
            if r.last_p99_ms < 50.0 { "met" } else { "NOT met" },
            r.last_p99_ms,
            if r.runs_per_commit <= affected && r.pushes_per_commit <= affected { "met" } else { "NOT met" },
            r.runs_per_commit,
            r.pushes_per_commit,
            if r.peak_rss_kib < 200 * 1024 { "met" } else { "NOT met" },
            r.peak_rss_kib as f64 / 1024.0,
        );
    }
    out
}
