//! One typed configuration for the whole server, read once at start from flags and the environment,
//! validated with messages that say what to fix; and the generator of every outward URL.

mod oauth;
mod object_store;
mod smtp;
mod urls;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use oauth::{OAuthClient, OAuthSettings, SecretKey, MIN_SECRET_KEY_LEN};
pub use object_store::ObjectStoreSettings;
pub use smtp::{SmtpSettings, SmtpTls, DEFAULT_MAIL_FROM};
use url::Url;
pub use urls::{OAuthProvider, UrlError, Urls};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:3210";
pub const DEFAULT_DATA_DIR: &str = "./data";
/// Where the SupportSignal web app runs in development and tests when no public URL is given.
pub const DEV_PUBLIC_URL: &str = "http://localhost:3200";
pub const DEFAULT_HEADER_TIMEOUT_SECS: usize = 10;
/// As Node's and Apache's: long enough for a client's next request, short enough that idle sockets
/// do not pile up.
pub const DEFAULT_IDLE_TIMEOUT_SECS: usize = 5;
/// Lowered at start to what the open-file limit allows (with room for the database and files).
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
    Test,
}

impl Environment {
    fn parse(s: &str) -> Option<Environment> {
        match s.trim().to_ascii_lowercase().as_str() {
            "development" | "dev" => Some(Environment::Development),
            "production" | "prod" => Some(Environment::Production),
            "test" => Some(Environment::Test),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Development => "development",
            Environment::Production => "production",
            Environment::Test => "test",
        }
    }
}

/// Where documents live.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// The embedded default: `<data dir>/supportsignal.db`.
    Sqlite { path: PathBuf },
    /// `postgres://...` from `DATABASE_URL`.
    Postgres { url: String },
}

impl fmt::Debug for Database {
    // The URL may carry a password; never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite { path } => write!(f, "Sqlite({})", path.display()),
            Database::Postgres { url } => write!(f, "Postgres({})", redact_url(url)),
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<unparseable url>".to_string(),
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub environment: Environment,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database: Database,
    /// The SupportSignal web app's base URL (links in emails, OAuth callbacks). No trailing slash.
    pub public_url: Url,
    /// This server's own externally reachable URL (file download links).
    pub api_url: Url,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// How long a query or action may run before the client gets a timeout error.
    pub function_timeout: Duration,
    /// Deadline for a whole request body, counted from the end of its head (not an inactivity
    /// timer: a body dripping a byte at a time is cut off too).
    pub body_read_timeout: Duration,
    /// How long finished scheduled functions are kept (`SUPPORTSIGNAL_SCHEDULER_RETENTION_DAYS`,
    /// 7 by default).
    pub scheduler_retention: Duration,
    /// Deadline for a whole request head, counted from when the connection is ready for it (its
    /// accept, or the end of the previous answer on a kept-alive connection).
    pub header_read_timeout: Duration,
    /// A kept-alive connection with no request in progress for this long is closed.
    pub idle_timeout: Duration,
    /// Most connections open at once (WebSockets included); more are refused with 503 at accept.
    pub max_connections: usize,
    /// Most connections open at once from one client address.
    pub max_connections_per_client: usize,
    /// Take the client address from `X-Forwarded-For` (only behind a proxy that sets it).
    pub trust_proxy_headers: bool,
    /// The SMTP relay (`SMTP_URL`); without one, outgoing mail is logged and kept in the outbox.
    pub smtp: Option<SmtpSettings>,
    /// The sender of outgoing mail (`SMTP_FROM`), `Name <address>` or a bare address.
    pub mail_from: String,
    /// GitHub and Google sign-in, and the server secret (`SUPPORTSIGNAL_SECRET_KEY`) that signs
    /// OAuth state.
    pub oauth: OAuthSettings,
    /// LLM providers, retry and breaker tuning, prices, and the per-company AI limits.
    pub ai: ai::AiConfig,
    /// The bearer token `GET /metrics` requires (`SUPPORTSIGNAL_METRICS_TOKEN`). Without one the
    /// endpoint is open outside production and off in production.
    pub metrics_token: Option<MetricsToken>,
    /// File uploads and downloads.
    pub storage: StorageLimits,
}

