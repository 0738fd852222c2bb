//! Mailers: how one queued email leaves the server. `SmtpMailer` hands it to an SMTP relay;
//! `LogMailer` (no relay configured) only logs its envelope.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use values::DocumentId;

/// One claimed outbox row, as a mailer sees it. `Debug` leaves out the body (it carries tokens).
#[derive(Clone)]
pub struct QueuedEmail {
    pub id: DocumentId,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub kind: String,
    pub correlation_id: Option<String>,
    /// 1 for the first attempt.
    pub attempt: u32,
}

impl std::fmt::Debug for QueuedEmail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuedEmail")
            .field("id", &self.id)
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("text", &format_args!("<{} bytes>", self.text.len()))
            .field("kind", &self.kind)
            .field("correlation_id", &self.correlation_id)
            .field("attempt", &self.attempt)
            .finish()
    }
}

/// What became of a message a mailer accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivered {
    /// A relay accepted it.
    Sent,
    /// Only logged (no relay configured); it stays readable in the outbox.
    Logged,
}

/// Why a send failed. `transient` failures (4xx replies, connection and TLS problems, timeouts)
/// are retried with backoff; permanent ones (5xx replies, an unaddressable recipient) fail the row.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MailError {
    pub transient: bool,
    pub message: String,
}

impl MailError {
    pub fn transient(message: impl Into<String>) -> MailError {
        MailError {
            transient: true,
            message: message.into(),
        }
    }
    pub fn permanent(message: impl Into<String>) -> MailError {
        MailError {
            transient: false,
            message: message.into(),
        }
    }
}

/// Sends one message. Object-safe (boxed future) so the registry can hold any mailer as
/// `Arc<dyn Mailer>`, and tests can register their own.
pub trait Mailer: Send + Sync + 'static {
    fn send<'a>(&'a self, email: &'a QueuedEmail) -> BoxFuture<'a, Result<Delivered, MailError>>;
}

/// The mailer the configuration asks for: SMTP when `SMTP_URL` is set, otherwise [`LogMailer`].
pub fn mailer_from_config(config: &config::Config) -> Result<Arc<dyn Mailer>, MailError> {
    match &config.smtp {
        Some(smtp) => Ok(Arc::new(SmtpMailer::new(smtp, &config.mail_from)?)),
        None => {
            tracing::info!(
                "SMTP_URL is not set: outgoing email is logged and kept in the email_outbox table"
            );
            Ok(Arc::new(LogMailer))
        }
    }
}

/// Logs recipient, subject, kind and outbox id of each message and reports it `Logged`. Never the
/// body: bodies carry password-reset and invitation tokens, and logs travel further than the
/// database. A developer reads the body in the `email_outbox` row.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogMailer;

impl Mailer for LogMailer {
    fn send<'a>(&'a self, email: &'a QueuedEmail) -> BoxFuture<'a, Result<Delivered, MailError>> {
        tracing::info!(
            outbox_id = %email.id,
            to = %email.to,
            subject = %email.subject,
            kind = %email.kind,
            "email not sent (no SMTP_URL); kept in the email_outbox table"
        );
        Box::pin(std::future::ready(Ok(Delivered::Logged)))
    }
}

/// Stands in for a mailer that could not be set up: refuses every message, permanently, with the
/// reason it could not be built (so each row says what to fix).
#[derive(Clone, Debug)]
pub struct Unusable(pub MailError);

impl Mailer for Unusable {
    fn send<'a>(&'a self, _: &'a QueuedEmail) -> BoxFuture<'a, Result<Delivered, MailError>> {
        let message = format!("the mailer is not set up: {}", self.0.message);
        Box::pin(std::future::ready(Err(MailError::permanent(message))))
    }
}

/// How long one SMTP command may wait for the relay (lettre's per-command timeout). Delivery
/// bounds the whole send separately.
const SMTP_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Delivers through an SMTP relay with lettre over tokio, TLS by rustls with the webpki roots.
/// A new connection per message: volumes are low (resets, invitations), and a pooled connection a
/// relay has silently dropped would only turn into a spurious failure and retry.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The right-hand side of `Message-ID`s: the sender's domain.
    message_id_domain: String,
}

impl SmtpMailer {
    /// Checks the sender address and TLS settings now, so a bad configuration fails at start.
    pub fn new(settings: &config::SmtpSettings, from: &str) -> Result<SmtpMailer, MailError> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| MailError::permanent(format!("SMTP_FROM {from:?} is not usable: {e}")))?;
        let tls_parameters = || {
            TlsParameters::new(settings.host.clone()).map_err(|e| {
                MailError::permanent(format!("TLS setup for {} failed: {e}", settings.host))
            })
        };
        let tls = match settings.tls {
            config::SmtpTls::None => Tls::None,
            config::SmtpTls::StartTls => Tls::Required(tls_parameters()?),
            config::SmtpTls::Implicit => Tls::Wrapper(tls_parameters()?),
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.as_str())
                .port(settings.port)
                .tls(tls)
                .timeout(Some(SMTP_COMMAND_TIMEOUT));
        if let Some(user) = &settings.username {
            let password = settings.password().unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password.to_string()));
        }
        Ok(SmtpMailer {
            transport: builder.build(),
            message_id_domain: from.email.domain().to_string(),
            from,
        })
    }

    fn message(&self, email: &QueuedEmail) -> Result<Message, MailError> {
        let to: Mailbox = email.to.parse().map_err(|e| {
            MailError::permanent(format!("recipient {:?} is not addressable: {e}", email.to))
        })?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.as_str())
            // Stable across attempts of one row, so a duplicate after a lost acknowledgement can be
            // recognised as the same message.
            .message_id(Some(format!("<{}@{}>", email.id, self.message_id_domain)))
            .header(ContentType::TEXT_PLAIN)
            .body(email.text.clone())
            .map_err(|e| MailError::permanent(format!("message could not be built: {e}")))
    }
}

impl Mailer for SmtpMailer {
    fn send<'a>(&'a self, email: &'a QueuedEmail) -> BoxFuture<'a, Result<Delivered, MailError>> {
        Box::pin(async move {
            let message = self.message(email)?;
            match self.transport.send(message).await {
                Ok(_) => Ok(Delivered::Sent),
                // 5xx: the relay will never take this message; everything else (4xx, network, TLS,
                // timeouts, a relay that is down) may pass later.
                Err(e) if e.is_permanent() => Err(MailError::permanent(describe(&e))),
                Err(e) => Err(MailError::transient(describe(&e))),
            }
        })
    }
}

/// The error with its causes (lettre's top-level message alone often just says "Connection error").
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
