//! `incidents_listing:*`: company and personal incident lists with filters, sorts and two kinds
//! of paging (the contract's `{limit, offset}` and Convex cursors), status counts, and the
//! "continue where you left off" list.
//!
//! Every list runs through an index: `plan::plan` picks the index whose trailing columns give the
//! requested order and whose leading columns bind as many equality filters as possible, scans it
//! in order and stops once the page is full. Filters the index does not bind are checked on each
//! row the scan yields; text search additionally stops after `TEXT_SCAN_LIMIT` rows per call
//! (the page may then be short; the cursor continues where the scan stopped). Totals come from
//! the status counts when the filters allow (status and reporter only), otherwise from a scan
//! bounded by `COUNT_SCAN_LIMIT` rows (`totalCountExact: false` when it stopped early).

use std::cmp::Ordering;
use std::collections::HashMap;

use functions::{
    parse_pagination_opts, Db, FnResult, FunctionError, QueryCtx, Scope, Scoped, MAX_PAGE_SIZE,
};
use store::{Document, Order};
use values::{DocumentId, Object, Value};

use super::counts::{self, Whose};
use super::plan::{plan, Filters, Plan, SortField};
use super::record;
use super::status::OverallStatus;
use crate::args::{flag, object, opt_text};
use crate::identity::{require_permission, Permission, Viewer};

/// Rows a text search examines per call at most.
pub const TEXT_SCAN_LIMIT: usize = 5_000;
/// Rows a filtered total examines at most.
pub const COUNT_SCAN_LIMIT: usize = 10_000;
/// Deepest `offset + limit` of offset paging; deeper pages use cursors.
pub const MAX_OFFSET: usize = 10_000;
const DEFAULT_LIMIT: usize = 50;

/// Whose incidents a list covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Company,
    Own(DocumentId),
}

fn bad(field: &str, message: impl Into<String>) -> FunctionError {
    FunctionError::validation(field, message)
}

/// Reads `filters` (only the keys `allowed` lists) into `Filters`.
fn read_filters(args: &Object, allowed: &[&str]) -> FnResult<Filters> {
    let mut filters = Filters::default();
    let Some(given) = args.get("filters").and_then(Value::as_object) else {
        return Ok(filters);
    };
    let text = |key: &str| {
        opt_text(given, key)
            .map(str::trim)
            .filter(|t| !t.is_empty() && *t != "all" && allowed.contains(&key))
    };
    if let Some(status) = text("status") {
        let status = OverallStatus::parse(status).ok_or_else(|| {
            bad(
                "filters.status",
                format!(
                    "Unknown status '{status}'; expected all, {}",
                    OverallStatus::names()
                ),
            )
        })?;
        filters.eq.push(("overall_status", status.as_str().into()));
    }
    for (key, column) in [
        ("userId", "created_by"),
        ("participantId", "participant_id"),
        ("siteId", "site_id"),
    ] {
        if let Some(id) = text(key) {
            filters.eq.push((column, id.to_string()));
        }
    }
    if let Some(range) = given.get("dateRange").and_then(Value::as_object) {
        let bound = |k: &str| range.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
        let (start, end) = (bound("start"), bound("end"));
        // NaN bounds (missing numbers) compare as unordered and are refused too.
        if start.partial_cmp(&end).is_none_or(Ordering::is_gt) {
            return Err(bad(
                "filters.dateRange",
                "dateRange.start must be a time at or before dateRange.end",
            ));
        }
        filters.created = Some((start, end));
    }
    if let Some(needle) = opt_text(given, "searchText").map(|t| t.trim().to_lowercase()) {
        filters.text = Some(needle).filter(|t| !t.is_empty());
    }
    Ok(filters)
}

fn read_sort(args: &Object) -> (SortField, Order) {
    let sorting = args.get("sorting").and_then(Value::as_object);
    let field = sorting
        .and_then(|s| opt_text(s, "field"))
        .and_then(SortField::parse)
        .unwrap_or(SortField::Date);
    let order = match sorting.and_then(|s| opt_text(s, "direction")) {
        Some("asc") => Order::Asc,
        Some("desc") => Order::Desc,
        _ => field.default_order(),
    };
    (field, order)
}

