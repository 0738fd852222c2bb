//! The router: picks the provider chain, retries with backoff, keeps a circuit breaker per
//! provider, prices replies, and parses structured (JSON) output with token escalation.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::Rng;
use serde_json::Value;

use crate::breaker::{Breaker, Permit};
use crate::config::{endpoint, AiConfig};
use crate::error::{AiError, AiErrorCode, Attempt, Outcome};
use crate::http::{Api, HttpProvider, Raw};
use crate::offline;
use crate::request::{ChatReply, ChatRequest, Finish, JsonReply, TokenAdjustment};

/// How much a truncated or unparseable JSON reply's token limit grows per retry.
pub const TOKEN_ESCALATION_STEP: u32 = 500;
/// How many times the limit may grow for one request.
pub const MAX_TOKEN_ESCALATIONS: u32 = 3;
/// The limit never grows beyond this.
pub const MAX_TOKEN_ESCALATION_CAP: u32 = 10_000;

/// The AI router. Cheap to clone; clones share breakers and the HTTP connection pool.
#[derive(Clone)]
pub struct Llm {
    inner: Arc<Inner>,
}

struct Inner {
    config: AiConfig,
    client: reqwest::Client,
    openai: Option<(HttpProvider, Breaker)>,
    anthropic: Option<(HttpProvider, Breaker)>,
    /// Models already warned about having no price, so the log says it once.
    unpriced: Mutex<HashSet<String>>,
}

impl fmt::Debug for Llm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Llm")
            .field("providers", &self.providers())
            .finish()
    }
}

