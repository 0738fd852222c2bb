//! The AI service: the one way actions call a language model. It resolves and renders the prompt
//! (through an internal query), admits the request against the company's rate limit and daily cost
//! cap (an internal mutation), calls the providers (`ai::Llm`, text or JSON by the prompt's output
//! format), and records the outcome (an internal mutation: the request log, the prompt's usage
//! statistics, the daily usage, and any automatic token adjustment). Failures are recorded too and
//! returned with a stable code, so the caller can take its fallback path.
//!
//! ```ignore
//! let outcome = service.generate(&ctx, AiCall::new("enhance_narrative_before_event", vars)
//!     .by(user, company).about_incident(&incident_id)).await?;
//! ```

mod limits;
mod logs;
mod reading;
mod retention;
pub mod rows;
mod test_prompt;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ai::{AiError, AiErrorCode, ChatRequest, Llm};
use functions::{ActionCtx, ErrorCode, FnResult, FunctionError, Registry};
use serde::Serialize;
use serde_json::{Map, Value as Json};
use values::{DocumentId, Typed, Value};

use crate::prompts::resolve::{Problems, Resolution, ResolveArgs, Variables};
use crate::prompts::{self, defaults::OutputFormat, NoArgs, TokenAdjustment};

/// Time kept back from an action's deadline (at most a quarter of what is left) to record a
/// request that the providers took too long over: the log row is written by a mutation.
const RECORD_RESERVE: Duration = Duration::from_secs(5);

pub use logs::{LogDoc, LOGS, USAGE};
pub use retention::{prune_path, seed_default_prompts};
pub use test_prompt::TestOutcome;

/// A JSON reply's shape check: `Err(why)` makes the reply unusable (code `AI_BAD_REPLY`).
pub type JsonCheck = Arc<dyn Fn(&Json) -> Result<(), String> + Send + Sync>;

/// One request to the AI service.
#[derive(Clone)]
pub struct AiCall {
    pub prompt_name: String,
    /// `incidents` unless given.
    pub subsystem: Option<String>,
    pub variables: Map<String, Json>,
    /// Who asked: the user, and the company whose limits and log the request counts against.
    pub user_id: Option<DocumentId>,
    pub company_id: Option<DocumentId>,
    pub incident_id: Option<String>,
    /// For prompts whose output format is JSON: the expected shape.
    pub check: Option<JsonCheck>,
}

impl AiCall {
    pub fn new(prompt_name: impl Into<String>, variables: Map<String, Json>) -> AiCall {
        AiCall {
            prompt_name: prompt_name.into(),
            subsystem: None,
            variables,
            user_id: None,
            company_id: None,
            incident_id: None,
            check: None,
        }
    }
    pub fn by(mut self, user: Option<DocumentId>, company: Option<DocumentId>) -> AiCall {
        self.user_id = user;
        self.company_id = company;
        self
    }
    pub fn about_incident(mut self, incident: impl Into<String>) -> AiCall {
        self.incident_id = Some(incident.into());
        self
    }
    pub fn checked(mut self, check: JsonCheck) -> AiCall {
        self.check = Some(check);
        self
    }
}

/// What a successful call produced (as clients see it: `TestOutcome`).
#[derive(Clone, Debug, Serialize, Typed)]
pub struct AiOutcome {
    pub text: String,
    /// The parsed reply, for prompts whose output format is JSON (shown as a `Value`).
    #[serde(skip)]
    pub json: Option<Json>,
    /// `openai-compatible`, `anthropic` or `offline`.
    pub provider: String,
    pub model: String,
    /// Answered by the offline provider (no provider configured).
    pub offline: bool,
    pub tokens_in: u32,
    pub tokens_out: u32,
    pub cost_usd: f64,
    pub latency_ms: u64,
    pub correlation_id: String,
    pub prompt_id: String,
    pub prompt_name: String,
    pub prompt_version: String,
    /// Variables given that the template does not use.
    pub unused_variables: Vec<String>,
    /// Set when the token limit had to grow (and was saved on the prompt).
    pub token_adjustment: Option<TokenAdjustment>,
}

/// Why a call produced nothing. `code` is stable (`PROMPT_NOT_FOUND`, `INVALID_VARIABLES`,
/// `RATE_LIMITED`, `COST_CAP_REACHED`, the providers' `AI_*` codes, or a function error's code);
/// `error` is what a client should be told.
#[derive(Clone, Debug)]
pub struct AiFailure {
    pub code: String,
    pub error: FunctionError,
    pub correlation_id: String,
}

impl std::fmt::Display for AiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.error)
    }
}