/// Limits of file storage.
#[derive(Clone, Debug)]
pub struct StorageLimits {
    /// Largest file accepted (`SUPPORTSIGNAL_MAX_UPLOAD_BYTES`, 10 MiB or the body limit if
    /// lower; never above the body limit).
    pub max_upload_bytes: u64,
    /// Most bytes of files one company keeps (`SUPPORTSIGNAL_STORAGE_QUOTA_BYTES`, 5 GiB).
    pub company_quota_bytes: u64,
    /// How long an upload URL may be used, once (`SUPPORTSIGNAL_UPLOAD_URL_TTL_SECS`, 1 hour).
    pub upload_url_ttl: Duration,
    /// How long a download URL works (`SUPPORTSIGNAL_DOWNLOAD_URL_TTL_SECS`, 5 minutes).
    pub download_url_ttl: Duration,
    /// File contents in S3-compatible object storage (`SUPPORTSIGNAL_STORAGE_URL`) rather than
    /// the data directory.
    pub object_store: Option<ObjectStoreSettings>,
}

/// Shortest metrics token accepted: long enough that guessing it over HTTP is hopeless.
pub const MIN_METRICS_TOKEN_LEN: usize = 16;

/// A secret compared without revealing how much of a guess was right; never printed.
#[derive(Clone)]
pub struct MetricsToken(String);

impl MetricsToken {
    /// Whether `presented` is this token. Equal-length inputs take the same time whatever they
    /// hold, and the length of a guess tells nothing about the token's.
    pub fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        let mut differ = a.len() ^ b.len();
        for (i, x) in a.iter().enumerate() {
            differ |= usize::from(x ^ b.get(i).copied().unwrap_or(!x));
        }
        differ == 0
    }
}

impl fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MetricsToken(***)")
    }
}

/// Values given on the command line; they win over the environment.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
}

