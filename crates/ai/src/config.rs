//! The AI layer's settings: providers, retry and breaker tuning, prices, and the app-level limits.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

/// Where `LLM_API_KEY` goes when no `LLM_BASE_URL` is given.
pub const DEFAULT_LLM_BASE_URL: &str = "https://openrouter.ai/api/v1";
pub const DEFAULT_LLM_MODEL: &str = "gpt-4o-mini";
pub const DEFAULT_ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
pub const DEFAULT_ANTHROPIC_MODEL: &str = "claude-3-5-haiku-latest";

/// USD per 1,000 tokens.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Price {
    pub input_per_1k: f64,
    pub output_per_1k: f64,
}

/// Model name → price. A model matches its exact entry; failing that, its name without an
/// `org/` prefix (OpenRouter style); failing that, the longest entry that starts it (so
/// `claude-3-5-haiku` prices `claude-3-5-haiku-20241022`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PriceTable(BTreeMap<String, Price>);

impl PriceTable {
    /// List prices of a few common models at the time of writing; `AI_PRICE_TABLE` entries
    /// override and extend them.
    pub fn builtin() -> PriceTable {
        let mut t = PriceTable::default();
        for (model, input, output) in [
            ("gpt-4o-mini", 0.00015, 0.0006),
            ("gpt-4o", 0.0025, 0.01),
            ("claude-3-5-haiku", 0.0008, 0.004),
            ("claude-3-5-sonnet", 0.003, 0.015),
        ] {
            t.insert(model, input, output);
        }
        t
    }

    pub fn insert(&mut self, model: &str, input_per_1k: f64, output_per_1k: f64) {
        self.0.insert(
            model.to_string(),
            Price {
                input_per_1k,
                output_per_1k,
            },
        );
    }

    /// Parses `model=input/output,model=input/output` (USD per 1K tokens).
    pub fn parse(raw: &str) -> Result<PriceTable, String> {
        let mut t = PriceTable::default();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = || {
                format!(
                    "AI_PRICE_TABLE entry {entry:?} must look like model=0.00015/0.0006 (USD per 1K input/output tokens)"
                )
            };
            let (model, prices) = entry.split_once('=').ok_or_else(bad)?;
            let (input, output) = prices.split_once('/').ok_or_else(bad)?;
            let number = |s: &str| {
                s.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|p| p.is_finite() && *p >= 0.0)
            };
            let (Some(input), Some(output)) = (number(input), number(output)) else {
                return Err(bad());
            };
            let model = model.trim();
            if model.is_empty() {
                return Err(bad());
            }
            t.insert(model, input, output);
        }
        Ok(t)
    }

    pub fn price(&self, model: &str) -> Option<Price> {
        if let Some(p) = self.0.get(model) {
            return Some(*p);
        }
        let bare = model.rsplit('/').next().unwrap_or(model);
        if let Some(p) = self.0.get(bare) {
            return Some(*p);
        }
        self.0
            .iter()
            .filter(|(k, _)| bare.starts_with(k.as_str()))
            .max_by_key(|(k, _)| k.len())
            .map(|(_, p)| *p)
    }

    /// The cost of a request, or `None` for a model with no price.
    pub fn cost(&self, model: &str, tokens_in: u32, tokens_out: u32) -> Option<f64> {
        self.price(model).map(|p| {
            f64::from(tokens_in) / 1000.0 * p.input_per_1k
                + f64::from(tokens_out) / 1000.0 * p.output_per_1k
        })
    }
}

/// Settings for the AI layer. Keys are secrets: `Debug` shows only whether one is set.
#[derive(Clone)]
pub struct AiConfig {
    /// The OpenAI-compatible API base (`/chat/completions` is appended).
    pub llm_base_url: Option<Url>,
    pub llm_api_key: Option<SecretString>,
    pub llm_model: String,
    pub llm_fallback_model: Option<String>,
    pub anthropic_base_url: Url,
    pub anthropic_api_key: Option<SecretString>,
    pub anthropic_model: String,
    /// Limit for one HTTP attempt.
    pub request_timeout: Duration,
    /// Retries of one model after a 429, 5xx or connection failure (so attempts = 1 + this).
    pub max_retries: u32,
    /// First backoff delay; it doubles each retry, with jitter.
    pub retry_base_delay: Duration,
    /// Longest wait between retries, including one asked for by `Retry-After`.
    pub retry_max_delay: Duration,
    /// Consecutive failures that open a provider's circuit breaker.
    pub breaker_threshold: u32,
    /// How long an open breaker rejects requests before one trial request.
    pub breaker_cooldown: Duration,
    pub prices: PriceTable,
    /// Enforced by the app per company.
    pub company_requests_per_minute: u32,
    /// Enforced by the app per company, in USD per UTC day.
    pub company_daily_cost_cap_usd: f64,
    /// How long the app keeps AI request logs.
    pub log_retention_days: u32,
}

