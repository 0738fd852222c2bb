//! `promptManager:testPrompt`: lets a system administrator run a prompt with chosen variables
//! through the real AI service (limits, providers, request log) and see the outcome, and
//! `aiService:caller`, the internal query by which actions learn who is calling.

use functions::{ActionCtx, FnResult, FunctionError, FunctionRef, QueryCtx, Registry};
use serde::{Deserialize, Serialize};
use values::{DocumentId, Typed, Value};

use super::{AiCall, AiOutcome, AiService};
use crate::identity::{require_permission, Permission};
use crate::prompts;
use crate::prompts::resolve::Variables;

/// Who is calling, if they hold `permission`. The caller's identity reaches the query through
/// `ctx.auth` (the runtime carries an action's session token into the functions it runs).
pub const CALLER: FunctionRef<CallerArgs, CallerIds> =
    FunctionRef::internal_query("aiService:caller");

#[derive(Serialize, Deserialize, Typed)]
#[typed(session)]
pub struct CallerArgs {
    /// A `Permission` by name.
    pub permission: String,
}

#[derive(Serialize, Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct CallerIds {
    #[typed(id = "users")]
    pub user_id: DocumentId,
    #[typed(id = "companies")]
    pub company_id: Option<DocumentId>,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct TestPromptArgs {
    prompt_name: String,
    variables: Variables,
    subsystem: Option<String>,
    incident_id: Option<String>,
}

/// A successful call as clients see it.
#[derive(Serialize, Typed)]
pub struct TestOutcome {
    pub success: bool,
    /// The parsed reply, for prompts whose output format is JSON.
    pub json: Option<Value>,
    #[serde(flatten)]
    pub outcome: AiOutcome,
}

impl From<AiOutcome> for TestOutcome {
    fn from(outcome: AiOutcome) -> TestOutcome {
        TestOutcome {
            success: true,
            json: outcome
                .json
                .as_ref()
                .and_then(|j| values::json::from_clean_json(j).ok()),
            outcome,
        }
    }
}

pub fn register(r: &mut Registry, service: &AiService) {
    r.internal_query(CALLER, caller_query);
    let service = service.clone();
    r.action("promptManager:testPrompt", move |ctx, args| {
        let service = service.clone();
        async move { test_prompt(ctx, args, service).await }
    });
}

/// `{userId, companyId?}` of the signed-in caller, who must hold `permission`.
fn caller_query(ctx: &mut QueryCtx<'_>, args: CallerArgs) -> FnResult<CallerIds> {
    let permission = Permission::parse(&args.permission)
        .ok_or_else(|| FunctionError::internal("aiService:caller: unknown permission"))?;
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, permission)?;
    Ok(CallerIds {
        user_id: viewer.user_id,
        company_id: viewer.company_id,
    })
}

async fn test_prompt(
    ctx: ActionCtx,
    args: TestPromptArgs,
    service: AiService,
) -> FnResult<TestOutcome> {
    let who = CallerArgs {
        permission: Permission::SystemConfiguration.as_str().to_string(),
    };
    let caller = ctx.run_query(CALLER, &who).await?;
    let name = prompts::check_name("prompt_name", &args.prompt_name)?;
    let variables = args
        .variables
        .iter()
        .map(|(name, value)| (name.clone(), values::json::to_clean_json(value)))
        .collect();
    let mut call = AiCall::new(name, variables).by(Some(caller.user_id), caller.company_id);
    if let Some(subsystem) = &args.subsystem {
        call.subsystem = Some(prompts::check_name("subsystem", subsystem)?);
    }
    if let Some(incident) = args.incident_id {
        call = call.about_incident(incident);
    }
    let outcome = service.generate(&ctx, call).await?;
    Ok(TestOutcome::from(outcome))
}