/// Everything wrong with the configuration, reported together so one restart fixes it all.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError(pub Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration:")?;
        for problem in &self.0 {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl Config {
    /// Reads the process environment.
    pub fn load(overrides: Overrides) -> Result<Config, ConfigError> {
        Config::from_env(overrides, |key| std::env::var(key).ok())
    }

    /// Reads configuration from `env` (injected so tests need not touch the process environment).
    pub fn from_env(
        overrides: Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let var = |key: &str| {
            env(key)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mut problems = Vec::new();

        let ci = var("CI").is_some_and(|v| v == "true" || v == "1");
        // CI only picks the default; an explicit production setting is never weakened by it.
        let environment = match var("SUPPORTSIGNAL_ENV") {
            Some(raw) => Environment::parse(&raw).unwrap_or_else(|| {
                problems.push(format!(
                    "SUPPORTSIGNAL_ENV must be development, production or test (got {raw:?})"
                ));
                Environment::Development
            }),
            None if ci => Environment::Test,
            None => Environment::Development,
        };

        let listen_raw = overrides
            .listen
            .or_else(|| var("SUPPORTSIGNAL_LISTEN"))
            .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen = match listen_raw.parse::<SocketAddr>() {
            Ok(addr) => addr,
            Err(_) => {
                problems.push(format!(
                    "listen address must be host:port with an IP host, e.g. 127.0.0.1:3210 (got {listen_raw:?})"
                ));
                DEFAULT_LISTEN
                    .parse()
                    .expect("default listen address parses")
            }
        };

        let data_dir = overrides
            .data_dir
            .or_else(|| var("SUPPORTSIGNAL_DATA_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));

        let database = match overrides.database_url.or_else(|| var("DATABASE_URL")) {
            None => Database::Sqlite {
                path: data_dir.join("supportsignal.db"),
            },
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                if Url::parse(&url).is_err() {
                    problems.push(format!(
                        "DATABASE_URL is not a valid URL: {}",
                        redact_url(&url)
                    ));
                }
                Database::Postgres { url }
            }
            Some(url) if url.starts_with("sqlite:") => Database::Sqlite {
                path: PathBuf::from(
                    url.trim_start_matches("sqlite://")
                        .trim_start_matches("sqlite:"),
                ),
            },
            Some(url) => {
                problems.push(format!(
                    "DATABASE_URL must start with postgres:// or sqlite: (got {})",
                    redact_url(&url)
                ));
                Database::Sqlite {
                    path: data_dir.join("supportsignal.db"),
                }
            }
        };

        let public_url = match var("SUPPORTSIGNAL_PUBLIC_URL") {
            Some(raw) => {
                check_base_url("SUPPORTSIGNAL_PUBLIC_URL", &raw, environment, &mut problems)
            }
            None if environment == Environment::Production => {
                problems.push(
                    "SUPPORTSIGNAL_PUBLIC_URL is required in production (the web app's base URL, e.g. https://app.example.org)"
                        .to_string(),
                );
                None
            }
            None => Url::parse(DEV_PUBLIC_URL).ok(),
        };

        let api_url = match var("SUPPORTSIGNAL_API_URL") {
            Some(raw) => check_base_url("SUPPORTSIGNAL_API_URL", &raw, environment, &mut problems),
            None => Url::parse(&format!("http://{listen}")).ok(),
        };

        let max_body_bytes = parse_number(
            &var,
            "SUPPORTSIGNAL_MAX_BODY_BYTES",
            16 * 1024 * 1024 + 2000,
            &mut problems,
        );
        let function_timeout = Duration::from_secs(parse_number(
            &var,
            "SUPPORTSIGNAL_FUNCTION_TIMEOUT_SECS",
            120,
            &mut problems,
        ) as u64);
        let body_read_timeout = Duration::from_secs(parse_number(
            &var,
            "SUPPORTSIGNAL_BODY_TIMEOUT_SECS",
            30,
            &mut problems,
        ) as u64);
        let header_read_timeout = Duration::from_secs(parse_number(
            &var,
            "SUPPORTSIGNAL_HEADER_TIMEOUT_SECS",
            DEFAULT_HEADER_TIMEOUT_SECS,
            &mut problems,
        ) as u64);
        let idle_timeout = Duration::from_secs(parse_number(
            &var,
            "SUPPORTSIGNAL_IDLE_TIMEOUT_SECS",
            DEFAULT_IDLE_TIMEOUT_SECS,
            &mut problems,
        ) as u64);
        let max_connections = parse_number(
            &var,
            "SUPPORTSIGNAL_MAX_CONNECTIONS",
            DEFAULT_MAX_CONNECTIONS,
            &mut problems,
        );
        let max_connections_per_client = parse_number(
            &var,
            "SUPPORTSIGNAL_MAX_CONNECTIONS_PER_CLIENT",
            DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
            &mut problems,
        );

        let scheduler_retention = Duration::from_secs(
            parse_number(
                &var,
                "SUPPORTSIGNAL_SCHEDULER_RETENTION_DAYS",
                7,
                &mut problems,
            ) as u64
                * 24
                * 3600,
        );

        let metrics_token = var("SUPPORTSIGNAL_METRICS_TOKEN").and_then(|token| {
            if token.chars().count() < MIN_METRICS_TOKEN_LEN {
                problems.push(format!(
                    "SUPPORTSIGNAL_METRICS_TOKEN must be at least {MIN_METRICS_TOKEN_LEN} characters"
                ));
                return None;
            }
            Some(MetricsToken(token))
        });

        // By default as large as 10 MiB and the body limit allow; a larger explicit one is a mistake.
        let max_upload_bytes = parse_number(
            &var,
            "SUPPORTSIGNAL_MAX_UPLOAD_BYTES",
            (10 * 1024 * 1024).min(max_body_bytes),
            &mut problems,
        );
        if max_upload_bytes > max_body_bytes {
            problems.push(format!(
                "SUPPORTSIGNAL_MAX_UPLOAD_BYTES ({max_upload_bytes}) must not exceed SUPPORTSIGNAL_MAX_BODY_BYTES ({max_body_bytes})"
            ));
        }
        let storage = StorageLimits {
            max_upload_bytes: max_upload_bytes as u64,
            company_quota_bytes: parse_number(
                &var,
                "SUPPORTSIGNAL_STORAGE_QUOTA_BYTES",
                5 * 1024 * 1024 * 1024,
                &mut problems,
            ) as u64,
            upload_url_ttl: Duration::from_secs(parse_number(
                &var,
                "SUPPORTSIGNAL_UPLOAD_URL_TTL_SECS",
                3600,
                &mut problems,
            ) as u64),
            download_url_ttl: Duration::from_secs(parse_number(
                &var,
                "SUPPORTSIGNAL_DOWNLOAD_URL_TTL_SECS",
                300,
                &mut problems,
            ) as u64),
            object_store: object_store::load(&var, &mut problems),
        };

        let (smtp, mail_from) = smtp::load(&var, environment, &mut problems);
        let oauth = oauth::load(&var, environment, &mut problems);
        let ai = ai::AiConfig::from_env(var).unwrap_or_else(|ai_problems| {
            problems.extend(ai_problems);
            ai::AiConfig::default()
        });

        match (problems.is_empty(), public_url, api_url) {
            (true, Some(public_url), Some(api_url)) => Ok(Config {
                environment,
                listen,
                data_dir,
                database,
                public_url,
                api_url,
                max_body_bytes,
                function_timeout,
                body_read_timeout,
                scheduler_retention,
                header_read_timeout,
                idle_timeout,
                max_connections,
                max_connections_per_client,
                trust_proxy_headers: var("SUPPORTSIGNAL_TRUST_PROXY_HEADERS")
                    .is_some_and(|v| v == "true" || v == "1"),
                smtp,
                mail_from,
                oauth,
                ai,
                metrics_token,
                storage,
            }),
            _ => Err(ConfigError(problems)),
        }
    }

    /// The URL generator for this configuration.
    pub fn urls(&self) -> Urls {
        Urls::new(self.public_url.clone(), self.api_url.clone())
    }
}

fn parse_number(
    var: &impl Fn(&str) -> Option<String>,
    key: &str,
    default: usize,
    problems: &mut Vec<String>,
) -> usize {
    match var(key) {
        None => default,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                problems.push(format!(
                    "{key} must be a positive whole number (got {raw:?})"
                ));
                default
            }
        },
    }
}

/// A base URL must parse, be http(s), have no trailing slash, query or fragment, and use https in
/// production unless it points at this machine.
fn check_base_url(
    name: &str,
    raw: &str,
    env: Environment,
    problems: &mut Vec<String>,
) -> Option<Url> {
    let url = match Url::parse(raw) {
        Ok(url) => url,
        Err(e) => {
            problems.push(format!("{name} must be a valid URL ({e}): {raw:?}"));
            return None;
        }
    };
    let before = problems.len();
    if !matches!(url.scheme(), "http" | "https") {
        problems.push(format!("{name} must use http or https: {raw:?}"));
    }
    if raw.ends_with('/') {
        problems.push(format!(
            "{name} must not end with a trailing slash: {raw:?}"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        problems.push(format!("{name} must not have a query or fragment: {raw:?}"));
    }
    let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if env == Environment::Production && url.scheme() != "https" && !local {
        problems.push(format!("{name} must use https in production: {raw:?}"));
    }
    (problems.len() == before).then_some(url)
}

#[cfg(test)]
mod tests;
