//! Listing, searching and reading participants of the caller's company. The sort order and the
//! status or site filter pick an index, so results come out of the index already ordered and Convex
//! `paginationOpts` pages walk it with a cursor; the remaining filters (text, support level, age)
//! are applied to the documents the index range yields.

use functions::{FnResult, FunctionError, PaginationArg, QueryCtx, Scope, Scoped};
use serde::{Deserialize, Serialize};
use store::{Document, Order, Query};
use values::{DocumentId, Nullable, Typed, Validator, Value};

use super::fields::{age, civil_from_ms, parse_date, STATUSES, SUPPORT_LEVELS};
use super::{not_found, one_of, public, CompanySummary, PublicParticipant, TABLE};
use crate::companies::CompanyDoc;
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

fn sort_by_names() -> Validator {
    one_of(&SORT_BY.map(|(name, _)| name))
}

fn sort_orders() -> Validator {
    one_of(&["asc", "desc"])
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct ListArgs {
    search: Option<String>,
    status: Option<String>,
    support_level: Option<String>,
    #[typed(id = "sites")]
    site_id: Option<String>,
    limit: Option<f64>,
    #[serde(rename = "paginationOpts")]
    pagination_opts: Option<PaginationArg>,
}

#[derive(Deserialize, Typed)]
pub struct AgeRange {
    min_age: Option<f64>,
    max_age: Option<f64>,
}

#[derive(Deserialize, Typed)]
#[typed(session)]
pub struct SearchArgs {
    query: Option<String>,
    status: Option<String>,
    support_level: Option<String>,
    #[typed(id = "sites")]
    site_id: Option<String>,
    age_range: Option<AgeRange>,
    #[typed(validator = sort_by_names())]
    sort_by: Option<String>,
    #[typed(validator = sort_orders())]
    sort_order: Option<String>,
    limit: Option<f64>,
    offset: Option<f64>,
    #[serde(rename = "paginationOpts")]
    pagination_opts: Option<PaginationArg>,
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct GetByIdArgs {
    #[typed(id = "participants")]
    participant_id: String,
}

/// The criteria lists and searches share.
struct Criteria<'a> {
    status: Option<&'a str>,
    support_level: Option<&'a str>,
    site_id: Option<&'a str>,
    sort_by: Option<&'a str>,
    sort_order: Option<&'a str>,
    ages: Option<&'a AgeRange>,
    /// The text to find, and whether it is a search's wide `query` (notes and contacts too).
    text: Option<&'a str>,
    wide_text: bool,
}

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
fn choice(given: Option<&str>, field: &str, options: &[&str]) -> FnResult<Option<String>> {
    match given.map(str::trim) {
        None | Some("") | Some("all") => Ok(None),
        Some(value) if options.contains(&value) => Ok(Some(value.to_string())),
        Some(_) => Err(FunctionError::validation(
            field,
            format!("{field} must be one of {}, or all", options.join(", ")),
        )),
    }
}

/// A whole number of at least 0, if given.
fn count(given: Option<f64>, field: &str) -> FnResult<Option<usize>> {
    match given {
        None => Ok(None),
        Some(n) if n.is_finite() && n >= 0.0 && n.fract() == 0.0 => Ok(Some(n as usize)),
        Some(_) => Err(FunctionError::validation(
            field,
            format!("{field} must be a whole number of at least 0"),
        )),
    }
}

fn request(criteria: Criteria<'_>, now: f64) -> FnResult<Request> {
    let sort = match criteria.sort_by {
        Some(name) => SORT_BY
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(Sort::Name, |(_, s)| *s),
        None => Sort::Name,
    };
    let order = match criteria.sort_order {
        Some("desc") => Order::Desc,
        _ => Order::Asc,
    };
    let ages = match criteria.ages {
        Some(range) => match (range.min_age, range.max_age) {
            (None, None) => None,
            (min, max) => Some((min.unwrap_or(0.0), max.unwrap_or(f64::INFINITY))),
        },
        None => None,
    };
    let search = criteria
        .text
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty());
    Ok(Request {
        sort,
        order,
        status: choice(criteria.status, "status", &STATUSES)?,
        site: criteria.site_id.map(str::to_string),
        rest: Filters {
            support_level: choice(criteria.support_level, "support_level", &SUPPORT_LEVELS)?,
            text: search,
            wide_text: criteria.wide_text,
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
    pagination: Option<&PaginationArg>,
    request: Request,
    upto: Option<usize>,
) -> FnResult<Found> {
    let (query, filters) = open(db, request.clone())?;
    if filters.is_empty() && pagination.is_none() {
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
    if let Some(pagination) = pagination {
        return Ok(Found::Page(query.paginate(pagination.opts()?)?));
    }
    let mut docs = query.collect()?;
    let total = docs.len();
    docs.truncate(upto.unwrap_or(total));
    Ok(Found::Head { docs, total })
}

/// The caller; any role may read participants.
fn caller(ctx: &mut QueryCtx<'_>) -> FnResult<Viewer> {
    let now = ctx.now_ms();
    require_permission(&mut ctx.db, ctx.auth, now, Permission::CreateIncident)
}

/// The caller and their company.
fn own_company(ctx: &mut QueryCtx<'_>) -> FnResult<(Scope, DocumentId)> {
    let viewer = caller(ctx)?;
    let scope = viewer.company_scope()?;
    match scope {
        Scope::Company(company) => Ok((scope, company)),
        Scope::AllCompanies => Err(FunctionError::internal("own company scope spans all")),
    }
}

/// `{_id, name, slug}` of the viewer's company.
fn company_summary(db: &mut Scoped<'_>, company: &DocumentId) -> FnResult<CompanySummary> {
    let company = db
        .get(company)?
        .ok_or_else(|| FunctionError::not_found("Company information not found"))?;
    let company: CompanyDoc = functions::row(&company)?;
    Ok(CompanySummary {
        id: company.id,
        name: company.name,
        slug: company.slug,
    })
}

fn list_of(docs: impl IntoIterator<Item = Document>) -> FnResult<Vec<PublicParticipant>> {
    docs.into_iter().map(|d| public(&d)).collect()
}

/// A list of participants: `{participants, company, totalCount, correlationId}`, or with
/// `paginationOpts` Convex's `{page, isDone, continueCursor}` beside the participants and no
/// `totalCount`.
#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantList {
    participants: Vec<PublicParticipant>,
    company: Nullable<CompanySummary>,
    total_count: Option<usize>,
    page: Option<Vec<PublicParticipant>>,
    is_done: Option<bool>,
    continue_cursor: Option<String>,
    correlation_id: String,
}

/// `participants/list:listParticipants`: `{participants, company, totalCount, correlationId}`
/// sorted by last then first name. With `paginationOpts` it also carries Convex's
/// `{page, isDone, continueCursor}` and leaves out `totalCount` (counting would read every match).
///
/// A caller without a company (a system administrator) gets an empty list and `company: null`:
/// the participant selector renders that, where an error would crash the page.
pub fn list(ctx: &mut QueryCtx<'_>, args: ListArgs) -> FnResult<ParticipantList> {
    let viewer = caller(ctx)?;
    let criteria = Criteria {
        status: args.status.as_deref(),
        support_level: args.support_level.as_deref(),
        site_id: args.site_id.as_deref(),
        sort_by: None,
        sort_order: None,
        ages: None,
        text: args.search.as_deref(),
        wide_text: false,
    };
    let request = request(criteria, ctx.now_ms())?;
    let limit = count(args.limit, "limit")?;
    let correlation_id = ctx.request_id.as_str().to_string();
    let Some(company_id) = viewer.company_id else {
        let paged = args.pagination_opts.is_some();
        return Ok(ParticipantList {
            participants: Vec::new(),
            company: Nullable::null(),
            total_count: Some(0),
            page: paged.then(Vec::new),
            is_done: paged.then_some(true),
            continue_cursor: paged.then(String::new),
            correlation_id,
        });
    };
    let scope = Scope::company(company_id);
    let mut db = ctx.db.scoped(&scope);
    let company = Nullable(Some(company_summary(&mut db, &company_id)?));
    match find(&mut db, args.pagination_opts.as_ref(), request, limit)? {
        Found::Page(page) => {
            let participants = list_of(page.page)?;
            Ok(ParticipantList {
                page: Some(participants.clone()),
                participants,
                company,
                total_count: None,
                is_done: Some(page.is_done),
                continue_cursor: Some(page.continue_cursor),
                correlation_id,
            })
        }
        Found::Head { docs, total } => Ok(ParticipantList {
            participants: list_of(docs)?,
            company,
            total_count: Some(total),
            page: None,
            is_done: None,
            continue_cursor: None,
            correlation_id,
        }),
    }
}

/// A search's matches: `{participants, totalCount, returnedCount, hasMore, correlationId}`, or
/// with `paginationOpts` a cursor page beside them and no `totalCount`.
#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantSearch {
    participants: Vec<PublicParticipant>,
    total_count: Option<usize>,
    returned_count: usize,
    has_more: bool,
    page: Option<Vec<PublicParticipant>>,
    is_done: Option<bool>,
    continue_cursor: Option<String>,
    correlation_id: String,
}

/// `participants/search:searchParticipants`: `{participants, totalCount, returnedCount, hasMore,
/// correlationId}` with `offset`/`limit`; with `paginationOpts`, a cursor page as in `list`.
pub fn search(ctx: &mut QueryCtx<'_>, args: SearchArgs) -> FnResult<ParticipantSearch> {
    let (scope, _) = own_company(ctx)?;
    let criteria = Criteria {
        status: args.status.as_deref(),
        support_level: args.support_level.as_deref(),
        site_id: args.site_id.as_deref(),
        sort_by: args.sort_by.as_deref(),
        sort_order: args.sort_order.as_deref(),
        ages: args.age_range.as_ref(),
        text: args.query.as_deref(),
        wide_text: true,
    };
    let request = request(criteria, ctx.now_ms())?;
    let (limit, offset) = (
        count(args.limit, "limit")?,
        count(args.offset, "offset")?.unwrap_or(0),
    );
    let correlation_id = ctx.request_id.as_str().to_string();
    let mut db = ctx.db.scoped(&scope);
    let upto = limit.map(|n| offset.saturating_add(n));
    match find(&mut db, args.pagination_opts.as_ref(), request, upto)? {
        Found::Page(page) => {
            let participants = list_of(page.page)?;
            Ok(ParticipantSearch {
                page: Some(participants.clone()),
                returned_count: participants.len(),
                participants,
                total_count: None,
                has_more: !page.is_done,
                is_done: Some(page.is_done),
                continue_cursor: Some(page.continue_cursor),
                correlation_id,
            })
        }
        Found::Head { docs, total } => {
            let shown: Vec<Document> = docs.into_iter().skip(offset).collect();
            let returned = shown.len();
            let end = offset.saturating_add(returned);
            Ok(ParticipantSearch {
                participants: list_of(shown)?,
                total_count: Some(total),
                returned_count: returned,
                has_more: end < total,
                page: None,
                is_done: None,
                continue_cursor: None,
                correlation_id,
            })
        }
    }
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantWithCompany {
    participant: PublicParticipant,
    company: CompanySummary,
    correlation_id: String,
}

/// `participants/getById:getParticipantById`: `{participant, company, correlationId}`; another
/// company's participant is "not found", exactly like a missing one.
pub fn get_by_id(ctx: &mut QueryCtx<'_>, args: GetByIdArgs) -> FnResult<ParticipantWithCompany> {
    let (scope, company_id) = own_company(ctx)?;
    let correlation_id = ctx.request_id.as_str().to_string();
    let mut db = ctx.db.scoped(&scope);
    let participant = db
        .get_in(TABLE, &args.participant_id)?
        .ok_or_else(not_found)?;
    let company = company_summary(&mut db, &company_id)?;
    Ok(ParticipantWithCompany {
        participant: public(&participant)?,
        company,
        correlation_id,
    })
}
