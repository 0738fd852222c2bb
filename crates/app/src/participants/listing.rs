//! Listing, searching and reading participants of the caller's company. The sort order and the
//! status or site filter pick an index, so results come out of the index already ordered and Convex
//! `paginationOpts` pages walk it with a cursor; the remaining filters (text, support level, age)
//! are applied to the documents the index range yields.

use functions::{
    pagination_result, parse_pagination_opts, FnResult, FunctionError, QueryCtx, Scope, Scoped,
};
use store::{Document, Order, Query};
use values::{DocumentId, Object, Value};

use super::fields::{age, civil_from_ms, parse_date, STATUSES, SUPPORT_LEVELS};
use super::{into_public, not_found, public, TABLE};
use crate::args::{object, opt_text, text};
use crate::identity::{require_permission, Permission, Viewer};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    Name,
    Ndis,
    Created,
    Updated,
}

/// `sort_by` values and what they sort on.
pub const SORT_BY: [(&str, Sort); 4] = [
    ("name", Sort::Name),
    ("ndis_number", Sort::Ndis),
    ("created_date", Sort::Created),
    ("updated_date", Sort::Updated),
];

/// What a list or search asks for.
#[derive(Clone)]
struct Request {
    sort: Sort,
    order: Order,
    status: Option<String>,
    site: Option<String>,
    rest: Filters,
}

/// Conditions checked on each document the index yields.
#[derive(Clone, Default)]
struct Filters {
    status: Option<String>,
    site: Option<String>,
    support_level: Option<String>,
    /// Lower-cased text to find in the names and NDIS number (and more with `wide_text`).
    text: Option<String>,
    wide_text: bool,
    ages: Option<(f64, f64)>,
    today: (i64, u32, u32),
}

impl Filters {
    fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.site.is_none()
            && self.support_level.is_none()
            && self.text.is_none()
            && self.ages.is_none()
    }

    fn keeps(&self, doc: &Document) -> bool {
        let field = |name: &str| doc.get(name).and_then(Value::as_str).unwrap_or_default();
        let equal = |wanted: &Option<String>, name: &str| {
            wanted.as_deref().is_none_or(|w| field(name) == w)
        };
        if !(equal(&self.status, "status")
            && equal(&self.site, "site_id")
            && equal(&self.support_level, "support_level"))
        {
            return false;
        }
        if let Some(needle) = &self.text {
            let mut haystacks = vec![
                format!("{} {}", field("first_name"), field("last_name")),
                field("ndis_number").to_string(),
                field("contact_phone").to_string(),
            ];
            if self.wide_text {
                haystacks.push(field("emergency_contact").to_string());
                haystacks.push(field("care_notes").to_string());
            }
            if !haystacks
                .iter()
                .any(|h| h.to_lowercase().contains(needle.as_str()))
            {
                return false;
            }
        }
        if let Some((min, max)) = self.ages {
            let Some(birth) = parse_date(field("date_of_birth")) else {
                return false;
            };
            let years = age(birth, self.today) as f64;
            if years < min || years > max {
                return false;
            }
        }
        true
    }
}

/// A `status` or `support_level` filter: absent, empty and `"all"` mean no filter.
fn choice(args: &Object, field: &str, options: &[&str]) -> FnResult<Option<String>> {
    match opt_text(args, field).map(str::trim) {
        None | Some("") | Some("all") => Ok(None),
        Some(value) if options.contains(&value) => Ok(Some(value.to_string())),
        Some(_) => Err(FunctionError::validation(
            field,
            format!("{field} must be one of {}, or all", options.join(", ")),
        )),
    }
}

/// A whole number of at least 0, if given.
fn count(args: &Object, field: &str) -> FnResult<Option<usize>> {
    match args.get(field).and_then(Value::as_f64) {
        None => Ok(None),
        Some(n) if n.is_finite() && n >= 0.0 && n.fract() == 0.0 => Ok(Some(n as usize)),
        Some(_) => Err(FunctionError::validation(
            field,
            format!("{field} must be a whole number of at least 0"),
        )),
    }
}

