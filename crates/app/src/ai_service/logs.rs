//! The AI request log (`ai_request_logs`, one row per request, success or not) and the daily usage
//! counters (`ai_usage_daily`, per company or platform user, day and operation) that serve the cost
//! cap and the usage statistics, and the internal mutation that records a request in both. Both
//! tables belong to the company the request was made for (reading them: `reading`).

use ai::{AiError, ChatReply, Finish};
use functions::{FnResult, FunctionError, FunctionRef, MutationCtx, Registry, Scope, ScopedWriter};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use store::{Patch, TableDef};
use values::validator::v;
use values::{DocumentId, Id, Object, Typed, Value};

use super::AiCall;
use crate::prompts::resolve::PromptSummary;
use crate::prompts::{self, TokenAdjustment};

pub const LOGS: &str = "ai_request_logs";
pub const USAGE: &str = "ai_usage_daily";
pub const RECORD: FunctionRef<RecordArgs, Id<LogDoc>> =
    FunctionRef::internal_mutation("aiService:recordRequest");

/// A request-log row as the service hands it over (the table's fields but `created_at`).
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
pub struct LogEntry {
    pub correlation_id: String,
    pub operation: String,
    pub prompt_id: Option<String>,
    pub prompt_version: Option<String>,
    pub subsystem: Option<String>,
    /// The values given, as sent.
    pub variables: Value,
    pub resolved_prompt: Option<String>,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub tokens_in: f64,
    pub tokens_out: f64,
    pub cost_usd: f64,
    pub latency_ms: f64,
    pub success: bool,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub output: Option<String>,
    pub finish: Option<String>,
    pub attempts: Vec<String>,
    pub token_adjustment: Option<TokenAdjustment>,
    #[typed(id = "users")]
    pub user_id: Option<DocumentId>,
    #[typed(id = "companies")]
    pub company_id: Option<DocumentId>,
    pub incident_id: Option<String>,
}

/// A document of the request log.
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
#[typed(table = "ai_request_logs")]
pub struct LogDoc {
    #[serde(rename = "_id")]
    pub id: Id<LogDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    #[serde(flatten)]
    pub entry: LogEntry,
    pub created_at: f64,
}

/// `aiService:recordRequest`'s arguments. The entry's validator stays `v.any()` as before: the
/// row is checked against the table when it is inserted.
#[derive(Serialize, Deserialize, Typed)]
pub struct RecordArgs {
    #[typed(validator = v::any())]
    pub entry: LogEntry,
    pub rejected: bool,
}

const DAY_MS: f64 = 86_400_000.0;
/// Longest text kept of a resolved prompt or a reply, and of one variable's value.
const MAX_TEXT: usize = 100_000;
const MAX_VARIABLE: usize = 20_000;
const MAX_MESSAGE: usize = 2_000;

/// The row types of this module's tables, checked against the tables by a test.
pub fn rows() -> Vec<(&'static str, values::Validator)> {
    vec![(LOGS, LogDoc::validator()), (USAGE, UsageDoc::validator())]
}

/// A document of the daily usage counters (per owner, day and operation).
#[derive(Clone, Debug, Serialize, Deserialize, Typed)]
#[typed(table = "ai_usage_daily")]
pub struct UsageDoc {
    #[serde(rename = "_id")]
    pub id: Id<UsageDoc>,
    #[serde(rename = "_creationTime")]
    pub creation_time: f64,
    #[typed(id = "companies")]
    pub company_id: Option<DocumentId>,
    pub owner_key: String,
    pub day: f64,
    pub operation: String,
    pub requests: f64,
    pub successes: f64,
    pub failures: f64,
    pub rejected: f64,
    pub tokens_in: f64,
    pub tokens_out: f64,
    pub cost_usd: f64,
    pub latency_ms_total: f64,
}

impl UsageDoc {
    /// The counters, in the order of `COUNTERS`.
    pub fn amounts(&self) -> [f64; 8] {
        [
            self.requests,
            self.successes,
            self.failures,
            self.rejected,
            self.tokens_in,
            self.tokens_out,
            self.cost_usd,
            self.latency_ms_total,
        ]
    }

    /// The counter called `name` (one of `COUNTERS`).
    fn counter(&self, name: &str) -> f64 {
        COUNTERS
            .iter()
            .position(|c| *c == name)
            .map_or(0.0, |i| self.amounts()[i])
    }
}

/// Usage documents as their row type.
pub fn usage_rows(docs: &[store::Document]) -> FnResult<Vec<UsageDoc>> {
    docs.iter().map(functions::row).collect()
}

