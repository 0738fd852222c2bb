//! Outgoing mail settings: the SMTP relay from `SMTP_URL` and the sender from `SMTP_FROM`.
//!
//! The URL's scheme picks the transport security, so one variable says everything:
//! - `smtp://host[:port]` speaks plain SMTP (default port 25), for a relay on this machine or a
//!   trusted network; port 587 is the submission port, where servers expect STARTTLS, so it is
//!   upgraded as if `smtp+starttls://` had been written.
//! - `smtp+starttls://host[:port]` requires STARTTLS (default port 587): no credentials or mail
//!   are sent unless the upgrade succeeds, so a downgrade by an attacker fails instead of leaking.
//! - `smtps://host[:port]` is implicit TLS from the first byte (default port 465).
//!
//! Credentials come from the URL's user info (`smtp://user:pass@host`), percent-decoded.

use std::fmt;

use url::Url;

use crate::{redact_url, Environment};

/// What `SMTP_FROM` defaults to: fine for development and tests, refused in production (relays
/// reject, and receivers distrust, mail from a `localhost` domain).
pub const DEFAULT_MAIL_FROM: &str = "SupportSignal <no-reply@localhost>";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP, no encryption.
    None,
    /// Plain connection upgraded with STARTTLS; refusing to continue without it.
    StartTls,
    /// TLS from the start (SMTPS).
    Implicit,
}

/// Where and how to deliver mail. `Debug` never prints the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    password: Option<String>,
}

impl SmtpSettings {
    /// Parses an `SMTP_URL`. Error messages never contain the password.
    pub fn parse(raw: &str) -> Result<SmtpSettings, String> {
        let url = Url::parse(raw).map_err(|e| {
            format!(
                "SMTP_URL must be a URL like smtps://user:password@smtp.example.org ({e}): {}",
                redact_url(raw)
            )
        })?;
        let shown = redact_url(raw);
        let (mut tls, default_port) = match url.scheme() {
            "smtp" => (SmtpTls::None, 25),
            "smtp+starttls" => (SmtpTls::StartTls, 587),
            "smtps" => (SmtpTls::Implicit, 465),
            _ => {
                return Err(format!(
                    "SMTP_URL must start with smtp://, smtp+starttls:// or smtps:// (got {shown})"
                ))
            }
        };
        let host = match url.host_str() {
            Some(host) if !host.is_empty() => host.trim_matches(['[', ']']).to_string(),
            _ => return Err(format!("SMTP_URL must name a host (got {shown})")),
        };
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "SMTP_URL takes no path or query; the scheme chooses TLS (got {shown})"
            ));
        }
        let port = url.port().unwrap_or(default_port);
        if tls == SmtpTls::None && port == 587 {
            tls = SmtpTls::StartTls;
        }
        let decode = |part: &str| {
            percent_encoding::percent_decode_str(part)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| format!("SMTP_URL user name and password must be UTF-8 (got {shown})"))
        };
        let username = match url.username() {
            "" => None,
            user => Some(decode(user)?),
        };
        let password = url.password().map(decode).transpose()?;
        if password.is_some() && username.is_none() {
            return Err(format!(
                "SMTP_URL has a password but no user name (got {shown})"
            ));
        }
        Ok(SmtpSettings {
            host,
            port,
            tls,
            username,
            password,
        })
    }

    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// Whether the relay is this machine (where plain SMTP exposes nothing on the network).
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Reads `SMTP_URL` and `SMTP_FROM`, adding every problem to `problems`.
pub(crate) fn load(
    var: &impl Fn(&str) -> Option<String>,
    environment: Environment,
    problems: &mut Vec<String>,
) -> (Option<SmtpSettings>, String) {
    let smtp = var("SMTP_URL").and_then(|raw| match SmtpSettings::parse(&raw) {
        Ok(settings) => Some(settings),
        Err(problem) => {
            problems.push(problem);
            None
        }
    });
    if let Some(smtp) = &smtp {
        // Production must not hand the relay password to anyone on the path; a local relay is fine.
        if environment == Environment::Production
            && smtp.tls == SmtpTls::None
            && smtp.password.is_some()
            && !smtp.is_loopback()
        {
            problems.push(format!(
                "SMTP_URL would send the SMTP password unencrypted to {} in production; use smtps:// or smtp+starttls://",
                smtp.host
            ));
        }
    }
    let mail_from = match var("SMTP_FROM") {
        Some(raw) => {
            if let Err(problem) = check_mailbox(&raw) {
                problems.push(format!(
                    "SMTP_FROM must be an address like \"SupportSignal <no-reply@example.org>\" ({problem}; got {raw:?})"
                ));
            }
            raw
        }
        None if environment == Environment::Production && var("SMTP_URL").is_some() => {
            problems.push(
                "SMTP_FROM is required in production when SMTP_URL is set (e.g. \"SupportSignal <no-reply@example.org>\")"
                    .to_string(),
            );
            DEFAULT_MAIL_FROM.to_string()
        }
        None => DEFAULT_MAIL_FROM.to_string(),
    };
    (smtp, mail_from)
}

/// `addr@domain` or `Display Name <addr@domain>`: the shapes a mail header accepts without quoting
/// rules the operator would have to know. The mailer parses it fully at start.
fn check_mailbox(raw: &str) -> Result<(), &'static str> {
    if raw.chars().any(|c| c.is_control()) {
        return Err("control characters are not allowed");
    }
    let address = match raw.rfind('<') {
        Some(open) => raw[open + 1..]
            .strip_suffix('>')
            .ok_or("a name needs the address in <angle brackets> at the end")?,
        None => raw,
    };
    match address.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !address.contains(char::is_whitespace)
                && !address.contains(['<', '>']) =>
        {
            Ok(())
        }
        _ => Err("the address must look like name@domain"),
    }
}