/// `pagination {limit, offset}`: defaults 50 and 0.
fn read_offset_paging(args: &Object) -> FnResult<(usize, usize)> {
    let paging = args.get("pagination").and_then(Value::as_object);
    let number = |key: &str, default: usize, max: usize| -> FnResult<usize> {
        match paging.and_then(|p| p.get(key)).and_then(Value::as_f64) {
            None => Ok(default),
            Some(n) if n.fract() == 0.0 && n >= 0.0 && n <= max as f64 => Ok(n as usize),
            Some(_) => Err(bad(
                &format!("pagination.{key}"),
                format!("pagination.{key} must be a whole number from 0 to {max}"),
            )),
        }
    };
    let limit = number("limit", DEFAULT_LIMIT, MAX_PAGE_SIZE)?;
    let offset = number("offset", 0, MAX_OFFSET)?;
    if offset + limit > MAX_OFFSET {
        return Err(bad(
            "pagination.offset",
            format!(
                "offset + limit may be at most {MAX_OFFSET}; page further with paginationOpts cursors"
            ),
        ));
    }
    Ok((limit, offset))
}

/// The site names of the company, for `site_name` (a company has a handful of sites).
fn site_names(db: &mut Scoped<'_>) -> FnResult<HashMap<String, Value>> {
    let sites = db.query("sites", "by_company_name", |q| q)?.collect()?;
    Ok(sites
        .into_iter()
        .map(|s| (s.id.encode(), s.get("name").cloned().unwrap_or(Value::Null)))
        .collect())
}

fn with_site(doc: &Document, sites: &HashMap<String, Value>) -> Value {
    let mut value = record::public(doc);
    if let Value::Object(fields) = &mut value {
        let site = doc
            .get("site_id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = sites.get(site).cloned().unwrap_or(Value::Null);
        fields.insert("site_name".into(), name);
    }
    value
}

/// The total of a list: from the counts when only status and reporter filter it, else counted.
fn total(db: &mut Db<'_>, scope: &Scope, owner: Owner, plan: &Plan) -> FnResult<(f64, bool)> {
    let filters = &plan.filters;
    let countable = filters.created.is_none()
        && filters.text.is_none()
        && filters
            .eq
            .iter()
            .all(|(c, _)| matches!(*c, "overall_status" | "created_by"));
    if !countable {
        // Order does not matter for a count; the date indexes bind the most filters (the date
        // range included), so the scan covers as few rows as possible.
        let counting = self::plan(filters.clone(), SortField::Date, Order::Asc);
        let scan = counting.scan(
            &mut db.scoped(scope),
            None,
            usize::MAX,
            COUNT_SCAN_LIMIT,
            false,
        )?;
        return Ok((scan.matched as f64, !scan.limited));
    }
    let whose = match (owner, filters.value("created_by")) {
        (Owner::Own(me), _) => Whose::Reporter(me),
        (Owner::Company, None) => Whose::Company,
        (Owner::Company, Some(user)) => match DocumentId::decode(user) {
            Ok(user) => Whose::Reporter(user),
            // Not an id: nobody's incidents.
            Err(_) => return Ok((0.0, true)),
        },
    };
    let counts = counts::read(db, scope, whose)?;
    let status = filters
        .value("overall_status")
        .and_then(OverallStatus::parse);
    let mut n = status.map_or(counts.total(), |s| counts.get(s));
    if filters.exclude_completed && status.is_none_or(|s| s == OverallStatus::Completed) {
        n -= counts.get(OverallStatus::Completed);
    }
    Ok((n, true))
}

/// Cursors name the index they walk, so one from another filter or sort is refused rather than
/// misread.
fn decode_cursor(cursor: Option<&str>, plan: &Plan) -> FnResult<Option<String>> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    match cursor.split_once(':') {
        Some((index, rest)) if index == plan.index.name => Ok(Some(rest.to_string())),
        _ => Err(bad(
            "paginationOpts.cursor",
            "Invalid pagination cursor: it belongs to another filter or sort; start again with cursor null",
        )),
    }
}