fn request(args: &Object, text_field: &str, now: f64) -> FnResult<Request> {
    let sort = match opt_text(args, "sort_by") {
        Some(name) => SORT_BY
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(Sort::Name, |(_, s)| *s),
        None => Sort::Name,
    };
    let order = match opt_text(args, "sort_order") {
        Some("desc") => Order::Desc,
        _ => Order::Asc,
    };
    let ages = match args.get("age_range").and_then(Value::as_object) {
        Some(range) => {
            let bound = |name: &str| range.get(name).and_then(Value::as_f64);
            match (bound("min_age"), bound("max_age")) {
                (None, None) => None,
                (min, max) => Some((min.unwrap_or(0.0), max.unwrap_or(f64::INFINITY))),
            }
        }
        None => None,
    };
    let search = opt_text(args, text_field)
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty());
    Ok(Request {
        sort,
        order,
        status: choice(args, "status", &STATUSES)?,
        site: opt_text(args, "site_id").map(str::to_string),
        rest: Filters {
            support_level: choice(args, "support_level", &SUPPORT_LEVELS)?,
            text: search,
            wide_text: text_field == "query",
            ages,
            today: civil_from_ms(now),
            ..Filters::default()
        },
    })
}

/// The index range that yields the request's participants in its order; the status or site filter
/// the index does not cover is left in the returned filters.
fn open<'a>(db: &'a mut Scoped<'_>, request: Request) -> FnResult<(Query<'a>, Filters)> {
    let Request {
        sort,
        order,
        status,
        site,
        mut rest,
    } = request;
    let query = match (sort, site, status) {
        (Sort::Name, Some(site), status) => {
            rest.status = status;
            db.query(TABLE, "by_company_site_name", |q| q.eq("site_id", site))?
        }
        (Sort::Name, None, Some(status)) => {
            db.query(TABLE, "by_company_status_name", |q| q.eq("status", status))?
        }
        (sort, site, status) => {
            rest.status = status;
            rest.site = site;
            let index = match sort {
                Sort::Name => "by_company_name",
                Sort::Ndis => "by_company_ndis",
                Sort::Created => "by_company_created",
                Sort::Updated => "by_company_updated",
            };
            db.query(TABLE, index, |q| q)?
        }
    };
    Ok((query.order(order), rest))
}

/// The matches: a cursor page when `paginationOpts` is given, otherwise the first `upto` of them
/// (all without a bound) and how many there are (the contract's `totalCount`).
enum Found {
    Page(store::PaginationResult),
    Head { docs: Vec<Document>, total: usize },
}

fn find(
    db: &mut Scoped<'_>,
    args: &Object,
    request: Request,
    upto: Option<usize>,
) -> FnResult<Found> {
    let (query, filters) = open(db, request.clone())?;
    if filters.is_empty() && args.get("paginationOpts").is_none() {
        if let Some(upto) = upto {
            // Unfiltered: the index alone gives the total, so only the shown rows are read.
            let total = query.count()? as usize;
            let docs = open(db, request)?.0.take(upto)?;
            return Ok(Found::Head { docs, total });
        }
    }
    let query = if filters.is_empty() {
        query
    } else {
        query.filter(move |doc| filters.keeps(doc))
    };
    if args.get("paginationOpts").is_some() {
        return Ok(Found::Page(query.paginate(parse_pagination_opts(args)?)?));
    }
    let mut docs = query.collect()?;
    let total = docs.len();
    docs.truncate(upto.unwrap_or(total));
    Ok(Found::Head { docs, total })
}

/// The caller; any role may read participants.
fn caller(ctx: &mut QueryCtx<'_>, _args: &Object) -> FnResult<Viewer> {
    let now = ctx.now_ms();
    require_permission(&mut ctx.db, ctx.auth, now, Permission::CreateIncident)
}

/// The caller and their company.
fn own_company(ctx: &mut QueryCtx<'_>, args: &Object) -> FnResult<(Scope, DocumentId)> {
    let viewer = caller(ctx, args)?;
    let scope = viewer.company_scope()?;
    match scope {
        Scope::Company(company) => Ok((scope, company)),
        Scope::AllCompanies => Err(FunctionError::internal("own company scope spans all")),
    }
}

/// `{_id, name, slug}` of the viewer's company.
fn company_summary(db: &mut Scoped<'_>, company: &DocumentId) -> FnResult<Value> {
    let company = db
        .get(company)?
        .ok_or_else(|| FunctionError::not_found("Company information not found"))?;
    Ok(object([
        ("_id", Some(Value::from(company.id))),
        ("name", company.get("name").cloned()),
        ("slug", company.get("slug").cloned()),
    ]))
}

fn list_of(docs: impl IntoIterator<Item = Document>) -> Value {
    Value::Array(docs.into_iter().map(into_public).collect())
}

