//! Platform user management for system administrators (`adminUsers:*`, the /admin/users page):
//! every user of every company with search, filters and paging, statistics, the company filter's
//! list, and demoting a system administrator. Lists carry public fields only (the reference sent
//! whole user documents, password hashes included) and a protection computed from what the server
//! would refuse the caller, not from a hard-coded owner email.

use std::collections::{BTreeMap, HashMap};

use functions::{ErrorCode, FnResult, FunctionError, MutationCtx, QueryCtx, Registry, Scope};
use serde::{Deserialize, Serialize};
use store::{Document, Patch};
use values::{Id, Typed, Value};

use super::protection::{protection, Protection};
use super::{public_user, roles, text_of, PublicUser};
use crate::args::SessionArgs;
use crate::audit::{self, Entry, Event};
use crate::companies::{directory, CompanyDoc, CompanyEntry};
use crate::identity::{require_session, Permission, Role, Viewer};

const DEFAULT_LIMIT: f64 = 50.0;
const MAX_LIMIT: f64 = 500.0;
const MAX_REASON_CHARS: usize = 500;

pub fn register(r: &mut Registry) {
    r.query("adminUsers:listAllUsers", list_all_users)
        .cross_tenant();
    r.query("adminUsers:getUserStats", user_stats)
        .cross_tenant();
    r.query("adminUsers:getCompanyList", company_list)
        .cross_tenant();
    r.mutation("adminUsers:demoteSystemAdmin", demote_system_admin)
        .cross_tenant();
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct ListAllUsersArgs {
    search_term: Option<String>,
    role_filter: Option<String>,
    company_filter: Option<String>,
    limit: Option<f64>,
    offset: Option<f64>,
}

/// A user on the platform's user page: public fields, company name and protection.
#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct PlatformUser {
    #[serde(flatten)]
    user: PublicUser,
    company_name: String,
    protection: Protection,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct AllUsers {
    users: Vec<PlatformUser>,
    total: usize,
    has_more: bool,
    correlation_id: String,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct CompanyUserCount {
    company_id: Id<CompanyDoc>,
    company_name: String,
    user_count: usize,
    status: String,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct UserStats {
    total_users: usize,
    total_companies: usize,
    role_distribution: BTreeMap<String, usize>,
    company_distribution: Vec<CompanyUserCount>,
    users_without_company: usize,
    correlation_id: String,
}

/// A company for the user page's company filter.
#[derive(Serialize, Typed)]
pub struct CompanyOption {
    #[serde(rename = "_id")]
    id: Id<CompanyDoc>,
    name: String,
    status: String,
    created_at: Option<f64>,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct CompanyList {
    companies: Vec<CompanyOption>,
    correlation_id: String,
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct DemoteArgs {
    user_id: String,
    new_role: String,
    reason: Option<String>,
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct Demoted {
    success: bool,
    correlation_id: String,
}

/// The caller, who must be a system administrator acting as themselves (an impersonation token
/// resolves to its target, who is never one).
fn system_admin(
    db: &mut impl functions::DbRead,
    auth: &functions::Auth,
    now: f64,
) -> FnResult<Viewer> {
    let viewer = require_session(db, auth, now)?;
    if viewer.role != Role::SystemAdmin || !viewer.has(Permission::SystemConfiguration) {
        return Err(FunctionError::forbidden(
            "System administrator access required",
        ));
    }
    Ok(viewer)
}

/// Every user of every company and of none.
fn all_users(ctx: &mut QueryCtx<'_>) -> FnResult<Vec<Document>> {
    let all = Scope::all_companies(&ctx.cross_tenant()?);
    Ok(ctx
        .db
        .scoped(&all)
        .query("users", "by_creation_time", |q| q)?
        .collect()?)
}

/// A whole number argument of at least 0, `default` when absent.
fn whole(given: Option<f64>, field: &str, default: f64) -> FnResult<f64> {
    match given {
        None => Ok(default),
        Some(n) if n.is_finite() && n >= 0.0 && n.fract() == 0.0 => Ok(n),
        Some(_) => Err(FunctionError::validation(
            field,
            format!("{field} must be a whole number of at least 0"),
        )),
    }
}

/// The company filter: absent, empty and `"all"` mean every company.
fn company_filter(ctx: &QueryCtx<'_>, given: Option<&str>) -> FnResult<Option<String>> {
    match given.map(str::trim) {
        None | Some("") | Some("all") => Ok(None),
        Some(raw) => ctx
            .db
            .normalize_id("companies", raw)
            .map(|id| Some(id.encode()))
            .ok_or_else(|| {
                FunctionError::field(ErrorCode::NotFound, "companyFilter", "Company not found")
            }),
    }
}

/// `adminUsers:listAllUsers`: `{users, total, hasMore, correlationId}`, by name. `total` counts
/// every match before `offset` and `limit` (default 50) cut the page.
fn list_all_users(ctx: &mut QueryCtx<'_>, args: ListAllUsersArgs) -> FnResult<AllUsers> {
    let now = ctx.now_ms();
    let viewer = system_admin(&mut ctx.db, ctx.auth, now)?;
    let role = match args.role_filter.as_deref().map(str::trim) {
        None | Some("") | Some("all") => None,
        Some(r) => Some(roles::parse("roleFilter", r)?),
    };
    let company = company_filter(ctx, args.company_filter.as_deref())?;
    let limit = whole(args.limit, "limit", DEFAULT_LIMIT)?.clamp(1.0, MAX_LIMIT) as usize;
    let offset = whole(args.offset, "offset", 0.0)? as usize;
    let term = args
        .search_term
        .as_deref()
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty());
    let grant = ctx.cross_tenant()?;
    let companies: HashMap<String, CompanyEntry> = directory(&mut ctx.db, &grant)?
        .into_iter()
        .map(|c| (c.id.encode(), c))
        .collect();
    let users = all_users(ctx)?;
    // Company admins per company, counted over everyone so that filters cannot hide a second one.
    let mut admins: HashMap<&str, usize> = HashMap::new();
    for user in &users {
        if text_of(user, "role") == Role::CompanyAdmin.as_str() {
            *admins.entry(text_of(user, "company_id")).or_default() += 1;
        }
    }
    let mut matches: Vec<&Document> = users
        .iter()
        .filter(|u| role.is_none_or(|r| text_of(u, "role") == r.as_str()))
        .filter(|u| {
            company
                .as_deref()
                .is_none_or(|c| text_of(u, "company_id") == c)
        })
        .filter(|u| {
            term.as_deref().is_none_or(|t| {
                text_of(u, "name").to_lowercase().contains(t)
                    || text_of(u, "email").to_lowercase().contains(t)
            })
        })
        .collect();
    matches.sort_by_cached_key(|u| (text_of(u, "name").to_lowercase(), u.id.encode()));
    let total = matches.len();
    let listed: Vec<PlatformUser> = matches
        .iter()
        .skip(offset)
        .take(limit)
        .map(|u| {
            let company_id = text_of(u, "company_id");
            let company_name = if company_id.is_empty() {
                "No Company"
            } else {
                companies
                    .get(company_id)
                    .map_or("Unknown", |c| c.name.as_str())
            };
            let sole = text_of(u, "role") == Role::CompanyAdmin.as_str()
                && !company_id.is_empty()
                && admins.get(company_id) == Some(&1);
            Ok(PlatformUser {
                user: public_user(u)?,
                company_name: company_name.to_string(),
                protection: protection(&viewer, u, sole),
            })
        })
        .collect::<FnResult<_>>()?;
    let has_more = offset.saturating_add(listed.len()) < total;
    Ok(AllUsers {
        users: listed,
        total,
        has_more,
        correlation_id: ctx.request_id.as_str().to_string(),
    })
}

/// `adminUsers:getUserStats`: counts by role and by company, and how many users have no company
/// (none named, or one that no longer exists).
fn user_stats(ctx: &mut QueryCtx<'_>, _args: SessionArgs) -> FnResult<UserStats> {
    let now = ctx.now_ms();
    system_admin(&mut ctx.db, ctx.auth, now)?;
    let grant = ctx.cross_tenant()?;
    let companies = directory(&mut ctx.db, &grant)?;
    let users = all_users(ctx)?;
    let mut by_role: HashMap<&str, usize> = HashMap::new();
    let mut by_company: HashMap<&str, usize> = HashMap::new();
    for user in &users {
        *by_role.entry(text_of(user, "role")).or_default() += 1;
        *by_company.entry(text_of(user, "company_id")).or_default() += 1;
    }
    let mut in_companies = 0;
    let distribution: Vec<CompanyUserCount> = companies
        .iter()
        .map(|c| {
            let id = c.id.encode();
            let count = by_company.get(id.as_str()).copied().unwrap_or(0);
            in_companies += count;
            CompanyUserCount {
                company_id: c.id.into(),
                company_name: c.name.clone(),
                user_count: count,
                status: c.status.clone(),
            }
        })
        .collect();
    let roles = Role::ALL
        .iter()
        .map(|r| {
            let count = by_role.get(r.as_str()).copied().unwrap_or(0);
            (r.as_str().to_string(), count)
        })
        .collect();
    Ok(UserStats {
        total_users: users.len(),
        total_companies: companies.len(),
        role_distribution: roles,
        company_distribution: distribution,
        users_without_company: users.len() - in_companies,
        correlation_id: ctx.request_id.as_str().to_string(),
    })
}

/// `adminUsers:getCompanyList`: `{companies: [{_id, name, status, created_at}], correlationId}`,
/// by name (the user page's company filter).
fn company_list(ctx: &mut QueryCtx<'_>, _args: SessionArgs) -> FnResult<CompanyList> {
    let now = ctx.now_ms();
    system_admin(&mut ctx.db, ctx.auth, now)?;
    let grant = ctx.cross_tenant()?;
    let companies = directory(&mut ctx.db, &grant)?
        .into_iter()
        .map(|c| CompanyOption {
            id: c.id.into(),
            name: c.name,
            status: c.status,
            created_at: c.created_at,
        })
        .collect();
    Ok(CompanyList {
        companies,
        correlation_id: ctx.request_id.as_str().to_string(),
    })
}

/// `adminUsers:demoteSystemAdmin`: gives another system administrator a lower role. A company
/// role needs a company, so a system administrator without one can become only demo_admin (the
/// reference left such users in a company role with no company, where every page fails). Their
/// live impersonations end with the role, and the change is audited.
fn demote_system_admin(ctx: &mut MutationCtx<'_>, args: DemoteArgs) -> FnResult<Demoted> {
    let now = ctx.now_ms();
    let viewer = system_admin(&mut ctx.db, ctx.auth, now)?;
    let grant = ctx.cross_tenant()?;
    let all = Scope::all_companies(&grant);
    let user = ctx
        .db
        .scoped(&all)
        .get_in("users", &args.user_id)?
        .ok_or_else(|| FunctionError::not_found("User not found"))?;
    if user.id == viewer.user_id {
        return Err(FunctionError::forbidden("Cannot demote yourself"));
    }
    if text_of(&user, "role") != Role::SystemAdmin.as_str() {
        return Err(FunctionError::user(
            ErrorCode::Conflict,
            "User is not currently a system administrator",
        ));
    }
    let new_role = roles::parse("newRole", &args.new_role)?;
    if new_role == Role::SystemAdmin {
        return Err(FunctionError::validation(
            "newRole",
            "The new role must be demo_admin, company_admin, team_lead or frontline_worker",
        ));
    }
    let reason = args.reason.as_deref().map(str::trim).unwrap_or_default();
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(FunctionError::validation(
            "reason",
            format!("Reason must not exceed {MAX_REASON_CHARS} characters"),
        ));
    }
    let company = match ctx
        .db
        .normalize_id("companies", text_of(&user, "company_id"))
    {
        Some(c) if crate::companies::exists(&mut ctx.db, &all, &c)? => Some(c),
        _ => None,
    };
    if company.is_none() && roles::COMPANY_ROLES.contains(&new_role) {
        return Err(FunctionError::field(
            ErrorCode::Conflict,
            "newRole",
            "This system administrator belongs to no company, so cannot take a company role; \
             demote them to demo_admin instead",
        ));
    }
    let mut patch = Patch::new();
    patch.insert("role".into(), Some(Value::from(new_role.as_str())));
    ctx.db.scoped(&all).patch(&user.id, patch)?;
    let correlation = ctx.request_id.as_str().to_string();
    let ended = crate::impersonation::end_all_for_admin(
        &mut ctx.db,
        now,
        &correlation,
        &user.id,
        "admin_demoted",
    )?;
    let ended = ended.to_string();
    let mut details = vec![
        ("from", Role::SystemAdmin.as_str()),
        ("to", new_role.as_str()),
        ("impersonations_ended", ended.as_str()),
    ];
    if !reason.is_empty() {
        details.push(("reason", reason));
    }
    let entry = Entry {
        event: Event::RoleChanged,
        actor: Some(&viewer.user_id),
        target: Some(user.id.encode()),
        company: company.as_ref(),
        details: &details,
    };
    audit::record_by(&mut ctx.db, now, &correlation, &viewer, entry)?;
    Ok(Demoted {
        success: true,
        correlation_id: correlation,
    })
}