pub fn tables() -> Vec<TableDef> {
    vec![
        TableDef::new(LOGS)
            .field("correlation_id", v::string())
            // The prompt name: what the request was for.
            .field("operation", v::string())
            .optional("prompt_id", v::string())
            .optional("prompt_version", v::string())
            .optional("subsystem", v::string())
            .field("variables", v::any())
            .optional("resolved_prompt", v::string())
            .optional("model", v::string())
            .optional("provider", v::string())
            .field("tokens_in", v::number())
            .field("tokens_out", v::number())
            .field("cost_usd", v::number())
            .field("latency_ms", v::number())
            .field("success", v::boolean())
            .optional("error_code", v::string())
            .optional("error_message", v::string())
            .optional("output", v::string())
            .optional("finish", v::string())
            // "provider model: outcome" for every provider attempt, in order.
            .field("attempts", v::array(v::string()))
            .optional(
                "token_adjustment",
                v::object([
                    ("baseline", v::number()),
                    ("new_max", v::number()),
                    ("reason", v::string()),
                ]),
            )
            .optional("user_id", v::id("users"))
            .optional("company_id", v::id("companies"))
            .optional("incident_id", v::string())
            .field("created_at", v::number())
            .index("by_company_time", &["company_id", "created_at"])
            .index(
                "by_company_operation_time",
                &["company_id", "operation", "created_at"],
            )
            .index("by_time", &["created_at"])
            .index("by_operation_time", &["operation", "created_at"])
            .index("by_correlation", &["correlation_id"])
            // Deleting an incident deletes its requests too: they hold its narrative text.
            .index(
                "by_company_incident",
                &["company_id", "incident_id", "created_at"],
            )
            .tenant("company_id"),
        TableDef::new(USAGE)
            .optional("company_id", v::id("companies"))
            // The company's id, or `user:<id>` / `platform` for requests without a company.
            .field("owner_key", v::string())
            // Days since 1970-01-01 (UTC).
            .field("day", v::number())
            .field("operation", v::string())
            .field("requests", v::number())
            .field("successes", v::number())
            .field("failures", v::number())
            // Refused by the rate limit or the cost cap.
            .field("rejected", v::number())
            .field("tokens_in", v::number())
            .field("tokens_out", v::number())
            .field("cost_usd", v::number())
            .field("latency_ms_total", v::number())
            .index("by_company_day", &["company_id", "day", "operation"])
            .index("by_owner_day", &["owner_key", "day", "operation"])
            .index("by_day", &["day", "owner_key"])
            .tenant("company_id"),
    ]
}

pub fn day_of(ms: f64) -> f64 {
    (ms / DAY_MS).floor()
}

/// Whose limits a request counts against.
pub fn owner_key(company: Option<&str>, user: Option<&str>) -> String {
    match (company, user) {
        (Some(company), _) => company.to_string(),
        (None, Some(user)) => format!("user:{user}"),
        (None, None) => "platform".to_string(),
    }
}

fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}… [cut at {max} characters]", &text[..at]),
        None => text.to_string(),
    }
}

/// A request-log row being put together by the service (the action side).
pub struct Entry {
    pub operation: String,
    correlation_id: String,
    subsystem: Option<String>,
    prompt_id: Option<String>,
    prompt_version: Option<String>,
    variables: serde_json::Map<String, Json>,
    pub resolved_prompt: Option<String>,
    model: Option<String>,
    provider: Option<String>,
    tokens_in: u32,
    tokens_out: u32,
    cost_usd: f64,
    latency_ms: u64,
    success: bool,
    error_code: Option<String>,
    error_message: Option<String>,
    output: Option<String>,
    finish: Option<String>,
    attempts: Vec<String>,
    user_id: Option<DocumentId>,
    company_id: Option<DocumentId>,
    incident_id: Option<String>,
    /// Refused by the limits (counted apart in the daily usage).
    pub rejected: bool,
}

impl Entry {
    pub fn new(call: &AiCall, correlation_id: &str) -> Entry {
        Entry {
            operation: call.prompt_name.clone(),
            correlation_id: correlation_id.to_string(),
            subsystem: call.subsystem.clone(),
            prompt_id: None,
            prompt_version: None,
            variables: call.variables.clone(),
            resolved_prompt: None,
            model: None,
            provider: None,
            tokens_in: 0,
            tokens_out: 0,
            cost_usd: 0.0,
            latency_ms: 0,
            success: false,
            error_code: None,
            error_message: None,
            output: None,
            finish: None,
            attempts: Vec::new(),
            user_id: call.user_id,
            company_id: call.company_id,
            incident_id: call.incident_id.clone(),
            rejected: false,
        }
    }

