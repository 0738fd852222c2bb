//! The measured server as a separate process: the hidden `serve` subcommand (child side) and the
//! handle the benchmark keeps on it (parent side). A process of its own gives the server its own
//! RSS in /proc and keeps client and server allocations apart.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use config::{Config, Overrides};

/// The first line the child prints on stdout, followed by its address.
const READY_PREFIX: &str = "listening ";

/// Child side: serves the bench functions on 127.0.0.1:<free port> until stdin closes.
///
/// Stopping on stdin EOF (rather than only on a signal) means the server also goes away when the
/// benchmark dies, so no stray server is ever left running.
pub fn serve_main(data_dir: PathBuf, database_url: Option<String>) -> anyhow::Result<()> {
    init_logging();
    // The same runtime shape as the `supportsignal` binary: one worker per core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the server runtime")?;
    runtime.block_on(async move {
        let overrides = Overrides {
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some(data_dir),
            database_url,
        };
        // Only the overrides count: the caller's environment must not change what is measured.
        // Every benchmark client is on loopback, so the per-address connection cap is lifted (the
        // live scenario opens 10,000 WebSockets); the open-file limit still bounds the total.
        let config = Config::from_env(overrides, |key| {
            matches!(
                key,
                "SUPPORTSIGNAL_MAX_CONNECTIONS" | "SUPPORTSIGNAL_MAX_CONNECTIONS_PER_CLIENT"
            )
            .then(|| "1000000".to_string())
        })?;

        let (stdin_closed, on_stdin_closed) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            let _ = stdin_closed.send(());
        });
        let shutdown = async move {
            let _ = on_stdin_closed.await;
        };
        // What `supportsignal serve` starts, plus the benchmark's own table and functions.
        let running = app::start_with(
            config,
            app::Options {
                shutdown: Box::pin(shutdown),
                extend: Some(Box::new(crate::functions::extend)),
                ..app::Options::default()
            },
        )
        .await?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{READY_PREFIX}{}", running.addr)?;
        stdout.flush()?;
        drop(stdout);
        running.wait().await
    })
}

/// Warnings and errors only by default: per-request logging would be measured too.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("SUPPORTSIGNAL_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Resident memory of a process, from /proc/<pid>/status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// VmRSS: resident now.
    pub rss_kib: u64,
    /// VmHWM: the most it was ever resident.
    pub hwm_kib: u64,
}

pub fn read_memory(pid: u32) -> anyhow::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .with_context(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok(Memory {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

/// CPU time (user + system) a process has used so far, in seconds; `pid` may be "self".
///
/// /proc reports it in USER_HZ ticks, which Linux fixes at 100 for user space.
pub fn cpu_seconds(pid: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the command name, which is parenthesised and may itself contain spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => Ok((user + system) as f64 / 100.0),
        _ => anyhow::bail!("unexpected /proc/{pid}/stat format"),
    }
}

/// Parent side: a running server child.
pub struct ServerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Starts `exe serve` and waits until it prints its address (migrations done, socket bound).
    pub fn spawn(
        exe: &Path,
        data_dir: &Path,
        database_url: Option<&str>,
    ) -> anyhow::Result<ServerProcess> {
        let mut command = Command::new(exe);
        command.arg("serve").arg("--data-dir").arg(data_dir);
        // Through the environment, not argv: a password in a URL must not show in `ps`.
        command.env_remove("DATABASE_URL");
        if let Some(url) = database_url {
            command.env("DATABASE_URL", url);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {} serve", exe.display()))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("child stdout")?;
        let mut process = ServerProcess {
            child,
            stdin,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let mut lines = BufReader::new(stdout);
        let mut line = String::new();
        lines
            .read_line(&mut line)
            .context("reading the server's address")?;
        let Some(addr) = line.trim().strip_prefix(READY_PREFIX) else {
            bail!(
                "the server exited before it was ready (it printed {line:?}; see its stderr above)"
            );
        };
        process.addr = addr
            .parse()
            .with_context(|| format!("server address {addr:?}"))?;
        // Nothing else is printed on stdout, but drain it so a stray print can never block the child.
        std::thread::spawn(move || {
            let _ = lines.read_to_end(&mut Vec::new());
        });
        Ok(process)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn memory(&self) -> anyhow::Result<Memory> {
        read_memory(self.pid())
    }

    /// Graceful stop: closing stdin makes the child finish in-flight requests and close the database.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("the server exited with {status}");
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the server did not stop within 30 s; killing it");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Only reached with the child still running after an error or a failed stop.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
