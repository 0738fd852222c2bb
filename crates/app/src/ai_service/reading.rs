//! Reading the AI request log and the usage statistics: company administrators see their
//! company's (`view_audit_logs`), system administrators every company's and those of requests
//! made without a company (`system_configuration`).

use std::collections::BTreeMap;

use functions::{FnResult, FunctionError, Page, PaginationArg, QueryCtx, Registry, Scope};
use serde::{Deserialize, Serialize};
use store::{Order, PaginationOpts};
use values::{Typed, Value};

use super::limits::Limits;
use super::logs::{day_of, usage_rows, LogDoc, LOGS, USAGE};
use crate::identity::{require_permission, Permission, Viewer};

const MAX_STATS_DAYS: f64 = 366.0;

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct ListArgs {
    pagination_opts: Option<PaginationArg>,
    limit: Option<f64>,
    company_id: Option<String>,
    all_companies: Option<bool>,
    operation: Option<String>,
    success: Option<bool>,
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct StatsArgs {
    days: Option<f64>,
    company_id: Option<String>,
    all_companies: Option<bool>,
}

/// The usage counters of a day, an operation or the whole period.
#[derive(Serialize, Typed)]
pub struct Counters {
    requests: f64,
    successes: f64,
    failures: f64,
    rejected: f64,
    tokens_in: f64,
    tokens_out: f64,
    cost_usd: f64,
    /// Over the requests that were not rejected.
    average_latency_ms: f64,
}

impl Counters {
    /// `amounts` in the order of `COUNTERS`.
    fn of(amounts: &[f64; 8]) -> Counters {
        let attempted = amounts[0] - amounts[3];
        let average_latency_ms = if attempted > 0.0 {
            amounts[7] / attempted
        } else {
            0.0
        };
        Counters {
            requests: amounts[0],
            successes: amounts[1],
            failures: amounts[2],
            rejected: amounts[3],
            tokens_in: amounts[4],
            tokens_out: amounts[5],
            cost_usd: amounts[6],
            average_latency_ms,
        }
    }
}

#[derive(Serialize, Typed)]
pub struct DayUsage {
    #[serde(flatten)]
    counters: Counters,
    /// `YYYY-MM-DD` (UTC).
    day: String,
}

#[derive(Serialize, Typed)]
pub struct OperationUsage {
    #[serde(flatten)]
    counters: Counters,
    operation: String,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct LimitsInForce {
    requests_per_minute: f64,
    daily_cost_cap_usd: f64,
}

/// Whose requests the statistics cover.
#[derive(Serialize, Typed)]
#[serde(rename_all = "lowercase")]
pub enum StatsScope {
    Company,
    All,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct UsageStats {
    days: Vec<DayUsage>,
    by_operation: Vec<OperationUsage>,
    totals: Counters,
    today_cost_usd: f64,
    limits: LimitsInForce,
    scope: StatsScope,
}

pub fn register(r: &mut Registry, limits: Limits) {
    r.query("promptManager:listAiRequestLogs", list)
        .cross_tenant();
    r.query("promptManager:getAiUsageStats", move |ctx, args| {
        stats(ctx, args, limits)
    })
    .cross_tenant();
}

/// Which requests a viewer may read: their company's (`view_audit_logs`), or any company's and
/// those without a company (`system_configuration`, i.e. system administrators).
fn reading_scope(
    ctx: &mut QueryCtx<'_>,
    company_id: Option<&str>,
    all_companies: Option<bool>,
) -> FnResult<(Viewer, Scope)> {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, Permission::ViewAuditLogs)?;
    let grant = ctx.cross_tenant()?;
    let company = company_id.map(|c| {
        // A malformed id names no company; scope_for then refuses it like any other one.
        ctx.db.normalize_id("companies", c)
    });
    let all = all_companies.unwrap_or(false);
    let scope = match company {
        _ if all => viewer.all_companies_scope(&grant, Permission::SystemConfiguration)?,
        Some(Some(c)) => viewer.scope_for(&c, Some(&grant), Permission::SystemConfiguration)?,
        Some(None) => {
            return Err(FunctionError::forbidden(
                "You can only act on your own company",
            ));
        }
        None if viewer.company_id.is_none() && viewer.has(Permission::SystemConfiguration) => {
            viewer.all_companies_scope(&grant, Permission::SystemConfiguration)?
        }
        None => viewer.company_scope()?,
    };
    Ok((viewer, scope))
}

/// `promptManager:listAiRequestLogs`: newest first, `{page, isDone, continueCursor}`; filters by
/// operation and outcome. Without `paginationOpts`, the first `limit` (default 50) rows.
fn list(ctx: &mut QueryCtx<'_>, args: ListArgs) -> FnResult<Page<LogDoc>> {
    let (_, scope) = reading_scope(ctx, args.company_id.as_deref(), args.all_companies)?;
    let opts = match &args.pagination_opts {
        Some(opts) => opts.opts()?,
        None => {
            let limit = args.limit.unwrap_or(50.0);
            if !(1.0..=functions::MAX_PAGE_SIZE as f64).contains(&limit) {
                return Err(FunctionError::validation(
                    "limit",
                    format!("limit must be from 1 to {}", functions::MAX_PAGE_SIZE),
                ));
            }
            PaginationOpts {
                num_items: limit as usize,
                cursor: None,
            }
        }
    };
    let operation = args.operation;
    let success = args.success;
    let mut db = ctx.db.scoped(&scope);
    let query = match (&scope, &operation) {
        (Scope::Company(_), Some(op)) => db.query(LOGS, "by_company_operation_time", |q| {
            q.eq("operation", op.as_str())
        })?,
        (Scope::Company(_), None) => db.query(LOGS, "by_company_time", |q| q)?,
        (Scope::AllCompanies, Some(op)) => db.query(LOGS, "by_operation_time", |q| {
            q.eq("operation", op.as_str())
        })?,
        (Scope::AllCompanies, None) => db.query(LOGS, "by_time", |q| q)?,
    };
    let mut query = query.order(Order::Desc);
    if let Some(wanted) = success {
        query =
            query.filter(move |row| row.get("success").and_then(Value::as_bool) == Some(wanted));
    }
    let page = query.paginate(opts)?;
    Page::of(&page, functions::row)
}

/// `YYYY-MM-DD` of a day number (proleptic Gregorian, after Howard Hinnant's `civil_from_days`).
fn date_label(day: f64) -> String {
    let z = day as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `promptManager:getAiUsageStats`: the last `days` (default 7) UTC days of AI use, per day and per
/// operation, with totals and the limits in force.
fn stats(ctx: &mut QueryCtx<'_>, args: StatsArgs, limits: Limits) -> FnResult<UsageStats> {
    let (_, scope) = reading_scope(ctx, args.company_id.as_deref(), args.all_companies)?;
    let days = args.days.unwrap_or(7.0);
    if !((1.0..=MAX_STATS_DAYS).contains(&days) && days.fract() == 0.0) {
        return Err(FunctionError::validation(
            "days",
            format!("days must be a whole number from 1 to {MAX_STATS_DAYS}"),
        ));
    }
    let today = day_of(ctx.now_ms());
    let first = today - days + 1.0;
    let mut db = ctx.db.scoped(&scope);
    let rows = match scope {
        Scope::Company(_) => db
            .query(USAGE, "by_company_day", |q| q.gte("day", first))?
            .collect()?,
        Scope::AllCompanies => db
            .query(USAGE, "by_day", |q| q.gte("day", first))?
            .collect()?,
    };
    let mut by_day: BTreeMap<i64, [f64; 8]> = BTreeMap::new();
    let mut by_operation: BTreeMap<String, [f64; 8]> = BTreeMap::new();
    let mut totals = [0.0; 8];
    let mut today_cost = 0.0;
    for row in usage_rows(&rows)? {
        let amounts = row.amounts();
        let (day, operation) = (row.day, row.operation);
        for (i, amount) in amounts.iter().enumerate() {
            by_day.entry(day as i64).or_insert([0.0; 8])[i] += amount;
            by_operation.entry(operation.clone()).or_insert([0.0; 8])[i] += amount;
            totals[i] += amount;
        }
        if day == today {
            today_cost += amounts[6];
        }
    }
    let days_out: Vec<DayUsage> = (0..days as i64)
        .map(|i| {
            let day = first as i64 + i;
            DayUsage {
                counters: Counters::of(by_day.get(&day).unwrap_or(&[0.0; 8])),
                day: date_label(day as f64),
            }
        })
        .collect();
    let operations: Vec<OperationUsage> = by_operation
        .iter()
        .map(|(op, amounts)| OperationUsage {
            counters: Counters::of(amounts),
            operation: op.clone(),
        })
        .collect();
    Ok(UsageStats {
        days: days_out,
        by_operation: operations,
        totals: Counters::of(&totals),
        today_cost_usd: today_cost,
        limits: LimitsInForce {
            requests_per_minute: f64::from(limits.requests_per_minute),
            daily_cost_cap_usd: limits.daily_cost_cap_usd,
        },
        scope: match scope {
            Scope::Company(_) => StatsScope::Company,
            Scope::AllCompanies => StatsScope::All,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_become_dates() {
        assert_eq!(date_label(0.0), "1970-01-01");
        assert_eq!(date_label(19_782.0), "2024-02-29");
        assert_eq!(date_label(10_957.0), "2000-01-01");
    }
}
