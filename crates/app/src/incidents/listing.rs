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
    Db, FnResult, FunctionError, PaginationArg, QueryCtx, Scope, Scoped, MAX_PAGE_SIZE,
};
use serde::{Deserialize, Serialize};
use store::{Document, Order};
use values::{DocumentId, Nullable, Typed, Value};

use super::counts::{self, Whose};
use super::plan::{plan, Filters, Plan, SortField};
use super::record::{self, PublicIncident};
use super::status::OverallStatus;
use crate::args::SessionArgs;
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

#[derive(Deserialize, Typed)]
pub struct DateRange {
    start: f64,
    end: f64,
}

/// The filters of the company list.
#[derive(Default, Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct CompanyFilters {
    status: Option<String>,
    date_range: Option<DateRange>,
    participant_id: Option<String>,
    user_id: Option<String>,
    site_id: Option<String>,
    search_text: Option<String>,
}

/// The filters of the caller's own list: no reporter or participant.
#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct MyFilters {
    status: Option<String>,
    date_range: Option<DateRange>,
    site_id: Option<String>,
    search_text: Option<String>,
}

impl From<MyFilters> for CompanyFilters {
    fn from(my: MyFilters) -> CompanyFilters {
        CompanyFilters {
            status: my.status,
            date_range: my.date_range,
            site_id: my.site_id,
            search_text: my.search_text,
            ..CompanyFilters::default()
        }
    }
}

/// The contract's offset paging.
#[derive(Deserialize, Typed)]
pub struct OffsetPaging {
    limit: Option<f64>,
    offset: Option<f64>,
}

#[derive(Clone, Copy, Deserialize, Typed)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Asc,
    Desc,
}

#[derive(Deserialize, Typed)]
pub struct Sorting {
    #[typed(validator = super::one_of(SortField::NAMES))]
    field: String,
    direction: Option<Direction>,
}

