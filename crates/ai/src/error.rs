//! What went wrong with an AI request: a stable code for callers and the attempts made, for the
//! request log.

use std::fmt;

use serde::Serialize;

/// How one attempt (one HTTP request to one provider and model) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// No reply within the per-attempt timeout.
    Timeout,
    /// The provider could not be reached (refused, reset, DNS, TLS).
    Connection(String),
    /// HTTP 429.
    RateLimited,
    /// HTTP 5xx.
    ServerError(u16),
    /// Another 4xx (bad key, unknown model, bad request): not retried.
    Rejected {
        status: u16,
        detail: String,
    },
    /// A 2xx whose body is not the API's reply shape.
    BadReply(String),
    /// Skipped: the provider's circuit breaker is open after repeated failures.
    BreakerOpen,
}

impl Outcome {
    /// Short stable name, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Timeout => "timeout",
            Outcome::Connection(_) => "connection_error",
            Outcome::RateLimited => "rate_limited",
            Outcome::ServerError(_) => "server_error",
            Outcome::Rejected { .. } => "rejected",
            Outcome::BadReply(_) => "bad_reply",
            Outcome::BreakerOpen => "breaker_open",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok => f.write_str("ok"),
            Outcome::Timeout => f.write_str("timed out"),
            Outcome::Connection(e) => write!(f, "connection failed: {e}"),
            Outcome::RateLimited => f.write_str("rate limited (HTTP 429)"),
            Outcome::ServerError(s) => write!(f, "server error (HTTP {s})"),
            Outcome::Rejected { status, detail } if detail.is_empty() => {
                write!(f, "rejected (HTTP {status})")
            }
            Outcome::Rejected { status, detail } => write!(f, "rejected (HTTP {status}): {detail}"),
            Outcome::BadReply(e) => write!(f, "unusable reply: {e}"),
            Outcome::BreakerOpen => f.write_str("skipped: circuit breaker open"),
        }
    }
}

/// One attempt of a request, as recorded in the request log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    pub provider: String,
    pub model: String,
    #[serde(serialize_with = "outcome_text")]
    pub outcome: Outcome,
    pub latency_ms: u64,
    /// Usage and cost of a reply that arrived (0 when none did); a reply can cost money and
    /// still be unusable, e.g. truncated JSON.
    pub tokens_in: u32,
    pub tokens_out: u32,
    pub cost_usd: f64,
}

fn outcome_text<S: serde::Serializer>(o: &Outcome, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(o)
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.provider, self.model, self.outcome)
    }
}

/// Stable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AiErrorCode {
    /// No provider could answer (server errors, connection failures, open breakers, mixed).
    Unavailable,
    /// Every attempt timed out.
    Timeout,
    /// Every attempt was rate limited.
    RateLimited,
    /// Every provider refused the request (bad key, unknown model, bad request).
    Rejected,
    /// A reply came but could not be used (not JSON, wrong shape, still truncated).
    BadReply,
    /// The offline provider has no answer for this operation.
    Unsupported,
    /// The request itself is unusable (e.g. the offline provider is missing an input).
    BadRequest,
}

impl AiErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            AiErrorCode::Unavailable => "AI_UNAVAILABLE",
            AiErrorCode::Timeout => "AI_TIMEOUT",
            AiErrorCode::RateLimited => "AI_RATE_LIMITED",
            AiErrorCode::Rejected => "AI_REJECTED",
            AiErrorCode::BadReply => "AI_BAD_REPLY",
            AiErrorCode::Unsupported => "AI_UNSUPPORTED",
            AiErrorCode::BadRequest => "AI_BAD_REQUEST",
        }
    }
}

/// A failed AI request. The message never contains API keys.
#[derive(Debug, Clone, PartialEq)]
pub struct AiError {
    pub code: AiErrorCode,
    pub message: String,
    /// Every attempt made, in order (empty for the offline provider).
    pub attempts: Vec<Attempt>,
}

impl AiError {
    pub fn new(code: AiErrorCode, message: impl Into<String>) -> AiError {
        AiError {
            code,
            message: message.into(),
            attempts: Vec::new(),
        }
    }

    /// What the failed request still cost (replies that came but could not be used).
    pub fn cost_usd(&self) -> f64 {
        self.attempts.iter().map(|a| a.cost_usd).sum()
    }

    /// The stable code, e.g. `AI_UNAVAILABLE`.
    pub fn code(&self) -> &'static str {
        self.code.as_str()
    }

    /// The error after every attempt in the chain failed: the code says what they had in common.
    pub(crate) fn exhausted(attempts: Vec<Attempt>) -> AiError {
        let all = |f: fn(&Outcome) -> bool| {
            !attempts.is_empty() && attempts.iter().all(|a| f(&a.outcome))
        };
        let code = if all(|o| matches!(o, Outcome::Timeout)) {
            AiErrorCode::Timeout
        } else if all(|o| matches!(o, Outcome::RateLimited)) {
            AiErrorCode::RateLimited
        } else if all(|o| matches!(o, Outcome::Rejected { .. })) {
            AiErrorCode::Rejected
        } else if all(|o| matches!(o, Outcome::BadReply(_))) {
            AiErrorCode::BadReply
        } else {
            AiErrorCode::Unavailable
        };
        let list: Vec<String> = attempts.iter().map(|a| a.to_string()).collect();
        AiError {
            code,
            message: format!(
                "no AI provider could answer after {} attempt{}: {}",
                attempts.len(),
                if attempts.len() == 1 { "" } else { "s" },
                list.join("; ")
            ),
            attempts,
        }
    }
}

impl fmt::Display for AiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message)
    }
}

impl std::error::Error for AiError {}
