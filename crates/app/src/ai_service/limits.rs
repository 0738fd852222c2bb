//! Admission: a company's AI requests per minute (the shared fixed-window counters of
//! `crate::rate_limit`) and its AI spend per UTC day (the `ai_usage_daily` rows the request log
//! keeps). Callers without a company (platform administrators) are limited on their own.
//!
//! The cost cap is checked before a call with what earlier calls cost; calls already running when
//! it is reached still finish, so a day's spend can pass the cap by what those calls cost.

use functions::{FnResult, FunctionRef, MutationCtx, Registry, Scope};
use serde::{Deserialize, Serialize};
use values::{DocumentId, Typed};

use super::logs::{day_of, owner_key, usage_rows, USAGE};
use crate::rate_limit::{self, Limit};

pub const ADMIT: FunctionRef<AdmitArgs, Admission> =
    FunctionRef::internal_mutation("aiService:admitRequest");

/// Whose limits a request counts against.
#[derive(Serialize, Deserialize, Typed)]
pub struct AdmitArgs {
    #[typed(id = "companies")]
    pub company_id: Option<DocumentId>,
    #[typed(id = "users")]
    pub user_id: Option<DocumentId>,
}

/// `{admitted: true}`, or `{admitted: false, code, message}`.
#[derive(Serialize, Deserialize, Typed)]
pub struct Admission {
    pub admitted: bool,
    pub code: Option<String>,
    pub message: Option<String>,
}

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub requests_per_minute: u32,
    /// 0 turns the cap off.
    pub daily_cost_cap_usd: f64,
}

pub fn register(r: &mut Registry, limits: Limits) {
    r.internal_mutation(ADMIT, move |ctx, args| admit(ctx, args, limits))
        .cross_tenant();
}

fn refused(code: &str, message: String) -> Admission {
    Admission {
        admitted: false,
        code: Some(code.to_string()),
        message: Some(message),
    }
}

/// `{admitted: true}`, or `{admitted: false, code, message}` with `RATE_LIMITED` or
/// `COST_CAP_REACHED`. An admitted request counts against the rate limit at once.
fn admit(ctx: &mut MutationCtx<'_>, args: AdmitArgs, limits: Limits) -> FnResult<Admission> {
    let now = ctx.now_ms();
    let company = args.company_id.map(|c| c.encode());
    let user = args.user_id.map(|u| u.encode());
    let owner = owner_key(company.as_deref(), user.as_deref());
    let who = if company.is_some() {
        "Your company has"
    } else {
        "You have"
    };
    let key = format!("ai:{owner}");
    let limit = Limit {
        max: f64::from(limits.requests_per_minute),
        window_ms: 60_000.0,
    };
    if rate_limit::check(&mut ctx.db, &key, limit, now, "").is_err() {
        return Ok(refused(
            "RATE_LIMITED",
            format!(
                "{who} reached the limit of {} AI requests per minute; try again in a minute",
                limits.requests_per_minute
            ),
        ));
    }
    if limits.daily_cost_cap_usd > 0.0 {
        let grant = ctx.cross_tenant()?;
        let spent = ctx
            .db
            .scoped(&Scope::all_companies(&grant))
            .query(USAGE, "by_owner_day", |q| {
                q.eq("owner_key", owner.as_str()).eq("day", day_of(now))
            })?
            .collect()?;
        let spent: f64 = usage_rows(&spent)?.iter().map(|row| row.cost_usd).sum();
        if spent >= limits.daily_cost_cap_usd {
            return Ok(refused(
                "COST_CAP_REACHED",
                format!(
                    "{who} reached the daily AI cost limit of ${:.2} (spent ${spent:.2} today); AI features resume after midnight UTC",
                    limits.daily_cost_cap_usd
                ),
            ));
        }
    }
    rate_limit::record(&mut ctx.db, &key, limit, now)?;
    Ok(Admission {
        admitted: true,
        code: None,
        message: None,
    })
}