    /// The resolved prompt's facts (from `prompts::resolve`).
    pub fn prompt(&mut self, prompt: &PromptSummary) {
        self.prompt_id = Some(prompt.prompt_id.encode());
        self.prompt_version = Some(prompt.prompt_version.clone());
        self.subsystem = Some(prompt.subsystem.clone());
        self.model = Some(prompt.ai_model.clone());
    }

    pub fn fail(&mut self, code: &str, message: &str) {
        self.success = false;
        self.error_code = Some(code.to_string());
        self.error_message = Some(clip(message, MAX_MESSAGE));
    }

    pub fn succeed(&mut self, reply: &ChatReply) {
        self.success = true;
        self.provider = Some(reply.provider.clone());
        self.model = Some(reply.model.clone());
        self.tokens_in = reply.tokens_in;
        self.tokens_out = reply.tokens_out;
        self.cost_usd = reply.cost_usd;
        self.latency_ms = reply.latency_ms;
        self.output = Some(clip(&reply.text, MAX_TEXT));
        self.finish = Some(match &reply.finish {
            Finish::Stop => "stop".to_string(),
            Finish::Length => "length".to_string(),
            Finish::Other(other) => other.clone(),
        });
        self.attempts = reply.attempts.iter().map(ToString::to_string).collect();
    }

    pub fn provider_failed(&mut self, e: &AiError) {
        self.fail(e.code(), &e.message);
        self.cost_usd = e.cost_usd();
        self.tokens_in = e.attempts.iter().map(|a| a.tokens_in).sum();
        self.tokens_out = e.attempts.iter().map(|a| a.tokens_out).sum();
        self.latency_ms = e.attempts.iter().map(|a| a.latency_ms).sum();
        self.attempts = e.attempts.iter().map(ToString::to_string).collect();
        // The provider that was tried last (the offline one when none is configured).
        self.provider =
            e.attempts.last().map(|a| a.provider.clone()).or_else(|| {
                Some(ai::offline::PROVIDER.to_string()).filter(|_| e.attempts.is_empty())
            });
    }

    pub fn to_args(&self, adjustment: Option<&TokenAdjustment>) -> RecordArgs {
        let variables: serde_json::Map<String, Json> = self
            .variables
            .iter()
            .map(|(k, v)| match v {
                Json::String(s) => (k.clone(), Json::String(clip(s, MAX_VARIABLE))),
                other => (k.clone(), other.clone()),
            })
            .collect();
        let variables =
            values::json::from_clean_json(&Json::Object(variables)).unwrap_or(Value::Null);
        let entry = LogEntry {
            correlation_id: self.correlation_id.clone(),
            operation: self.operation.clone(),
            prompt_id: self.prompt_id.clone(),
            prompt_version: self.prompt_version.clone(),
            subsystem: self.subsystem.clone(),
            variables,
            resolved_prompt: self.resolved_prompt.as_deref().map(|p| clip(p, MAX_TEXT)),
            model: self.model.clone(),
            provider: self.provider.clone(),
            tokens_in: f64::from(self.tokens_in),
            tokens_out: f64::from(self.tokens_out),
            cost_usd: self.cost_usd,
            latency_ms: self.latency_ms as f64,
            success: self.success,
            error_code: self.error_code.clone(),
            error_message: self.error_message.clone(),
            output: self.output.clone(),
            finish: self.finish.clone(),
            attempts: self.attempts.clone(),
            token_adjustment: adjustment.cloned(),
            user_id: self.user_id,
            company_id: self.company_id,
            incident_id: self.incident_id.clone(),
        };
        RecordArgs {
            entry,
            rejected: self.rejected,
        }
    }
}

pub fn register(r: &mut Registry) {
    r.internal_mutation(RECORD, record).cross_tenant();
}

