//! The two HTTP providers: OpenAI-compatible chat completions and the Anthropic Messages API.
//! Each sends one attempt and classifies the result; retries and fallbacks are the router's.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::error::Outcome;
use crate::request::{ChatRequest, Finish};

pub(crate) const OPENAI: &str = "openai-compatible";
pub(crate) const ANTHROPIC: &str = "anthropic";
const ANTHROPIC_VERSION: &str = "2023-06-01";
/// Anthropic has no JSON mode, so a JSON request says so in the system prompt.
const JSON_ONLY: &str = "Reply with valid JSON only: no prose and no code fences.";

/// A reply as the provider gave it.
#[derive(Debug)]
pub(crate) struct Raw {
    pub text: String,
    pub model: String,
    pub tokens_in: u32,
    pub tokens_out: u32,
    pub finish: Finish,
}

/// Why one attempt failed.
#[derive(Debug)]
pub(crate) enum Failure {
    Timeout,
    Connection(String),
    Http {
        status: u16,
        retry_after: Option<Duration>,
        detail: String,
    },
    BadReply(String),
}

impl Failure {
    /// Worth trying the same model again after a pause.
    pub fn retryable(&self) -> bool {
        match self {
            Failure::Connection(_) => true,
            Failure::Http { status, .. } => *status == 429 || *status >= 500,
            Failure::Timeout | Failure::BadReply(_) => false,
        }
    }