impl Llm {
    pub fn new(config: AiConfig) -> Llm {
        let breaker = || Breaker::new(config.breaker_threshold, config.breaker_cooldown);
        let openai = config.openai_configured().then(|| {
            let provider = HttpProvider {
                api: Api::OpenAi,
                url: endpoint(&config.effective_llm_base_url(), "/chat/completions"),
                key: config.llm_api_key.clone(),
            };
            (provider, breaker())
        });
        let anthropic = config.anthropic_configured().then(|| {
            let provider = HttpProvider {
                api: Api::Anthropic,
                url: endpoint(&config.anthropic_base_url, "/v1/messages"),
                key: config.anthropic_api_key.clone(),
            };
            (provider, breaker())
        });
        let client = reqwest::Client::builder()
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            .build()
            .expect("the HTTP client builds with static settings");
        Llm {
            inner: Arc::new(Inner {
                config,
                client,
                openai,
                anthropic,
                unpriced: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// A router with no provider: every request is answered by the offline provider.
    pub fn offline() -> Llm {
        Llm::new(AiConfig::default())
    }

    pub fn config(&self) -> &AiConfig {
        &self.inner.config
    }

    /// True when no provider is configured and replies come from the offline provider.
    pub fn is_offline(&self) -> bool {
        self.inner.openai.is_none() && self.inner.anthropic.is_none()
    }

    /// The providers in the order they are tried.
    pub fn providers(&self) -> Vec<&'static str> {
        if self.is_offline() {
            return vec![offline::PROVIDER];
        }
        [&self.inner.openai, &self.inner.anthropic]
            .into_iter()
            .flatten()
            .map(|(p, _)| p.name())
            .collect()
    }

    /// Providers whose circuit breaker is currently open (or waiting on its trial request).
    pub fn open_breakers(&self) -> Vec<&'static str> {
        [&self.inner.openai, &self.inner.anthropic]
            .into_iter()
            .flatten()
            .filter(|(_, b)| b.is_open())
            .map(|(p, _)| p.name())
            .collect()
    }

    /// The model the request would start with (the template's model, or `LLM_MODEL`).
    pub fn default_model(&self) -> &str {
        if self.is_offline() {
            offline::MODEL
        } else if self.inner.openai.is_some() {
            &self.inner.config.llm_model
        } else {
            &self.inner.config.anthropic_model
        }
    }

    /// The cost of a reply from the price table; a model with no price costs 0 and is logged once.
    pub fn cost(&self, model: &str, tokens_in: u32, tokens_out: u32) -> f64 {
        if model == offline::MODEL {
            return 0.0;
        }
        match self.inner.config.prices.cost(model, tokens_in, tokens_out) {
            Some(cost) => cost,
            None => {
                if self.inner.unpriced.lock().insert(model.to_string()) {
                    tracing::warn!(
                        model,
                        "no price for this model in AI_PRICE_TABLE; its requests are counted as free"
                    );
                }
                0.0
            }
        }
    }

    /// The (provider, model) pairs to try, in order: the requested model, the fallback model,
    /// then the next provider.
    fn chain(&self, req: &ChatRequest) -> Vec<(&HttpProvider, &Breaker, String)> {
        let config = &self.inner.config;
        let requested = req
            .model
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty());
        let mut chain = Vec::new();
        if let Some((p, b)) = &self.inner.openai {
            let first = requested.unwrap_or(&config.llm_model).to_string();
            chain.push((p, b, first.clone()));
            if let Some(fallback) = config.llm_fallback_model.as_ref().filter(|f| **f != first) {
                chain.push((p, b, fallback.clone()));
            }
        }
        if let Some((p, b)) = &self.inner.anthropic {
            // A Claude model asked for by name goes to Anthropic when it is the only provider.
            let named = requested
                .map(|m| m.strip_prefix("anthropic/").unwrap_or(m))
                .filter(|m| m.starts_with("claude") && self.inner.openai.is_none());
            if let Some(m) = named {
                chain.push((p, b, m.to_string()));
            }
            if named != Some(config.anthropic_model.as_str()) {
                chain.push((p, b, config.anthropic_model.clone()));
            }
        }
        chain
    }

    fn backoff(&self, retry: u32) -> Duration {
        let config = &self.inner.config;
        let full = config
            .retry_base_delay
            .saturating_mul(1u32 << retry.min(16))
            .min(config.retry_max_delay);
        // Jitter in [full/2, full] spreads out clients that failed together.
        let half = full / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(rand::thread_rng().gen_range(0..=jitter_ms))
    }

    /// Sends `req` along the chain until one provider answers.
    pub async fn complete(&self, req: &ChatRequest) -> Result<ChatReply, AiError> {
        let started = Instant::now();
        if self.is_offline() {
            return self.complete_offline(req, started);
        }
        let config = &self.inner.config;
        let mut attempts = Vec::new();
        for (provider, breaker, model) in self.chain(req) {
            for retry in 0..=config.max_retries {
                if breaker.permit() == Permit::Rejected {
                    attempts.push(attempt(provider.name(), &model, Outcome::BreakerOpen, 0));
                    break;
                }
                let t0 = Instant::now();
                let result = provider
                    .send(&self.inner.client, req, &model, config.request_timeout)
                    .await;
                let ms = elapsed_ms(t0);
                match result {
                    Ok(raw) => {
                        breaker.success();
                        return Ok(self.reply(req, provider.name(), raw, attempts, ms, started));
                    }
                    Err(failure) => {
                        if failure.counts_against_provider() {
                            breaker.failure();
                        } else {
                            breaker.neutral();
                        }
                        let outcome = failure.outcome();
                        tracing::warn!(
                            operation = %req.operation,
                            provider = provider.name(),
                            model = %model,
                            outcome = %outcome,
                            latency_ms = ms,
                            "AI attempt failed"
                        );
                        attempts.push(attempt(provider.name(), &model, outcome, ms));
                        if !failure.retryable() || retry == config.max_retries {
                            break;
                        }
                        let delay = failure
                            .retry_after()
                            .map(|d| d.min(config.retry_max_delay))
                            .unwrap_or_else(|| self.backoff(retry));
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        }
        let error = AiError::exhausted(attempts);
        tracing::error!(operation = %req.operation, code = error.code(), "{}", error.message);
        Err(error)
    }

    fn reply(
        &self,
        req: &ChatRequest,
        provider: &str,
        raw: Raw,
        mut attempts: Vec<Attempt>,
        attempt_ms: u64,
        started: Instant,
    ) -> ChatReply {
        let cost = self.cost(&raw.model, raw.tokens_in, raw.tokens_out);
        attempts.push(Attempt {
            provider: provider.to_string(),
            model: raw.model.clone(),
            outcome: Outcome::Ok,
            latency_ms: attempt_ms,
            tokens_in: raw.tokens_in,
            tokens_out: raw.tokens_out,
            cost_usd: cost,
        });
        let reply = ChatReply {
            text: raw.text,
            provider: provider.to_string(),
            model: raw.model,
            tokens_in: raw.tokens_in,
            tokens_out: raw.tokens_out,
            finish: raw.finish,
            latency_ms: elapsed_ms(started),
            cost_usd: cost,
            attempts,
        };
        tracing::info!(
            operation = %req.operation,
            provider = %reply.provider,
            model = %reply.model,
            tokens_in = reply.tokens_in,
            tokens_out = reply.tokens_out,
            latency_ms = reply.latency_ms,
            cost_usd = reply.cost_usd,
            attempts = reply.attempts.len(),
            "AI request answered"
        );
        reply
    }

    fn complete_offline(&self, req: &ChatRequest, started: Instant) -> Result<ChatReply, AiError> {
        let text = offline::answer(req)?;
        // A rough token count (about four characters a token) keeps the statistics meaningful.
        let estimate = |s: &str| u32::try_from(s.chars().count().div_ceil(4)).unwrap_or(u32::MAX);
        let tokens_in = estimate(&req.prompt) + req.system.as_deref().map_or(0, estimate);
        let tokens_out = estimate(&text);
        let ms = elapsed_ms(started);
        Ok(ChatReply {
            text,
            provider: offline::PROVIDER.to_string(),
            model: offline::MODEL.to_string(),
            tokens_in,
            tokens_out,
            finish: Finish::Stop,
            latency_ms: ms,
            cost_usd: 0.0,
            attempts: vec![Attempt {
                provider: offline::PROVIDER.to_string(),
                model: offline::MODEL.to_string(),
                outcome: Outcome::Ok,
                latency_ms: ms,
                tokens_in,
                tokens_out,
                cost_usd: 0.0,
            }],
        })
    }

    /// Asks for JSON, parses the reply (tolerating a ```json fence) and validates it. A
    /// truncated or unparseable reply is retried with `max_tokens` grown by 500, up to 3 times
    /// and never beyond 10000; the grown limit is reported so the caller can save it. The
    /// reply's tokens and cost are the totals over those retries; its attempts list them all.
    pub async fn complete_json(
        &self,
        req: &ChatRequest,
        validate: impl Fn(&Value) -> Result<(), String>,
    ) -> Result<JsonReply, AiError> {
        let baseline = req.max_tokens;
        let mut req = req.clone();
        req.json = true;
        let mut all_attempts: Vec<Attempt> = Vec::new();
        let mut totals = (0u32, 0u32, 0f64);
        let mut reason: Option<String> = None;
        let mut escalations = 0;
        loop {
            let mut reply = match self.complete(&req).await {
                Ok(reply) => reply,
                Err(mut e) => {
                    all_attempts.append(&mut e.attempts);
                    e.attempts = all_attempts;
                    return Err(e);
                }
            };
            all_attempts.append(&mut reply.attempts);
            totals.0 = totals.0.saturating_add(reply.tokens_in);
            totals.1 = totals.1.saturating_add(reply.tokens_out);
            totals.2 += reply.cost_usd;

            let problem = if reply.finish == Finish::Length {
                format!(
                    "the reply was cut off at the {}-token limit",
                    req.max_tokens
                )
            } else {
                match parse_json(&reply.text) {
                    Ok(value) => {
                        if let Err(why) = validate(&value) {
                            return Err(AiError {
                                code: AiErrorCode::BadReply,
                                message: format!(
                                    "the {} reply from {} did not have the expected shape: {why}",
                                    reply.provider, reply.model
                                ),
                                attempts: all_attempts,
                            });
                        }
                        let adjustment = reason.map(|reason| TokenAdjustment {
                            baseline,
                            new_max: req.max_tokens,
                            reason,
                        });
                        if let Some(a) = &adjustment {
                            tracing::info!(
                                operation = %req.operation,
                                baseline = a.baseline,
                                new_max = a.new_max,
                                reason = %a.reason,
                                "AI max tokens raised for a complete reply"
                            );
                        }
                        reply.attempts = all_attempts;
                        (reply.tokens_in, reply.tokens_out, reply.cost_usd) = totals;
                        return Ok(JsonReply {
                            value,
                            reply,
                            adjustment,
                        });
                    }
                    Err(e) => format!(
                        "the reply at the {}-token limit was not valid JSON ({e})",
                        req.max_tokens
                    ),
                }
            };
            let next = req
                .max_tokens
                .saturating_add(TOKEN_ESCALATION_STEP)
                .min(MAX_TOKEN_ESCALATION_CAP);
            if escalations >= MAX_TOKEN_ESCALATIONS || next <= req.max_tokens {
                return Err(AiError {
                    code: AiErrorCode::BadReply,
                    message: format!(
                        "{problem}, after raising the token limit {escalations} time{} from {baseline}",
                        if escalations == 1 { "" } else { "s" }
                    ),
                    attempts: all_attempts,
                });
            }
            tracing::warn!(
                operation = %req.operation,
                from = req.max_tokens,
                to = next,
                "{problem}; retrying with a higher token limit"
            );
            escalations += 1;
            req.max_tokens = next;
            reason = Some(problem);
        }
    }
}

fn attempt(provider: &str, model: &str, outcome: Outcome, latency_ms: u64) -> Attempt {
    Attempt {
        provider: provider.to_string(),
        model: model.to_string(),
        outcome,
        latency_ms,
        tokens_in: 0,
        tokens_out: 0,
        cost_usd: 0.0,
    }
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Parses a reply as JSON, tolerating a Markdown code fence and prose around the value.
pub fn parse_json(text: &str) -> Result<Value, String> {
    let trimmed = text.trim();
    let unfenced = strip_fence(trimmed).unwrap_or(trimmed);
    let first_error = match serde_json::from_str::<Value>(unfenced) {
        Ok(v) => return Ok(v),
        Err(e) => e.to_string(),
    };
    // Some models add a sentence before or after the JSON: try the outermost brackets.
    let start = unfenced.find(['{', '[']);
    let end = unfenced.rfind(['}', ']']);
    if let (Some(s), Some(e)) = (start, end) {
        if s < e {
            if let Ok(v) = serde_json::from_str::<Value>(&unfenced[s..=e]) {
                return Ok(v);
            }
        }
    }
    Err(first_error)
}

fn strip_fence(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("```")?;
    // Skip the language tag (`json`) up to the end of the first line.
    let body = &rest[rest.find('\n')? + 1..];
    Some(body.trim_end().strip_suffix("```").unwrap_or(body).trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_router_and_its_futures_can_cross_threads() {
        fn send_sync_clone<T: Send + Sync + Clone>(_: &T) {}
        fn send<T: Send>(_: &T) {}
        let llm = Llm::offline();
        send_sync_clone(&llm);
        let req = ChatRequest::new("op", "p");
        send(&llm.complete(&req));
        send(&llm.complete_json(&req, |_| Ok(())));
    }

    #[test]
    fn json_parsing_tolerates_fences_and_prose() {
        assert_eq!(parse_json("```json\n[1, 2]\n```").unwrap(), json!([1, 2]));
        assert_eq!(parse_json("```\n{\"a\": 1}\n```").unwrap(), json!({"a": 1}));
        assert_eq!(
            parse_json("Here you go:\n{\"a\": [1]}\nHope that helps").unwrap(),
            json!({"a": [1]})
        );
        assert!(parse_json("[{\"question\": \"What").is_err());
        // An unclosed fence still yields its content.
        assert_eq!(parse_json("```json\n{\"a\": 1}").unwrap(), json!({"a": 1}));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let llm = Llm::new(AiConfig {
            retry_base_delay: Duration::from_millis(100),
            retry_max_delay: Duration::from_millis(300),
            ..AiConfig::default()
        });
        for _ in 0..20 {
            let d0 = llm.backoff(0);
            assert!(d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100));
            let d5 = llm.backoff(5);
            assert!(d5 >= Duration::from_millis(150) && d5 <= Duration::from_millis(300));
        }
    }

    #[test]
    fn chain_order() {
        let config = AiConfig::from_env(|k| {
            match k {
                "LLM_BASE_URL" => Some("http://127.0.0.1:1/v1"),
                "LLM_MODEL" => Some("main"),
                "LLM_FALLBACK_MODEL" => Some("backup"),
                "ANTHROPIC_API_KEY" => Some("k"),
                "ANTHROPIC_MODEL" => Some("claude-x"),
                _ => None,
            }
            .map(str::to_string)
        })
        .unwrap();
        let llm = Llm::new(config);
        let names = |req: &ChatRequest| -> Vec<(String, String)> {
            llm.chain(req)
                .into_iter()
                .map(|(p, _, m)| (p.name().to_string(), m))
                .collect()
        };
        let mut req = ChatRequest::new("op", "hi");
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            names(&req),
            vec![
                s("openai-compatible", "main"),
                s("openai-compatible", "backup"),
                s("anthropic", "claude-x")
            ]
        );
        req.model = Some("backup".into());
        assert_eq!(names(&req).len(), 2);
        assert_eq!(llm.providers(), vec!["openai-compatible", "anthropic"]);
        assert!(!llm.is_offline());
        assert!(Llm::offline().is_offline());
    }
}