impl From<AiFailure> for FunctionError {
    fn from(failure: AiFailure) -> FunctionError {
        failure.error
    }
}

/// The client-facing error of a provider failure.
fn provider_error(e: &AiError) -> FunctionError {
    let code = match e.code {
        AiErrorCode::Timeout => ErrorCode::Timeout,
        AiErrorCode::BadRequest => ErrorCode::Validation,
        _ => ErrorCode::Unavailable,
    };
    FunctionError::user(
        code,
        format!(
            "The AI service could not answer ({}): {}",
            e.code(),
            e.message
        ),
    )
}

struct Inner {
    llm: Llm,
    limits: limits::Limits,
    retention_days: u32,
}

/// Cheap to clone; built once per registry from `config.ai`.
#[derive(Clone)]
pub struct AiService {
    inner: Arc<Inner>,
}

impl AiService {
    pub fn from_config(config: &ai::AiConfig) -> AiService {
        AiService::with_llm(Llm::new(config.clone()))
    }

    pub fn with_llm(llm: Llm) -> AiService {
        let config = llm.config();
        let limits = limits::Limits {
            requests_per_minute: config.company_requests_per_minute,
            daily_cost_cap_usd: config.company_daily_cost_cap_usd,
        };
        let retention_days = config.log_retention_days;
        AiService {
            inner: Arc::new(Inner {
                llm,
                limits,
                retention_days,
            }),
        }
    }

    pub fn is_offline(&self) -> bool {
        self.inner.llm.is_offline()
    }

    pub fn retention_days(&self) -> u32 {
        self.inner.retention_days
    }

    /// Resolves, renders, admits, calls and records one request. See the module comment.
    pub async fn generate(&self, ctx: &ActionCtx, call: AiCall) -> Result<AiOutcome, AiFailure> {
        let correlation_id = ctx.request_id.as_str().to_string();
        let mut log = logs::Entry::new(&call, &correlation_id);
        let fail = |code: &str, error: FunctionError| AiFailure {
            code: code.to_string(),
            error,
            correlation_id: correlation_id.clone(),
        };
        let as_failure = |error: FunctionError| {
            let code = error
                .code()
                .map_or("INTERNAL", ErrorCode::as_str)
                .to_string();
            fail(&code, error)
        };

        // 1. The prompt, rendered.
        let resolved = resolve(ctx, &call).await.map_err(as_failure)?;
        let Some(prompt) = resolved.prompt.0.clone() else {
            let error = prompts::active_not_found(&call.prompt_name);
            log.fail("PROMPT_NOT_FOUND", &error.to_string());
            self.record(ctx, &log, None).await;
            return Err(fail("PROMPT_NOT_FOUND", error));
        };
        log.prompt(&prompt);
        if let Some(problems) = &resolved.problems {
            let error = substitution_error(&call.prompt_name, problems);
            log.fail("INVALID_VARIABLES", &error.to_string());
            self.record(ctx, &log, None).await;
            return Err(fail("INVALID_VARIABLES", error));
        }
        let rendered = resolved.rendered.clone().unwrap_or_default();
        log.resolved_prompt = Some(rendered.clone());

        // 2. The company's limits.
        if let Some((code, message)) = self.admit(ctx, &call).await.map_err(as_failure)? {
            log.fail(&code, &message);
            log.rejected = true;
            self.record(ctx, &log, None).await;
            return Err(fail(
                &code,
                FunctionError::user(ErrorCode::RateLimited, message),
            ));
        }

        // 3. The providers.
        let model = prompt.ai_model.clone();
        let request = ChatRequest {
            operation: call.prompt_name.clone(),
            variables: call.variables.clone(),
            system: None,
            prompt: rendered,
            model: (!model.is_empty() && model != prompts::DEFAULT_MODEL).then_some(model),
            temperature: prompt.temperature as f32,
            max_tokens: prompt.max_tokens.clamp(1.0, u32::MAX as f64) as u32,
            json: OutputFormat::parse(&prompt.output_format) == Some(OutputFormat::Json),
        };
        let llm = &self.inner.llm;
        let providers = async {
            if request.json {
                let check = call.check.clone();
                llm.complete_json(&request, move |value| match &check {
                    Some(check) => check(value),
                    None => Ok(()),
                })
                .await
                .map(|reply| (reply.reply, Some(reply.value), reply.adjustment))
            } else {
                llm.complete(&request)
                    .await
                    .map(|reply| (reply, None, None))
            }
        };
        // Retries and fallbacks could outlast the action; stop them early enough to write the log.
        let left = ctx.deadline().saturating_duration_since(Instant::now());
        let budget = left.saturating_sub(RECORD_RESERVE.min(left / 4));
        let answer = match tokio::time::timeout(budget, providers).await {
            Ok(answer) => answer,
            Err(_) => Err(AiError::new(
                AiErrorCode::Timeout,
                format!(
                    "the AI providers did not answer within the {} s left to this request",
                    budget.as_secs()
                ),
            )),
        };

        // 4. The record.
        match answer {
            Ok((reply, json, adjustment)) => {
                let adjustment = adjustment.map(|a| TokenAdjustment {
                    baseline: f64::from(a.baseline),
                    new_max: f64::from(a.new_max),
                    reason: a.reason,
                });
                log.succeed(&reply);
                self.record(ctx, &log, adjustment.as_ref()).await;
                Ok(AiOutcome {
                    offline: reply.provider == ai::offline::PROVIDER,
                    text: reply.text,
                    json,
                    provider: reply.provider,
                    model: reply.model,
                    tokens_in: reply.tokens_in,
                    tokens_out: reply.tokens_out,
                    cost_usd: reply.cost_usd,
                    latency_ms: reply.latency_ms,
                    correlation_id: correlation_id.clone(),
                    prompt_id: prompt.prompt_id.encode(),
                    prompt_name: prompt.prompt_name.clone(),
                    prompt_version: prompt.prompt_version.clone(),
                    unused_variables: resolved.unused.clone().unwrap_or_default(),
                    token_adjustment: adjustment,
                })
            }
            Err(e) => {
                log.provider_failed(&e);
                self.record(ctx, &log, None).await;
                Err(fail(e.code(), provider_error(&e)))
            }
        }
    }