/// Adds `fields` to a result object.
fn with(mut result: Value, fields: Vec<(&str, Value)>) -> Value {
    if let Value::Object(o) = &mut result {
        o.extend(fields.into_iter().map(|(k, v)| (k.to_string(), v)));
    }
    result
}

/// `participants/list:listParticipants`: `{participants, company, totalCount, correlationId}`
/// sorted by last then first name. With `paginationOpts` it also carries Convex's
/// `{page, isDone, continueCursor}` and leaves out `totalCount` (counting would read every match).
///
/// A caller without a company (a system administrator) gets an empty list and `company: null`:
/// the participant selector renders that, where an error would crash the page.
pub fn list(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let viewer = caller(ctx, &args)?;
    let request = request(&args, "search", ctx.now_ms())?;
    let limit = count(&args, "limit")?;
    let correlation = Value::from(ctx.request_id.as_str());
    let Some(company_id) = viewer.company_id else {
        let paged = args.contains_key("paginationOpts");
        return Ok(object([
            ("participants", Some(Value::Array(Vec::new()))),
            ("company", Some(Value::Null)),
            ("totalCount", Some(Value::from(0.0))),
            ("page", paged.then(|| Value::Array(Vec::new()))),
            ("isDone", paged.then(|| Value::from(true))),
            ("continueCursor", paged.then(|| Value::from(""))),
            ("correlationId", Some(correlation)),
        ]));
    };
    let scope = Scope::company(company_id);
    let mut db = ctx.db.scoped(&scope);
    let company = company_summary(&mut db, &company_id)?;
    match find(&mut db, &args, request, limit)? {
        Found::Page(page) => {
            let result = pagination_result(&page, public);
            let participants = list_of(page.page);
            Ok(with(
                result,
                vec![
                    ("participants", participants),
                    ("company", company),
                    ("correlationId", correlation),
                ],
            ))
        }
        Found::Head { docs, total } => Ok(object([
            ("participants", Some(list_of(docs))),
            ("company", Some(company)),
            ("totalCount", Some(Value::from(total as f64))),
            ("correlationId", Some(correlation)),
        ])),
    }
}

/// `participants/search:searchParticipants`: `{participants, totalCount, returnedCount, hasMore,
/// correlationId}` with `offset`/`limit`; with `paginationOpts`, a cursor page as in `list`.
pub fn search(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let (scope, _) = own_company(ctx, &args)?;
    let request = request(&args, "query", ctx.now_ms())?;
    let (limit, offset) = (count(&args, "limit")?, count(&args, "offset")?.unwrap_or(0));
    let correlation = Value::from(ctx.request_id.as_str());
    let mut db = ctx.db.scoped(&scope);
    let upto = limit.map(|n| offset.saturating_add(n));
    match find(&mut db, &args, request, upto)? {
        Found::Page(page) => {
            let result = pagination_result(&page, public);
            let returned = page.page.len() as f64;
            let participants = list_of(page.page);
            Ok(with(
                result,
                vec![
                    ("participants", participants),
                    ("returnedCount", Value::from(returned)),
                    ("hasMore", Value::from(!page.is_done)),
                    ("correlationId", correlation),
                ],
            ))
        }
        Found::Head { docs, total } => {
            let shown: Vec<Document> = docs.into_iter().skip(offset).collect();
            let returned = shown.len();
            let end = offset.saturating_add(returned);
            Ok(object([
                ("participants", Some(list_of(shown))),
                ("totalCount", Some(Value::from(total as f64))),
                ("returnedCount", Some(Value::from(returned as f64))),
                ("hasMore", Some(Value::from(end < total))),
                ("correlationId", Some(correlation)),
            ]))
        }
    }
}

/// `participants/getById:getParticipantById`: `{participant, company, correlationId}`; another
/// company's participant is "not found", exactly like a missing one.
pub fn get_by_id(ctx: &mut QueryCtx<'_>, args: Object) -> FnResult {
    let (scope, company_id) = own_company(ctx, &args)?;
    let correlation = Value::from(ctx.request_id.as_str());
    let mut db = ctx.db.scoped(&scope);
    let participant = db
        .get_in(TABLE, text(&args, "participantId"))?
        .ok_or_else(not_found)?;
    let company = company_summary(&mut db, &company_id)?;
    Ok(object([
        ("participant", Some(public(&participant))),
        ("company", Some(company)),
        ("correlationId", Some(correlation)),
    ]))
}
