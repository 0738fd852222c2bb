//! `promptManager:testPrompt`: lets a system administrator run a prompt with chosen variables
//! through the real AI service (limits, providers, request log) and see the outcome, and
//! `aiService:caller`, the internal query by which actions learn who is calling.

use functions::{ActionCtx, FnResult, FunctionError, QueryCtx, Registry};
use serde_json::Value as Json;
use values::validator::v;
use values::{DocumentId, Object, Value};

use super::{AiCall, AiOutcome, AiService};
use crate::args::{object, opt_text, text, with_session};
use crate::identity::{require_permission, Permission};
use crate::prompts;

pub const CALLER: &str = "aiService:caller";

pub fn register(r: &mut Registry, service: &AiService) {
    r.internal_query_untyped(
        CALLER,
        with_session([("permission", v::string().into())]),
        caller_query,
    );
    let service = service.clone();
    r.action_untyped(
        "promptManager:testPrompt",
        with_session([
            ("prompt_name", v::string().into()),
            ("variables", v::record(v::string(), v::any()).into()),
            ("subsystem", v::optional(v::string())),
            ("incident_id", v::optional(v::string())),
        ]),
        move |ctx, args| {
            let service = service.clone();
            async move { test_prompt(ctx, args, service).await }
        },
    );
}

/// `{userId, companyId?}` of the signed-in caller, who must hold `permission`.
fn caller_query(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let permission = Permission::parse(text(&args, "permission"))
        .ok_or_else(|| FunctionError::internal("aiService:caller: unknown permission"))?;
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, permission)?;
    Ok(object([
        ("userId", Some(Value::from(viewer.user_id))),
        ("companyId", viewer.company_id.map(Value::from)),
    ]))
}

/// Who is calling an action (its `sessionToken` argument or bearer token), if they hold
/// `permission`: `(user, company)` for an `AiCall`.
pub async fn caller(
    ctx: &ActionCtx,
    args: &Object,
    permission: Permission,
) -> FnResult<(DocumentId, Option<DocumentId>)> {
    let mut query = Object::new();
    if let Some(token) = opt_text(args, "sessionToken") {
        query.insert("sessionToken".into(), Value::from(token));
    }
    query.insert("permission".into(), Value::from(permission.as_str()));
    let who = ctx.run_query_untyped(CALLER, query).await?;
    let id = |field: &str| {
        who.get(field)
            .and_then(Value::as_str)
            .and_then(|s| DocumentId::decode(s).ok())
    };
    let user =
        id("userId").ok_or_else(|| FunctionError::internal("aiService:caller gave no user"))?;
    Ok((user, id("companyId")))
}

/// The outcome as clients see it.
pub fn outcome_value(outcome: &AiOutcome) -> Value {
    let json = outcome
        .json
        .as_ref()
        .and_then(|j| values::json::from_clean_json(j).ok());
    let strings =
        |items: &[String]| Value::Array(items.iter().map(|s| Value::from(s.as_str())).collect());
    object([
        ("success", Some(Value::from(true))),
        ("text", Some(Value::from(outcome.text.as_str()))),
        ("json", json),
        ("provider", Some(Value::from(outcome.provider.as_str()))),
        ("model", Some(Value::from(outcome.model.as_str()))),
        ("offline", Some(Value::from(outcome.offline))),
        ("tokens_in", Some(Value::from(f64::from(outcome.tokens_in)))),
        (
            "tokens_out",
            Some(Value::from(f64::from(outcome.tokens_out))),
        ),
        ("cost_usd", Some(Value::from(outcome.cost_usd))),
        ("latency_ms", Some(Value::from(outcome.latency_ms as f64))),
        (
            "correlation_id",
            Some(Value::from(outcome.correlation_id.as_str())),
        ),
        ("prompt_id", Some(Value::from(outcome.prompt_id.as_str()))),
        (
            "prompt_name",
            Some(Value::from(outcome.prompt_name.as_str())),
        ),
        (
            "prompt_version",
            Some(Value::from(outcome.prompt_version.as_str())),
        ),
        ("unused_variables", Some(strings(&outcome.unused_variables))),
        (
            "token_adjustment",
            outcome.token_adjustment.as_ref().map(|a| {
                object([
                    ("baseline", Some(Value::from(a.baseline))),
                    ("new_max", Some(Value::from(a.new_max))),
                    ("reason", Some(Value::from(a.reason.as_str()))),
                ])
            }),
        ),
    ])
}

async fn test_prompt(ctx: ActionCtx, args: Object, service: AiService) -> FnResult {
    let (user, company) = caller(&ctx, &args, Permission::SystemConfiguration).await?;
    let name = prompts::check_name("prompt_name", text(&args, "prompt_name"))?;
    let variables = match args.get("variables").map(values::json::to_clean_json) {
        Some(Json::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let mut call = AiCall::new(name, variables).by(Some(user), company);
    if let Some(subsystem) = opt_text(&args, "subsystem") {
        call.subsystem = Some(prompts::check_name("subsystem", subsystem)?);
    }
    if let Some(incident) = opt_text(&args, "incident_id") {
        call = call.about_incident(incident);
    }
    let outcome = service.generate(&ctx, call).await?;
    Ok(outcome_value(&outcome))
}
