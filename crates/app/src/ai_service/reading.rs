//! Reading the AI request log and the usage statistics: company administrators see their
//! company's (`view_audit_logs`), system administrators every company's and those of requests
//! made without a company (`system_configuration`).

use functions::{pagination_opts_validator, pagination_result, parse_pagination_opts};
use functions::{FnResult, FunctionError, QueryCtx, Registry, Scope};
use store::{Order, PaginationOpts};
use values::validator::v;
use values::{Object, Value};

use super::limits::Limits;
use super::logs::{day_of, COUNTERS, LOGS, USAGE};
use crate::args::{object, opt_text, with_session};
use crate::identity::{require_permission, Permission, Viewer};

const MAX_STATS_DAYS: f64 = 366.0;

pub fn register(r: &mut Registry, limits: Limits) {
    r.query_untyped(
        "promptManager:listAiRequestLogs",
        with_session([
            ("paginationOpts", v::optional(pagination_opts_validator())),
            ("limit", v::optional(v::number())),
            ("companyId", v::optional(v::string())),
            ("allCompanies", v::optional(v::boolean())),
            ("operation", v::optional(v::string())),
            ("success", v::optional(v::boolean())),
        ]),
        list,
    )
    .cross_tenant();
    r.query_untyped(
        "promptManager:getAiUsageStats",
        with_session([
            ("days", v::optional(v::number())),
            ("companyId", v::optional(v::string())),
            ("allCompanies", v::optional(v::boolean())),
        ]),
        move |ctx, args| stats(ctx, args, limits),
    )
    .cross_tenant();
}

/// Which requests a viewer may read: their company's (`view_audit_logs`), or any company's and
/// those without a company (`system_configuration`, i.e. system administrators).
fn reading_scope(ctx: &mut QueryCtx<'_>, args: &Object) -> FnResult<(Viewer, Scope)> {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, Permission::ViewAuditLogs)?;
    let grant = ctx.cross_tenant()?;
    let company = opt_text(args, "companyId").map(|c| {
        // A malformed id names no company; scope_for then refuses it like any other one.
        ctx.db.normalize_id("companies", c)
    });
    let all = args
        .get("allCompanies")
        .and_then(Value::as_bool)
        .unwrap_or(false);
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
fn list(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let (_, scope) = reading_scope(ctx, &args)?;
    let opts = match args.get("paginationOpts") {
        Some(_) => parse_pagination_opts(&args)?,
        None => {
            let limit = args.get("limit").and_then(Value::as_f64).unwrap_or(50.0);
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
    let operation = opt_text(&args, "operation").map(str::to_string);
    let success = args.get("success").and_then(Value::as_bool);
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
    Ok(pagination_result(&page, |doc| doc.to_value()))
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
fn stats(ctx: &mut QueryCtx<'_>, args: Object, limits: Limits) -> FnResult {
    let (_, scope) = reading_scope(ctx, &args)?;
    let days = args.get("days").and_then(Value::as_f64).unwrap_or(7.0);
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
    let mut by_day: std::collections::BTreeMap<i64, [f64; 8]> = std::collections::BTreeMap::new();
    let mut by_operation: std::collections::BTreeMap<String, [f64; 8]> =
        std::collections::BTreeMap::new();
    let mut totals = [0.0; 8];
    let mut today_cost = 0.0;
    for row in &rows {
        let amounts: [f64; 8] = COUNTERS.map(|c| row.get(c).and_then(Value::as_f64).unwrap_or(0.0));
        let day = row.get("day").and_then(Value::as_f64).unwrap_or(0.0);
        let operation = row
            .get("operation")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        for (i, amount) in amounts.iter().enumerate() {
            by_day.entry(day as i64).or_insert([0.0; 8])[i] += amount;
            by_operation.entry(operation.clone()).or_insert([0.0; 8])[i] += amount;
            totals[i] += amount;
        }
        if day == today {
            today_cost += amounts[6];
        }
    }
    let counters = |amounts: &[f64; 8]| -> Object {
        let mut out: Object = COUNTERS
            .iter()
            .zip(amounts)
            .map(|(name, amount)| (name.to_string(), Value::from(*amount)))
            .collect();
        let attempted = amounts[0] - amounts[3];
        let average = if attempted > 0.0 {
            amounts[7] / attempted
        } else {
            0.0
        };
        out.remove("latency_ms_total");
        out.insert("average_latency_ms".into(), Value::from(average));
        out
    };
    let days_out: Vec<Value> = (0..days as i64)
        .map(|i| {
            let day = first as i64 + i;
            let mut out = counters(by_day.get(&day).unwrap_or(&[0.0; 8]));
            out.insert("day".into(), Value::from(date_label(day as f64)));
            Value::Object(out)
        })
        .collect();
    let operations: Vec<Value> = by_operation
        .iter()
        .map(|(op, amounts)| {
            let mut out = counters(amounts);
            out.insert("operation".into(), Value::from(op.as_str()));
            Value::Object(out)
        })
        .collect();
    Ok(object([
        ("days", Some(Value::Array(days_out))),
        ("byOperation", Some(Value::Array(operations))),
        ("totals", Some(Value::Object(counters(&totals)))),
        ("todayCostUsd", Some(Value::from(today_cost))),
        (
            "limits",
            Some(object([
                (
                    "requestsPerMinute",
                    Some(Value::from(f64::from(limits.requests_per_minute))),
                ),
                (
                    "dailyCostCapUsd",
                    Some(Value::from(limits.daily_cost_cap_usd)),
                ),
            ])),
        ),
        (
            "scope",
            Some(Value::from(match scope {
                Scope::Company(_) => "company",
                Scope::AllCompanies => "all",
            })),
        ),
    ]))
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