fn encode_cursor(plan: &Plan, store_cursor: &str) -> String {
    format!("{}:{store_cursor}", plan.index.name)
}

/// Runs a list request and builds the contract's result `{incidents, totalCount, hasMore,
/// correlationId}`, or with `paginationOpts` Convex's `{page, isDone, continueCursor}` with the
/// same totals.
fn respond(
    ctx: &mut QueryCtx<'_>,
    args: &Object,
    scope: &Scope,
    owner: Owner,
    filters: Filters,
) -> FnResult {
    let (sort, order) = read_sort(args);
    let budget = if filters.text.is_some() {
        TEXT_SCAN_LIMIT
    } else {
        usize::MAX
    };
    let plan = plan(filters, sort, order);
    let correlation = Value::from(ctx.request_id.as_str());
    let mut db = ctx.db.scoped(scope);
    let sites = site_names(&mut db)?;
    let mut out = Object::new();
    // Cursor pages carry the incidents as `page` (what Convex's paginated clients read), offset
    // pages as `incidents` (the contract's name); never both, so no page is encoded twice.
    let (key, shown, has_more, limited) = if args.contains_key("paginationOpts") {
        let opts = parse_pagination_opts(args)?;
        let start = decode_cursor(opts.cursor.as_deref(), &plan)?;
        let scan = plan.scan(&mut db, start.clone(), opts.num_items, budget, true)?;
        let cursor = scan.cursor.clone().or(start).unwrap_or_default();
        out.insert("isDone".into(), Value::from(scan.exhausted));
        out.insert(
            "continueCursor".into(),
            Value::from(encode_cursor(&plan, &cursor)),
        );
        ("page", scan.docs, !scan.exhausted, scan.limited)
    } else {
        let (limit, offset) = read_offset_paging(args)?;
        let scan = plan.scan(&mut db, None, offset + limit + 1, budget, true)?;
        let more = scan.docs.len() > offset + limit || (scan.limited && !scan.exhausted);
        let shown = scan.docs.into_iter().skip(offset).take(limit).collect();
        ("incidents", shown, more, scan.limited)
    };
    let (count, exact) = total(&mut ctx.db, scope, owner, &plan)?;
    let shown: Vec<Value> = shown.iter().map(|d| with_site(d, &sites)).collect();
    out.insert(key.into(), Value::Array(shown));
    out.insert("totalCount".into(), Value::from(count));
    out.insert("totalCountExact".into(), Value::from(exact));
    out.insert("hasMore".into(), Value::from(has_more));
    out.insert("scanLimited".into(), Value::from(limited));
    out.insert("correlationId".into(), correlation);
    Ok(Value::Object(out))
}

/// The caller's company, or `None` for callers without one (system administrators): their lists
/// and counts are empty, as an index lookup for no company finds nothing, so the web app's
/// incident pages render for them instead of crashing.
fn own_company(viewer: &Viewer) -> Option<Scope> {
    viewer.company_id.map(Scope::company)
}

/// An empty list in the shape `respond` gives (cursor pages when `paginationOpts` is present).
fn empty_list(ctx: &QueryCtx<'_>, args: &Object) -> FnResult {
    let mut out = Object::new();
    if args.contains_key("paginationOpts") {
        parse_pagination_opts(args)?;
        out.insert("page".into(), Value::Array(Vec::new()));
        out.insert("isDone".into(), Value::from(true));
        out.insert("continueCursor".into(), Value::from(""));
    } else {
        read_offset_paging(args)?;
        out.insert("incidents".into(), Value::Array(Vec::new()));
    }
    out.insert("totalCount".into(), Value::from(0.0));
    out.insert("totalCountExact".into(), Value::from(true));
    out.insert("hasMore".into(), Value::from(false));
    out.insert("scanLimited".into(), Value::from(false));
    out.insert("correlationId".into(), Value::from(ctx.request_id.as_str()));
    Ok(Value::Object(out))
}