impl Default for AiConfig {
    /// No provider (so the offline one), and the default limits.
    fn default() -> AiConfig {
        AiConfig {
            llm_base_url: None,
            llm_api_key: None,
            llm_model: DEFAULT_LLM_MODEL.to_string(),
            llm_fallback_model: None,
            anthropic_base_url: Url::parse(DEFAULT_ANTHROPIC_BASE_URL).expect("valid default"),
            anthropic_api_key: None,
            anthropic_model: DEFAULT_ANTHROPIC_MODEL.to_string(),
            request_timeout: Duration::from_secs(60),
            max_retries: 2,
            retry_base_delay: Duration::from_millis(500),
            retry_max_delay: Duration::from_secs(30),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
            prices: PriceTable::builtin(),
            company_requests_per_minute: 60,
            company_daily_cost_cap_usd: 20.0,
            log_retention_days: 30,
        }
    }
}

impl fmt::Debug for AiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |k: &Option<SecretString>| if k.is_some() { "<set>" } else { "<unset>" };
        f.debug_struct("AiConfig")
            .field("llm_base_url", &self.llm_base_url.as_ref().map(Url::as_str))
            .field("llm_api_key", &set(&self.llm_api_key))
            .field("llm_model", &self.llm_model)
            .field("llm_fallback_model", &self.llm_fallback_model)
            .field("anthropic_base_url", &self.anthropic_base_url.as_str())
            .field("anthropic_api_key", &set(&self.anthropic_api_key))
            .field("anthropic_model", &self.anthropic_model)
            .field("request_timeout", &self.request_timeout)
            .field("max_retries", &self.max_retries)
            .field("retry_base_delay", &self.retry_base_delay)
            .field("retry_max_delay", &self.retry_max_delay)
            .field("breaker_threshold", &self.breaker_threshold)
            .field("breaker_cooldown", &self.breaker_cooldown)
            .field("prices", &self.prices)
            .field(
                "company_requests_per_minute",
                &self.company_requests_per_minute,
            )
            .field(
                "company_daily_cost_cap_usd",
                &self.company_daily_cost_cap_usd,
            )
            .field("log_retention_days", &self.log_retention_days)
            .finish()
    }
}

impl AiConfig {
    /// Whether the OpenAI-compatible provider is configured (a base URL or a key).
    pub fn openai_configured(&self) -> bool {
        self.llm_base_url.is_some() || self.llm_api_key.is_some()
    }

    /// Whether the Anthropic provider is configured (a key).
    pub fn anthropic_configured(&self) -> bool {
        self.anthropic_api_key.is_some()
    }

    /// The OpenAI-compatible base URL in use: `LLM_BASE_URL`, or OpenRouter when only a key is set.
    pub fn effective_llm_base_url(&self) -> Url {
        self.llm_base_url
            .clone()
            .unwrap_or_else(|| Url::parse(DEFAULT_LLM_BASE_URL).expect("valid default"))
    }