/// Sorting and paging, common to both lists: offset pages (`pagination`) or Convex cursors
/// (`paginationOpts`).
#[derive(Deserialize, Typed)]
pub struct Paging {
    pagination: Option<OffsetPaging>,
    sorting: Option<Sorting>,
    #[serde(rename = "paginationOpts")]
    pagination_opts: Option<PaginationArg>,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct CompanyListArgs {
    filters: Option<CompanyFilters>,
    #[serde(flatten)]
    paging: Paging,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
#[serde(rename_all = "camelCase")]
pub struct MyListArgs {
    include_completed: Option<bool>,
    filters: Option<MyFilters>,
    #[serde(flatten)]
    paging: Paging,
}

/// Reads the filters given into `Filters`.
fn read_filters(given: Option<CompanyFilters>) -> FnResult<Filters> {
    let mut filters = Filters::default();
    let Some(given) = given else {
        return Ok(filters);
    };
    let text = |value: &Option<String>| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty() && *t != "all")
            .map(str::to_string)
    };
    if let Some(status) = text(&given.status) {
        let status = OverallStatus::parse(&status).ok_or_else(|| {
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
    for (value, column) in [
        (&given.user_id, "created_by"),
        (&given.participant_id, "participant_id"),
        (&given.site_id, "site_id"),
    ] {
        if let Some(id) = text(value) {
            filters.eq.push((column, id));
        }
    }
    if let Some(range) = &given.date_range {
        let (start, end) = (range.start, range.end);
        // NaN bounds (missing numbers) compare as unordered and are refused too.
        if start.partial_cmp(&end).is_none_or(Ordering::is_gt) {
            return Err(bad(
                "filters.dateRange",
                "dateRange.start must be a time at or before dateRange.end",
            ));
        }
        filters.created = Some((start, end));
    }
    if let Some(needle) = given.search_text.map(|t| t.trim().to_lowercase()) {
        filters.text = Some(needle).filter(|t| !t.is_empty());
    }
    Ok(filters)
}

fn read_sort(sorting: Option<&Sorting>) -> (SortField, Order) {
    let field = sorting
        .and_then(|s| SortField::parse(&s.field))
        .unwrap_or(SortField::Date);
    let order = match sorting.and_then(|s| s.direction) {
        Some(Direction::Asc) => Order::Asc,
        Some(Direction::Desc) => Order::Desc,
        None => field.default_order(),
    };
    (field, order)
}

/// `pagination {limit, offset}`: defaults 50 and 0.
fn read_offset_paging(paging: Option<&OffsetPaging>) -> FnResult<(usize, usize)> {
    let number = |key: &str, default: usize, max: usize| -> FnResult<usize> {
        let given = paging.and_then(|p| match key {
            "limit" => p.limit,
            _ => p.offset,
        });
        match given {
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
fn site_names(db: &mut Scoped<'_>) -> FnResult<HashMap<DocumentId, Option<String>>> {
    let sites = db.query("sites", "by_company_name", |q| q)?.collect()?;
    Ok(sites
        .into_iter()
        .map(|s| {
            let name = s.get("name").and_then(Value::as_str).map(str::to_string);
            (s.id, name)
        })
        .collect())
}

/// An incident in a list: with the name of its site.
#[derive(Serialize, Typed)]
pub struct ListedIncident {
    #[serde(flatten)]
    incident: PublicIncident,
    site_name: Nullable<String>,
}

fn with_site(
    doc: &Document,
    sites: &HashMap<DocumentId, Option<String>>,
) -> FnResult<ListedIncident> {
    let incident = record::public(doc)?;
    let name = sites.get(&incident.0.row.site_id).cloned().flatten();
    Ok(ListedIncident {
        incident,
        site_name: name.into(),
    })
}

/// A list: offset pages carry `incidents`, cursor pages `page`, `isDone` and `continueCursor`.
#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct IncidentList {
    incidents: Option<Vec<ListedIncident>>,
    page: Option<Vec<ListedIncident>>,
    is_done: Option<bool>,
    continue_cursor: Option<String>,
    total_count: f64,
    total_count_exact: bool,
    has_more: bool,
    scan_limited: bool,
    correlation_id: String,
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
    paging: &Paging,
    scope: &Scope,
    owner: Owner,
    filters: Filters,
) -> FnResult<IncidentList> {
    let (sort, order) = read_sort(paging.sorting.as_ref());
    let budget = if filters.text.is_some() {
        TEXT_SCAN_LIMIT
    } else {
        usize::MAX
    };
    let plan = plan(filters, sort, order);
    let correlation_id = ctx.request_id.as_str().to_string();
    let mut db = ctx.db.scoped(scope);
    let sites = site_names(&mut db)?;
    // Cursor pages carry the incidents as `page` (what Convex's paginated clients read), offset
    // pages as `incidents` (the contract's name); never both, so no page is encoded twice.
    let (cursor_page, shown, has_more, limited) = if let Some(opts) = &paging.pagination_opts {
        let opts = opts.opts()?;
        let start = decode_cursor(opts.cursor.as_deref(), &plan)?;
        let scan = plan.scan(&mut db, start.clone(), opts.num_items, budget, true)?;
        let cursor = scan.cursor.clone().or(start).unwrap_or_default();
        let page = (scan.exhausted, encode_cursor(&plan, &cursor));
        (Some(page), scan.docs, !scan.exhausted, scan.limited)
    } else {
        let (limit, offset) = read_offset_paging(paging.pagination.as_ref())?;
        let scan = plan.scan(&mut db, None, offset + limit + 1, budget, true)?;
        let more = scan.docs.len() > offset + limit || (scan.limited && !scan.exhausted);
        let shown = scan.docs.into_iter().skip(offset).take(limit).collect();
        (None, shown, more, scan.limited)
    };
    let (count, exact) = total(&mut ctx.db, scope, owner, &plan)?;
    let shown: Vec<ListedIncident> = shown
        .iter()
        .map(|d| with_site(d, &sites))
        .collect::<FnResult<_>>()?;
    let (incidents, page, is_done, continue_cursor) = match cursor_page {
        Some((done, cursor)) => (None, Some(shown), Some(done), Some(cursor)),
        None => (Some(shown), None, None, None),
    };
    Ok(IncidentList {
        incidents,
        page,
        is_done,
        continue_cursor,
        total_count: count,
        total_count_exact: exact,
        has_more,
        scan_limited: limited,
        correlation_id,
    })
}

/// The caller's company, or `None` for callers without one (system administrators): their lists
/// and counts are empty, as an index lookup for no company finds nothing, so the web app's
/// incident pages render for them instead of crashing.
fn own_company(viewer: &Viewer) -> Option<Scope> {
    viewer.company_id.map(Scope::company)
}

/// An empty list in the shape `respond` gives (cursor pages when `paginationOpts` is present).
fn empty_list(ctx: &QueryCtx<'_>, paging: &Paging) -> FnResult<IncidentList> {
    let cursor_page = match &paging.pagination_opts {
        Some(opts) => {
            opts.opts()?;
            true
        }
        None => {
            read_offset_paging(paging.pagination.as_ref())?;
            false
        }
    };
    Ok(IncidentList {
        incidents: (!cursor_page).then(Vec::new),
        page: cursor_page.then(Vec::new),
        is_done: cursor_page.then_some(true),
        continue_cursor: cursor_page.then(String::new),
        total_count: 0.0,
        total_count_exact: true,
        has_more: false,
        scan_limited: false,
        correlation_id: ctx.request_id.as_str().to_string(),
    })
}

/// `incidents_listing:getAllCompanyIncidents`: the company's incidents, for holders of
/// `view_all_company_incidents`.
pub fn all_company_incidents(
    ctx: &mut QueryCtx<'_>,
    args: CompanyListArgs,
) -> FnResult<IncidentList> {
    let now = ctx.now_ms();
    let viewer = require_permission(
        &mut ctx.db,
        ctx.auth,
        now,
        Permission::ViewAllCompanyIncidents,
    )?;
    let filters = read_filters(args.filters)?;
    let Some(scope) = own_company(&viewer) else {
        return empty_list(ctx, &args.paging);
    };
    respond(ctx, &args.paging, &scope, Owner::Company, filters)
}

/// `incidents_listing:getMyIncidents`: the caller's own incidents; completed ones only with
/// `includeCompleted`.
pub fn my_incidents(ctx: &mut QueryCtx<'_>, args: MyListArgs) -> FnResult<IncidentList> {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, Permission::CreateIncident)?;
    let mut filters = read_filters(args.filters.map(CompanyFilters::from))?;
    let Some(scope) = own_company(&viewer) else {
        return empty_list(ctx, &args.paging);
    };
    filters.eq.push(("created_by", viewer.user_id.encode()));
    filters.exclude_completed = !args.include_completed.unwrap_or(false);
    respond(
        ctx,
        &args.paging,
        &scope,
        Owner::Own(viewer.user_id),
        filters,
    )
}

#[derive(Serialize, Typed)]
pub struct IncidentCounts {
    capture_pending: f64,
    analysis_pending: f64,
    completed: f64,
    total: f64,
    /// `company` or `personal`.
    scope: &'static str,
}

/// `incidents_listing:getIncidentCounts`: incidents per overall status, the company's for holders
/// of `view_all_company_incidents`, otherwise the caller's own. One row read.
pub fn incident_counts(ctx: &mut QueryCtx<'_>, _args: SessionArgs) -> FnResult<IncidentCounts> {
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
    let label = if company_wide || viewer.company_id.is_none() {
        "company"
    } else {
        "personal"
    };
    Ok(IncidentCounts {
        capture_pending: counts.get(OverallStatus::CapturePending),
        analysis_pending: counts.get(OverallStatus::AnalysisPending),
        completed: counts.get(OverallStatus::Completed),
        total: counts.total(),
        scope: label,
    })
}

/// How many unfinished captures the "continue" list offers.
pub const INCOMPLETE_SHOWN: usize = 5;

/// `incidents_listing:getMyIncompleteIncidents`: the caller's newest unfinished captures (overall
/// `capture_pending`; submitted ones are finished), at most five, with their resume step and
/// preview.
#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct IncompleteIncidents {
    count: usize,
    incidents: Vec<ListedIncident>,
    total_count: f64,
    correlation_id: String,
}

pub fn my_incomplete_incidents(
    ctx: &mut QueryCtx<'_>,
    _args: SessionArgs,
) -> FnResult<IncompleteIncidents> {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, Permission::CreateIncident)?;
    let pending = OverallStatus::CapturePending;
    let Some(scope) = own_company(&viewer) else {
        return Ok(IncompleteIncidents {
            count: 0,
            incidents: Vec::new(),
            total_count: 0.0,
            correlation_id: ctx.request_id.as_str().to_string(),
        });
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
    let incidents: Vec<ListedIncident> = scan
        .docs
        .iter()
        .map(|d| with_site(d, &sites))
        .collect::<FnResult<_>>()?;
    Ok(IncompleteIncidents {
        count: incidents.len(),
        incidents,
        total_count: counts.get(pending),
        correlation_id: ctx.request_id.as_str().to_string(),
    })
}
