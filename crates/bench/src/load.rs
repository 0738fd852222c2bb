//! The closed-loop load generator: N clients, each with its own keep-alive connection, sending the
//! next request as soon as the previous answer arrives, for a warm-up and then a measured window.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::http::{is_success, Connection};
use crate::scenarios::Scenario;

/// Latencies are recorded in microseconds, up to a minute, to 3 significant digits.
const MAX_LATENCY_US: u64 = 60_000_000;

#[derive(Clone, Copy, Debug)]
pub struct CellConfig {
    pub clients: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

/// What one (scenario, clients) cell measured.
pub struct CellResult {
    /// Successful requests that completed inside the measured window.
    pub count: u64,
    /// Failed requests (non-200, non-success, transport errors), warm-up included.
    pub errors: u64,
    pub window: Duration,
    pub latency_us: Histogram<u64>,
    /// The first few error messages, to show what went wrong.
    pub error_samples: Vec<String>,
}

impl CellResult {
    pub fn throughput(&self) -> f64 {
        self.count as f64 / self.window.as_secs_f64()
    }
    pub fn percentile_ms(&self, q: f64) -> f64 {
        self.latency_us.value_at_quantile(q) as f64 / 1000.0
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("static histogram bounds are valid")
}

/// Keeps at most this many error messages per client.
const ERROR_SAMPLES: usize = 3;

/// One client's share of a cell.
struct ClientRun {
    count: u64,
    errors: u64,
    latency_us: Histogram<u64>,
    error_samples: Vec<String>,
}

impl ClientRun {
    fn error(&mut self, message: String) {
        self.errors += 1;
        if self.error_samples.len() < ERROR_SAMPLES {
            self.error_samples.push(message);
        }
    }
}

/// Runs one cell: opens every connection first, so connection set-up is not measured, then lets all
/// clients loop until the window closes.
pub async fn run_cell(
    addr: SocketAddr,
    scenario: Arc<dyn Scenario>,
    config: CellConfig,
) -> anyhow::Result<CellResult> {
    let mut connections = Vec::with_capacity(config.clients);
    for _ in 0..config.clients {
        connections.push(Connection::open(addr).await?);
    }
    let start = Instant::now();
    let measure_from = start + config.warmup;
    let until = measure_from + config.duration;
    let tasks: Vec<_> = connections
        .into_iter()
        .enumerate()
        .map(|(client, connection)| {
            let scenario = scenario.clone();
            tokio::spawn(client_loop(
                addr,
                scenario,
                client,
                connection,
                measure_from,
                until,
            ))
        })
        .collect();
    let mut result = CellResult {
        count: 0,
        errors: 0,
        window: config.duration,
        latency_us: histogram(),
        error_samples: Vec::new(),
    };
    for task in tasks {
        let run = task.await?;
        result.count += run.count;
        result.errors += run.errors;
        result.latency_us.add(&run.latency_us)?;
        let room = (ERROR_SAMPLES * 2).saturating_sub(result.error_samples.len());
        result
            .error_samples
            .extend(run.error_samples.into_iter().take(room));
    }
    Ok(result)
}

async fn client_loop(
    addr: SocketAddr,
    scenario: Arc<dyn Scenario>,
    client: usize,
    connection: Connection,
    measure_from: Instant,
    until: Instant,
) -> ClientRun {
    let mut run = ClientRun {
        count: 0,
        errors: 0,
        latency_us: histogram(),
        error_samples: Vec::new(),
    };
    let headers = scenario.headers(client);
    let route = scenario.route();
    let mut connection = Some(connection);
    let mut seq = 0u64;
    while Instant::now() < until {
        let conn = match connection.as_mut() {
            Some(conn) => conn,
            None => match Connection::open(addr).await {
                Ok(conn) => connection.insert(conn),
                Err(e) => {
                    run.error(format!("reconnect: {e:#}"));
                    // Do not spin on a server that refuses connections.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        // The body is built before the clock starts: it is the client's work, not the server's.
        let body = scenario.body(client, seq);
        seq += 1;
        let sent = Instant::now();
        let outcome = conn.post(route, body, &headers).await;
        let done = Instant::now();
        match outcome {
            Ok((status, body)) if is_success(status, &body) => {
                // Counted by completion time, so the count over the window is the throughput.
                if done >= measure_from && done <= until {
                    run.count += 1;
                    let micros = done.duration_since(sent).as_micros() as u64;
                    run.latency_us.saturating_record(micros.max(1));
                }
            }
            Ok((status, body)) => {
                let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
                run.error(format!("HTTP {status}: {text}"));
            }
            Err(e) => {
                run.error(format!("transport: {e:#}"));
                connection = None;
            }
        }
    }
    run
}

/// Samples a process's RSS while a cell runs; the peak is what "RSS under load" reports.
pub struct RssSampler {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<u64>,
}

impl RssSampler {
    pub fn start(pid: u32) -> RssSampler {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut peak = 0;
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            loop {
                if let Ok(memory) = crate::serve::read_memory(pid) {
                    peak = peak.max(memory.rss_kib);
                }
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = &mut stopped => return peak,
                }
            }
        });
        RssSampler { stop, task }
    }

    /// The highest VmRSS seen, in KiB.
    pub async fn finish(self) -> u64 {
        let _ = self.stop.send(());
        self.task.await.unwrap_or(0)
    }
}