    /// Reads the `LLM_*`, `ANTHROPIC_*` and `AI_*` variables through `lookup` (blank counts as
    /// unset). Every problem is returned, each naming the variable and what to fix.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<AiConfig, Vec<String>> {
        let var = |key: &str| {
            lookup(key)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mut problems = Vec::new();
        let d = AiConfig::default();
        let llm_base_url =
            var("LLM_BASE_URL").and_then(|raw| base_url("LLM_BASE_URL", &raw, &mut problems));
        let anthropic_base_url = match var("ANTHROPIC_BASE_URL") {
            Some(raw) => base_url("ANTHROPIC_BASE_URL", &raw, &mut problems),
            None => None,
        };

        let mut number = |key: &str, default: u64, min: u64| -> u64 {
            match var(key) {
                None => default,
                Some(raw) => match raw.parse::<u64>() {
                    Ok(n) if n >= min && n <= u64::from(u32::MAX) => n,
                    _ => {
                        problems.push(format!(
                            "{key} must be a whole number of at least {min} (got {raw:?})"
                        ));
                        default
                    }
                },
            }
        };
        let secs = |d: Duration| d.as_secs();
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let mut c = AiConfig {
            llm_base_url,
            llm_api_key: var("LLM_API_KEY").map(SecretString::from),
            llm_model: var("LLM_MODEL").unwrap_or(d.llm_model),
            llm_fallback_model: var("LLM_FALLBACK_MODEL"),
            anthropic_base_url: anthropic_base_url.unwrap_or(d.anthropic_base_url),
            anthropic_api_key: var("ANTHROPIC_API_KEY").map(SecretString::from),
            anthropic_model: var("ANTHROPIC_MODEL").unwrap_or(d.anthropic_model),
            request_timeout: Duration::from_secs(number(
                "AI_REQUEST_TIMEOUT_SECS",
                secs(d.request_timeout),
                1,
            )),
            max_retries: number("AI_MAX_RETRIES", d.max_retries.into(), 0) as u32,
            retry_base_delay: Duration::from_millis(number(
                "AI_RETRY_BASE_DELAY_MS",
                millis(d.retry_base_delay),
                0,
            )),
            retry_max_delay: Duration::from_secs(number(
                "AI_RETRY_MAX_DELAY_SECS",
                secs(d.retry_max_delay),
                1,
            )),
            breaker_threshold: number("AI_BREAKER_THRESHOLD", d.breaker_threshold.into(), 1) as u32,
            breaker_cooldown: Duration::from_secs(number(
                "AI_BREAKER_COOLDOWN_SECS",
                secs(d.breaker_cooldown),
                1,
            )),
            company_requests_per_minute: number(
                "AI_COMPANY_REQUESTS_PER_MINUTE",
                d.company_requests_per_minute.into(),
                1,
            ) as u32,
            log_retention_days: number("AI_LOG_RETENTION_DAYS", d.log_retention_days.into(), 1)
                as u32,
            prices: d.prices,
            company_daily_cost_cap_usd: d.company_daily_cost_cap_usd,
        };

        if let Some(raw) = var("AI_COMPANY_DAILY_COST_CAP_USD") {
            match raw.parse::<f64>() {
                Ok(cap) if cap.is_finite() && cap >= 0.0 => c.company_daily_cost_cap_usd = cap,
                _ => problems.push(format!(
                    "AI_COMPANY_DAILY_COST_CAP_USD must be a non-negative amount in USD, e.g. 20 or 7.5 (got {raw:?})"
                )),
            }
        }
        if let Some(raw) = var("AI_PRICE_TABLE") {
            match PriceTable::parse(&raw) {
                Ok(table) => c.prices.0.extend(table.0),
                Err(p) => problems.push(p),
            }
        }

        if problems.is_empty() {
            Ok(c)
        } else {
            Err(problems)
        }
    }
}

fn base_url(name: &str, raw: &str, problems: &mut Vec<String>) -> Option<Url> {
    match Url::parse(raw.trim_end_matches('/')) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
            if url.query().is_some() || url.fragment().is_some() {
                problems.push(format!("{name} must not have a query or fragment: {raw:?}"));
                return None;
            }
            Some(url)
        }
        Ok(_) => {
            problems.push(format!(
                "{name} must be an http or https URL, e.g. http://127.0.0.1:8080/v1 (got {raw:?})"
            ));
            None
        }
        Err(e) => {
            problems.push(format!("{name} must be a valid URL ({e}): {raw:?}"));
            None
        }
    }
}