/// Stores the row, then counts it: the prompt's usage statistics (requests that reached a
/// provider), the day's usage, and the token adjustment if the providers made one.
fn record(ctx: &mut MutationCtx<'_>, args: RecordArgs) -> FnResult<Id<LogDoc>> {
    let now = ctx.now_ms();
    let RecordArgs { entry, rejected } = args;
    let company = entry.company_id;
    let grant = ctx.cross_tenant()?;
    let scope = match company {
        Some(company) => Scope::company(company),
        None => Scope::all_companies(&grant),
    };
    let success = entry.success;
    let reached_provider = entry.provider.is_some();
    let (latency, tokens_in, tokens_out, cost) = (
        entry.latency_ms,
        entry.tokens_in,
        entry.tokens_out,
        entry.cost_usd,
    );
    let operation = entry.operation.clone();
    let owner = owner_key(
        company.map(|c| c.encode()).as_deref(),
        entry.user_id.map(|u| u.encode()).as_deref(),
    );
    let prompt_id = entry
        .prompt_id
        .as_deref()
        .and_then(|p| ctx.db.normalize_id(prompts::TABLE, p));
    let adjustment = entry.token_adjustment.clone();
    let row = match values::serde_bridge::to_value(&entry) {
        Ok(Value::Object(mut row)) => {
            row.insert("created_at".into(), Value::from(now));
            row
        }
        _ => {
            return Err(FunctionError::internal(
                "aiService:recordRequest: the entry does not encode as an object",
            ))
        }
    };
    let id = ctx.db.scoped(&scope).insert(LOGS, row)?;

    if let (Some(prompt), true) = (prompt_id, reached_provider) {
        if let Some(doc) = ctx.db.get_in(prompts::TABLE, &prompt.encode())? {
            let count = prompts::num(&doc, "usage_count");
            let average = prompts::num(&doc, "average_response_time");
            let mut patch = Patch::new();
            patch.insert("usage_count".into(), Some(Value::from(count + 1.0)));
            let counter = if success {
                "success_count"
            } else {
                "failure_count"
            };
            patch.insert(
                counter.into(),
                Some(Value::from(prompts::num(&doc, counter) + 1.0)),
            );
            patch.insert(
                "average_response_time".into(),
                Some(Value::from((average * count + latency) / (count + 1.0))),
            );
            patch.insert("last_used_at".into(), Some(Value::from(now)));
            ctx.db.patch(&doc.id, patch)?;
        }
    }

    let mut usage = ctx.db.scoped(&scope);
    add_usage(
        &mut usage,
        &owner,
        company.as_ref(),
        day_of(now),
        &operation,
        &[
            ("requests", 1.0),
            ("successes", f64::from(u8::from(success))),
            ("failures", f64::from(u8::from(!success && !rejected))),
            ("rejected", f64::from(u8::from(rejected))),
            ("tokens_in", tokens_in),
            ("tokens_out", tokens_out),
            ("cost_usd", cost),
            ("latency_ms_total", latency),
        ],
    )?;

    if let (Some(prompt), Some(adjustment)) = (prompt_id, adjustment) {
        prompts::apply_adjustment(
            &mut ctx.db,
            now,
            ctx.request_id.as_str(),
            &prompt,
            &adjustment,
        )?;
    }
    Ok(id.into())
}

pub const COUNTERS: [&str; 8] = [
    "requests",
    "successes",
    "failures",
    "rejected",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "latency_ms_total",
];

fn add_usage(
    db: &mut ScopedWriter<'_>,
    owner: &str,
    company: Option<&DocumentId>,
    day: f64,
    operation: &str,
    amounts: &[(&str, f64)],
) -> FnResult<()> {
    let (o, op) = (owner.to_string(), operation.to_string());
    // A company's rows are reached through its tenant index; the others by owner.
    let existing = match db.scope() {
        Scope::Company(_) => db.query(USAGE, "by_company_day", |q| {
            q.eq("day", day).eq("operation", op)
        })?,
        Scope::AllCompanies => db.query(USAGE, "by_owner_day", |q| {
            q.eq("owner_key", o).eq("day", day).eq("operation", op)
        })?,
    }
    .first()?;
    match existing {
        Some(doc) => {
            let row: UsageDoc = functions::row(&doc)?;
            let mut patch = Patch::new();
            for (name, amount) in amounts {
                let current = row.counter(name);
                patch.insert(name.to_string(), Some(Value::from(current + amount)));
            }
            db.patch(&row.id, patch)?;
        }
        None => {
            let mut row = Object::new();
            if let Some(company) = company {
                row.insert("company_id".into(), Value::from(*company));
            }
            row.insert("owner_key".into(), Value::from(owner));
            row.insert("day".into(), Value::from(day));
            row.insert("operation".into(), Value::from(operation));
            for name in COUNTERS {
                let amount = amounts
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or(0.0, |(_, a)| *a);
                row.insert(name.into(), Value::from(amount));
            }
            db.insert(USAGE, row)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_days_and_clipping() {
        assert_eq!(owner_key(Some("c1"), Some("u1")), "c1");
        assert_eq!(owner_key(None, Some("u1")), "user:u1");
        assert_eq!(owner_key(None, None), "platform");
        assert_eq!(day_of(DAY_MS * 3.5), 3.0);
        assert_eq!(clip("abcdef", 10), "abcdef");
        assert!(clip("abcdef", 3).starts_with("abc…"));
    }
}