    /// Says something about the provider's health (a 4xx such as an unknown model does not).
    pub fn counts_against_provider(&self) -> bool {
        match self {
            Failure::Timeout | Failure::Connection(_) => true,
            Failure::Http { status, .. } => *status == 429 || *status >= 500,
            Failure::BadReply(_) => false,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub fn outcome(&self) -> Outcome {
        match self {
            Failure::Timeout => Outcome::Timeout,
            Failure::Connection(e) => Outcome::Connection(e.clone()),
            Failure::Http { status: 429, .. } => Outcome::RateLimited,
            Failure::Http { status, .. } if *status >= 500 => Outcome::ServerError(*status),
            Failure::Http { status, detail, .. } => Outcome::Rejected {
                status: *status,
                detail: detail.clone(),
            },
            Failure::BadReply(e) => Outcome::BadReply(e.clone()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Api {
    OpenAi,
    Anthropic,
}

/// One configured HTTP provider.
#[derive(Clone)]
pub(crate) struct HttpProvider {
    pub api: Api,
    pub url: String,
    pub key: Option<SecretString>,
}

impl HttpProvider {
    pub fn name(&self) -> &'static str {
        match self.api {
            Api::OpenAi => OPENAI,
            Api::Anthropic => ANTHROPIC,
        }
    }

    /// The JSON body sent for `req` with `model`.
    pub fn body(&self, req: &ChatRequest, model: &str) -> Value {
        match self.api {
            Api::OpenAi => {
                let mut messages = Vec::new();
                if let Some(system) = &req.system {
                    messages.push(json!({"role": "system", "content": system}));
                }
                messages.push(json!({"role": "user", "content": req.prompt}));
                let mut body = json!({
                    "model": model,
                    "messages": messages,
                    "temperature": req.temperature,
                    "max_tokens": req.max_tokens,
                });
                if req.json {
                    body["response_format"] = json!({"type": "json_object"});
                }
                body
            }
            Api::Anthropic => {
                let system = match (&req.system, req.json) {
                    (Some(s), true) => Some(format!("{s}\n\n{JSON_ONLY}")),
                    (Some(s), false) => Some(s.clone()),
                    (None, true) => Some(JSON_ONLY.to_string()),
                    (None, false) => None,
                };
                let mut body = json!({
                    "model": model,
                    "max_tokens": req.max_tokens,
                    "temperature": req.temperature,
                    "messages": [{"role": "user", "content": req.prompt}],
                });
                if let Some(system) = system {
                    body["system"] = Value::String(system);
                }
                body
            }
        }
    }

    /// One attempt, bounded by `timeout`.
    pub async fn send(
        &self,
        client: &reqwest::Client,
        req: &ChatRequest,
        model: &str,
        timeout: Duration,
    ) -> Result<Raw, Failure> {
        let mut http = client
            .post(&self.url)
            .timeout(timeout)
            .json(&self.body(req, model));
        match (self.api, &self.key) {
            (Api::OpenAi, Some(key)) => http = http.bearer_auth(key.expose_secret()),
            (Api::OpenAi, None) => {}
            (Api::Anthropic, key) => {
                if let Some(key) = key {
                    http = http.header("x-api-key", key.expose_secret());
                }
                http = http.header("anthropic-version", ANTHROPIC_VERSION);
            }
        }
        let response = http.send().await.map_err(|e| self.transport(e))?;
        let status = response.status().as_u16();
        let retry_after = parse_retry_after(response.headers());
        let body = response.text().await.map_err(|e| self.transport(e))?;
        if !(200..300).contains(&status) {
            return Err(Failure::Http {
                status,
                retry_after,
                detail: self.redact(&error_detail(&body)),
            });
        }
        let value: Value = serde_json::from_str(&body)
            .map_err(|e| Failure::BadReply(format!("the body is not JSON ({e})")))?;
        match self.api {
            Api::OpenAi => parse_openai(&value, model),
            Api::Anthropic => parse_anthropic(&value, model),
        }
        .map_err(Failure::BadReply)
    }

    fn transport(&self, e: reqwest::Error) -> Failure {
        if e.is_timeout() {
            return Failure::Timeout;
        }
        // The chain of causes says what happened (refused, reset...); the URL is left out.
        let e = e.without_url();
        let mut text = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
        Failure::Connection(self.redact(&text))
    }

    /// Providers sometimes echo part of the request; never let a key through.
    fn redact(&self, text: &str) -> String {
        match &self.key {
            Some(key) if !key.expose_secret().is_empty() => {
                text.replace(key.expose_secret(), "***")
            }
            _ => text.to_string(),
        }
    }
}

/// `Retry-After` in seconds (the HTTP-date form falls back to the backoff).
fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let raw = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let secs: f64 = raw.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// The provider's own error message if it sent one, else the start of the body.
fn error_detail(body: &str) -> String {
    let from_json = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("message"))
            .or_else(|| v.get("error"))
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let text = from_json.unwrap_or_else(|| body.trim().to_string());
    let mut short: String = text.chars().take(200).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

fn count(v: &Value, pointer: &str) -> u32 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
}

fn parse_openai(v: &Value, model: &str) -> Result<Raw, String> {
    let choice = v.pointer("/choices/0").ok_or("the reply has no choices")?;
    let text = choice
        .pointer("/message/content")
        .and_then(Value::as_str)
        .ok_or("the reply has no message content")?;
    let finish = match choice.get("finish_reason").and_then(Value::as_str) {
        Some("stop") | None => Finish::Stop,
        Some("length") => Finish::Length,
        Some(other) => Finish::Other(other.to_string()),
    };
    Ok(Raw {
        text: text.to_string(),
        model: v
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or(model)
            .to_string(),
        tokens_in: count(v, "/usage/prompt_tokens"),
        tokens_out: count(v, "/usage/completion_tokens"),
        finish,
    })
}

fn parse_anthropic(v: &Value, model: &str) -> Result<Raw, String> {
    let blocks = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or("the reply has no content")?;
    let text: String = blocks
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect();
    let finish = match v.get("stop_reason").and_then(Value::as_str) {
        Some("end_turn" | "stop_sequence") | None => Finish::Stop,
        Some("max_tokens") => Finish::Length,
        Some(other) => Finish::Other(other.to_string()),
    };
    Ok(Raw {
        text,
        model: v
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or(model)
            .to_string(),
        tokens_in: count(v, "/usage/input_tokens"),
        tokens_out: count(v, "/usage/output_tokens"),
        finish,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_reasons_map_to_truncation() {
        let v = json!({"choices": [{"message": {"content": "x"}, "finish_reason": "length"}],
                       "usage": {"prompt_tokens": 3, "completion_tokens": 4}});
        let raw = parse_openai(&v, "m").unwrap();
        assert_eq!(
            (
                raw.finish,
                raw.tokens_in,
                raw.tokens_out,
                raw.model.as_str()
            ),
            (Finish::Length, 3, 4, "m")
        );
        let v = json!({"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                       "stop_reason": "max_tokens", "model": "claude"});
        let raw = parse_anthropic(&v, "m").unwrap();
        assert_eq!((raw.text.as_str(), raw.finish), ("ab", Finish::Length));
        assert!(parse_openai(&json!({"choices": []}), "m").is_err());
    }

    #[test]
    fn error_details_are_short_and_keys_redacted() {
        assert_eq!(
            error_detail(r#"{"error":{"message":"model not found"}}"#),
            "model not found"
        );
        assert_eq!(error_detail(&"x".repeat(500)).chars().count(), 201);
        let p = HttpProvider {
            api: Api::OpenAi,
            url: String::new(),
            key: Some(SecretString::from("sk-123")),
        };
        assert_eq!(p.redact("bad key sk-123"), "bad key ***");
    }
}