/// `incidents_listing:getAllCompanyIncidents`: the company's incidents, for holders of
/// `view_all_company_incidents`.
pub fn all_company_incidents(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let viewer = require_permission(
        &mut ctx.db,
        ctx.auth,
        now,
        Permission::ViewAllCompanyIncidents,
    )?;
    let filters = read_filters(
        &args,
        &["status", "userId", "participantId", "siteId", "searchText"],
    )?;
    let Some(scope) = own_company(&viewer) else {
        return empty_list(ctx, &args);
    };
    respond(ctx, &args, &scope, Owner::Company, filters)
}

/// `incidents_listing:getMyIncidents`: the caller's own incidents; completed ones only with
/// `includeCompleted`.
pub fn my_incidents(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, Permission::CreateIncident)?;
    let mut filters = read_filters(&args, &["status", "siteId", "searchText"])?;
    let Some(scope) = own_company(&viewer) else {
        return empty_list(ctx, &args);
    };
    filters.eq.push(("created_by", viewer.user_id.encode()));
    filters.exclude_completed = !flag(&args, "includeCompleted");
    respond(ctx, &args, &scope, Owner::Own(viewer.user_id), filters)
}

/// `incidents_listing:getIncidentCounts`: incidents per overall status, the company's for holders
/// of `view_all_company_incidents`, otherwise the caller's own. One row read.
pub fn incident_counts(ctx: &mut QueryCtx<'_>, _args: Object) -> FnResult {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, Permission::ViewMyIncidents)?;
    let company_wide = viewer.has(Permission::ViewAllCompanyIncidents);
    let whose = if company_wide {
        Whose::Company
    } else {
        Whose::Reporter(viewer.user_id)
    };
    let counts = match own_company(&viewer) {
        Some(scope) => counts::read(&mut ctx.db, &scope, whose)?,
        // No company: zeros, reported as the company's (as the reference does).
        None => counts::Counts::default(),
    };
    let mut out: Object = OverallStatus::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), Value::from(counts.get(*s))))
        .collect();
    out.insert("total".into(), Value::from(counts.total()));
    let label = if company_wide || viewer.company_id.is_none() {
        "company"
    } else {
        "personal"
    };
    out.insert("scope".into(), Value::from(label));
    Ok(Value::Object(out))
}

/// How many unfinished captures the "continue" list offers.
pub const INCOMPLETE_SHOWN: usize = 5;

/// `incidents_listing:getMyIncompleteIncidents`: the caller's newest unfinished captures (overall
/// `capture_pending`; submitted ones are finished), at most five, with their resume step and
/// preview.
pub fn my_incomplete_incidents(ctx: &mut QueryCtx<'_>, _args: Object) -> FnResult {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, Permission::CreateIncident)?;
    let pending = OverallStatus::CapturePending;
    let Some(scope) = own_company(&viewer) else {
        return Ok(object([
            ("incidents", Some(Value::Array(Vec::new()))),
            ("count", Some(Value::from(0.0))),
            ("totalCount", Some(Value::from(0.0))),
            ("correlationId", Some(Value::from(ctx.request_id.as_str()))),
        ]));
    };
    let filters = Filters {
        eq: vec![
            ("created_by", viewer.user_id.encode()),
            ("overall_status", pending.as_str().into()),
        ],
        ..Filters::default()
    };
    let plan = plan(filters, SortField::Date, Order::Desc);
    let mut db = ctx.db.scoped(&scope);
    let sites = site_names(&mut db)?;
    let scan = plan.scan(&mut db, None, INCOMPLETE_SHOWN, usize::MAX, true)?;
    let counts = counts::read(&mut ctx.db, &scope, Whose::Reporter(viewer.user_id))?;
    let incidents: Vec<Value> = scan.docs.iter().map(|d| with_site(d, &sites)).collect();
    Ok(object([
        ("count", Some(Value::from(incidents.len() as f64))),
        ("incidents", Some(Value::Array(incidents))),
        ("totalCount", Some(Value::from(counts.get(pending)))),
        ("correlationId", Some(Value::from(ctx.request_id.as_str()))),
    ]))
}