/// Joins a configured base URL and an API path without doubling or dropping the `/`.
pub(crate) fn endpoint(base: &Url, path: &str) -> String {
    format!("{}{}", base.as_str().trim_end_matches('/'), path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn defaults_are_offline_with_default_limits() {
        let c = AiConfig::from_env(env(&[])).unwrap();
        assert!(!c.openai_configured() && !c.anthropic_configured());
        assert_eq!(c.company_requests_per_minute, 60);
        assert_eq!(c.company_daily_cost_cap_usd, 20.0);
        assert_eq!(c.log_retention_days, 30);
        assert_eq!(c.anthropic_base_url.as_str(), "https://api.anthropic.com/");
    }

    #[test]
    fn reads_every_variable_and_hides_keys() {
        let c = AiConfig::from_env(env(&[
            ("LLM_BASE_URL", "http://127.0.0.1:8080/v1/"),
            ("LLM_API_KEY", "sk-secret-one"),
            ("LLM_MODEL", "gpt-5"),
            ("LLM_FALLBACK_MODEL", "gpt-4o-mini"),
            ("ANTHROPIC_BASE_URL", "http://127.0.0.1:9000"),
            ("ANTHROPIC_API_KEY", "sk-ant-secret-two"),
            ("ANTHROPIC_MODEL", "claude-x"),
            ("AI_REQUEST_TIMEOUT_SECS", "7"),
            ("AI_PRICE_TABLE", "gpt-5=0.01/0.03, gpt-4o-mini=1/2"),
            ("AI_COMPANY_REQUESTS_PER_MINUTE", "5"),
            ("AI_COMPANY_DAILY_COST_CAP_USD", "2.5"),
            ("AI_LOG_RETENTION_DAYS", "9"),
        ]))
        .unwrap();
        assert_eq!(
            endpoint(c.llm_base_url.as_ref().unwrap(), "/chat/completions"),
            "http://127.0.0.1:8080/v1/chat/completions"
        );
        assert_eq!(
            c.llm_api_key.as_ref().unwrap().expose_secret(),
            "sk-secret-one"
        );
        assert_eq!(c.llm_model, "gpt-5");
        assert_eq!(c.llm_fallback_model.as_deref(), Some("gpt-4o-mini"));
        assert_eq!(
            endpoint(&c.anthropic_base_url, "/v1/messages"),
            "http://127.0.0.1:9000/v1/messages"
        );
        assert_eq!(c.anthropic_model, "claude-x");
        assert_eq!(c.request_timeout, Duration::from_secs(7));
        assert_eq!(c.prices.cost("gpt-5", 1000, 1000), Some(0.04));
        assert_eq!(c.prices.cost("gpt-4o-mini", 1000, 0), Some(1.0));
        // Built-in entries not overridden stay.
        assert!(c.prices.price("claude-3-5-haiku").is_some());
        assert_eq!(c.company_requests_per_minute, 5);
        assert_eq!(c.company_daily_cost_cap_usd, 2.5);
        assert_eq!(c.log_retention_days, 9);

        let debug = format!("{c:?}");
        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains("<set>"), "{debug}");
    }

    #[test]
    fn reports_every_problem() {
        let problems = AiConfig::from_env(env(&[
            ("LLM_BASE_URL", "not a url"),
            ("ANTHROPIC_BASE_URL", "ftp://example.org"),
            ("AI_REQUEST_TIMEOUT_SECS", "0"),
            ("AI_PRICE_TABLE", "gpt-4o=cheap"),
            ("AI_COMPANY_REQUESTS_PER_MINUTE", "-1"),
            ("AI_COMPANY_DAILY_COST_CAP_USD", "lots"),
            ("AI_LOG_RETENTION_DAYS", "x"),
        ]))
        .unwrap_err();
        assert_eq!(problems.len(), 7, "{problems:#?}");
        for name in [
            "LLM_BASE_URL",
            "ANTHROPIC_BASE_URL",
            "AI_REQUEST_TIMEOUT_SECS",
            "AI_PRICE_TABLE",
            "AI_COMPANY_REQUESTS_PER_MINUTE",
            "AI_COMPANY_DAILY_COST_CAP_USD",
            "AI_LOG_RETENTION_DAYS",
        ] {
            assert!(
                problems.iter().any(|p| p.contains(name)),
                "{name}: {problems:#?}"
            );
        }
    }

    #[test]
    fn prices_match_by_prefix_and_org() {
        let t = PriceTable::parse("claude-3-5-haiku=0.8/4,gpt-4o=1/1,gpt-4o-mini=2/2").unwrap();
        assert_eq!(
            t.price("claude-3-5-haiku-20241022").unwrap().input_per_1k,
            0.8
        );
        assert_eq!(t.price("openai/gpt-4o-mini").unwrap().input_per_1k, 2.0);
        assert_eq!(t.price("gpt-4o-2024-08-06").unwrap().input_per_1k, 1.0);
        assert_eq!(t.price("llama-3"), None);
        assert!(PriceTable::parse("a=1").is_err());
        assert!(PriceTable::parse("=1/2").is_err());
        assert!(PriceTable::parse("a=-1/2").is_err());
    }

    #[test]
    fn only_a_key_uses_openrouter() {
        let c = AiConfig::from_env(env(&[("LLM_API_KEY", "k")])).unwrap();
        assert!(c.openai_configured());
        assert_eq!(
            c.effective_llm_base_url().as_str(),
            "https://openrouter.ai/api/v1"
        );
    }
}