    /// `None` when admitted; otherwise the code and message of the refusal.
    async fn admit(&self, ctx: &ActionCtx, call: &AiCall) -> FnResult<Option<(String, String)>> {
        let args = limits::AdmitArgs {
            company_id: call.company_id,
            user_id: call.user_id,
        };
        let answer = ctx.run_mutation(limits::ADMIT, &args).await?;
        if answer.admitted {
            return Ok(None);
        }
        Ok(Some((
            answer.code.unwrap_or_default(),
            answer.message.unwrap_or_default(),
        )))
    }

    /// Records the outcome. A failure to record is logged, never allowed to lose the AI's answer.
    async fn record(
        &self,
        ctx: &ActionCtx,
        log: &logs::Entry,
        adjustment: Option<&TokenAdjustment>,
    ) {
        let args = log.to_args(adjustment);
        if let Err(e) = ctx.run_mutation(logs::RECORD, &args).await {
            tracing::error!(request_id = %ctx.request_id, error = %e, operation = %log.operation, "recording an AI request failed");
        }
    }
}

/// The resolution (see `prompts::resolve`), seeding the defaults first into an empty table.
async fn resolve(ctx: &ActionCtx, call: &AiCall) -> FnResult<Resolution> {
    let variables = match values::json::from_clean_json(&Json::Object(call.variables.clone()))? {
        Value::Object(fields) => fields.into_iter().collect::<Variables>(),
        _ => Variables::new(),
    };
    let args = ResolveArgs {
        prompt_name: call.prompt_name.clone(),
        subsystem: call.subsystem.clone(),
        variables,
    };
    let first = ctx.run_query(prompts::resolve::RESOLVE, &args).await?;
    let empty = first.prompt.is_none() && first.any_prompts == Some(false);
    if !empty {
        return Ok(first);
    }
    ctx.run_mutation(prompts::ENSURE_DEFAULTS, &NoArgs {})
        .await?;
    ctx.run_query(prompts::resolve::RESOLVE, &args).await
}

fn substitution_error(name: &str, problems: &Problems) -> FunctionError {
    let mut parts = Vec::new();
    for (items, label) in [
        (&problems.missing, "missing required variables"),
        (&problems.type_errors, "wrong types"),
        (&problems.unknown, "placeholders with no declared variable"),
    ] {
        if !items.is_empty() {
            parts.push(format!("{label}: {}", items.join(", ")));
        }
    }
    FunctionError::validation(
        "variables",
        format!("Prompt {name} cannot be filled in: {}", parts.join("; ")),
    )
}

pub fn tables() -> Vec<store::TableDef> {
    logs::tables()
}

/// The row types of this module's tables, checked against the tables by a test.
pub fn rows() -> Vec<(&'static str, values::Validator)> {
    logs::rows()
}

pub fn register(r: &mut Registry, service: &AiService) {
    limits::register(r, service.inner.limits);
    logs::register(r);
    reading::register(r, service.inner.limits);
    retention::register(r, service.inner.retention_days);
    test_prompt::register(r, service);
}
