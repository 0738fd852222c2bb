//! Platform administration of companies (`manage_all_companies`): the list with counts, the
//! platform totals, the edit form, and changes to name, contact email and status. Suspending a
//! company also ends its users' sessions, so "suspended users cannot sign in" is not undone by
//! sessions that were already open.

use std::collections::BTreeMap;

use functions::{ErrorCode, FnResult, FunctionError, MutationCtx, QueryCtx, Scope};
use serde::{Deserialize, Serialize};
use store::{Document, Order, Patch};
use values::{DocumentId, Typed, Value};

use super::{company_not_found, company_row, status_validator, str_field, STATUSES};
use super::{CompanyDoc, CompanyIdArgs};
use crate::args::SessionArgs;
use crate::audit::{self, Entry, Event};
use crate::identity::{require_permission, sessions, Permission, Viewer};
use crate::users::Email;

/// The company `companyId` names, with a scope limited to it.
fn load_company(
    db: &mut functions::DbWriter<'_>,
    viewer: &Viewer,
    grant: &functions::CrossTenant,
    id: &str,
) -> FnResult<(Document, Scope)> {
    let company_id = db
        .normalize_id("companies", id)
        .ok_or_else(company_not_found)?;
    let scope = viewer.scope_for(&company_id, Some(grant), Permission::ManageAllCompanies)?;
    let company = db
        .scoped(&scope)
        .get(&company_id)?
        .ok_or_else(company_not_found)?;
    Ok((company, scope))
}

/// How many documents of `table` belong to the scope's company, through `index` (which starts with
/// the company field, so only that company's rows are read).
fn count(ctx: &mut QueryCtx<'_>, scope: &Scope, table: &str, index: &str) -> FnResult<f64> {
    let rows = ctx.db.scoped(scope).query(table, index, |q| q)?.collect()?;
    Ok(rows.len() as f64)
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct ListAllCompaniesArgs {
    status_filter: Option<String>,
    search_query: Option<String>,
}

/// A company with its counts, as the platform's company list shows it.
#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct CompanyWithCounts {
    #[serde(flatten)]
    company: CompanyDoc,
    user_count: f64,
    site_count: f64,
    participant_count: f64,
    active_incident_count: f64,
}

/// `companies/admin:listAllCompanies`: newest first, each with its counts.
pub fn list_all_companies(
    ctx: &mut QueryCtx<'_>,
    args: ListAllCompaniesArgs,
) -> FnResult<Vec<CompanyWithCounts>> {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, Permission::ManageAllCompanies)?;
    let status = args
        .status_filter
        .as_deref()
        .filter(|s| !s.is_empty() && *s != "all");
    if let Some(s) = status {
        if !STATUSES.contains(&s) {
            return Err(FunctionError::validation(
                "statusFilter",
                format!(
                    "Unknown status '{s}'; expected all, {}",
                    STATUSES.join(", ")
                ),
            ));
        }
    }
    let search = args
        .search_query
        .as_deref()
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty());
    let grant = ctx.cross_tenant()?;
    let all = viewer.all_companies_scope(&grant, Permission::ManageAllCompanies)?;
    let mut db = ctx.db.scoped(&all);
    let query = match status {
        Some(s) => db.query("companies", "by_status", |q| q.eq("status", s))?,
        None => db.query("companies", "by_creation_time", |q| q)?,
    };
    let mut companies = query.order(Order::Desc).collect()?;
    if let Some(search) = search {
        companies.retain(|c| {
            ["name", "slug", "contact_email"]
                .iter()
                .any(|f| str_field(c, f).to_lowercase().contains(&search))
        });
    }
    let mut out = Vec::with_capacity(companies.len());
    for company in companies {
        let scope = viewer.scope_for(&company.id, Some(&grant), Permission::ManageAllCompanies)?;
        let users = count(ctx, &scope, "users", "by_company")?;
        let sites = count(ctx, &scope, "sites", "by_company_name")?;
        let participants = count(ctx, &scope, crate::participants::TABLE, "by_company_name")?;
        // Not completed (capture or analysis still open), from the incident status counts.
        let active = crate::incidents::active_count(&mut ctx.db, &scope)?;
        out.push(CompanyWithCounts {
            company: company_row(&company)?,
            user_count: users,
            site_count: sites,
            participant_count: participants,
            active_incident_count: active,
        });
    }
    Ok(out)
}

/// `companies/admin:getCompanyForEdit`: the company document, or `null` when it is missing or
/// deleted (the edit page shows "not found" for `null`).
pub fn get_company_for_edit(
    ctx: &mut QueryCtx<'_>,
    args: CompanyIdArgs,
) -> FnResult<Option<CompanyDoc>> {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, Permission::ManageAllCompanies)?;
    let grant = ctx.cross_tenant()?;
    let Some(company_id) = ctx.db.normalize_id("companies", &args.company_id) else {
        return Ok(None);
    };
    let scope = viewer.scope_for(&company_id, Some(&grant), Permission::ManageAllCompanies)?;
    let company = ctx.db.scoped(&scope).get(&company_id)?;
    company.as_ref().map(company_row).transpose()
}

#[derive(Serialize, Typed)]
#[serde(rename_all = "camelCase")]
pub struct SystemMetrics {
    total_companies: usize,
    total_users: usize,
    total_participants: usize,
    total_sites: usize,
    total_incidents: usize,
    companies_by_status: BTreeMap<String, usize>,
}

/// `companies/admin:getSystemMetrics`: platform totals, each counted by the module that owns it.
pub fn get_system_metrics(ctx: &mut QueryCtx<'_>, _args: SessionArgs) -> FnResult<SystemMetrics> {
    let now = ctx.now_ms();
    require_permission(&mut ctx.db, ctx.auth, now, Permission::ManageAllCompanies)?;
    let grant = ctx.cross_tenant()?;
    let db = &mut ctx.db;
    let (companies, by_status) = super::rows::count_all(db, &grant)?;
    Ok(SystemMetrics {
        total_companies: companies,
        total_users: crate::users::rows::count_all(db, &grant)?,
        total_participants: crate::participants::rows::count_all(db, &grant)?,
        total_sites: super::rows::count_all_sites(db, &grant)?,
        total_incidents: crate::incidents::rows::count_all(db, &grant)?,
        companies_by_status: by_status,
    })
}

#[derive(Deserialize, Typed)]
#[serde(rename_all = "camelCase")]
#[typed(session)]
pub struct AdminUpdateCompanyArgs {
    #[typed(id = "companies")]
    company_id: String,
    updates: CompanyUpdates,
}

#[derive(Deserialize, Typed)]
pub struct CompanyUpdates {
    name: Option<String>,
    contact_email: Option<String>,
    #[typed(validator = status_validator())]
    status: Option<String>,
}

/// `updates.name`, trimmed and checked, if given.
fn new_name(updates: &CompanyUpdates) -> FnResult<Option<String>> {
    let Some(name) = updates.name.as_deref() else {
        return Ok(None);
    };
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(FunctionError::validation(
            "updates.name",
            "Validation failed: company name must be between 1 and 100 characters",
        ));
    }
    Ok(Some(name.to_string()))
}

/// `companies/admin:updateCompany`: changes name, contact email and status; returns the document.
pub fn update_company(
    ctx: &mut MutationCtx<'_>,
    args: AdminUpdateCompanyArgs,
) -> FnResult<CompanyDoc> {
    let now = ctx.now_ms();
    let viewer = require_permission(&mut ctx.db, ctx.auth, now, Permission::ManageAllCompanies)?;
    let updates = args.updates;
    let name = new_name(&updates)?;
    let contact_email = updates
        .contact_email
        .as_deref()
        .map(|e| {
            Email::parse(e).map_err(|_| {
                FunctionError::validation(
                    "updates.contact_email",
                    "Validation failed: invalid email format",
                )
            })
        })
        .transpose()?;
    let status = updates.status;

    let grant = ctx.cross_tenant()?;
    let (company, scope) = load_company(&mut ctx.db, &viewer, &grant, &args.company_id)?;
    let mut patch = Patch::new();
    if let Some(name) = name {
        // The slug stays: it is an identifier others may have stored or linked to.
        patch.insert("name".into(), Some(Value::from(name)));
    }
    if let Some(email) = &contact_email {
        let all = viewer.all_companies_scope(&grant, Permission::ManageAllCompanies)?;
        let holder = ctx
            .db
            .scoped(&all)
            .query("companies", "by_contact_email", |q| {
                q.eq("contact_email", email.as_str())
            })?
            .first()?;
        if holder.is_some_and(|h| h.id != company.id) {
            return Err(FunctionError::field(
                ErrorCode::Conflict,
                "updates.contact_email",
                format!(
                    "Company with contact email '{}' already exists",
                    email.as_str()
                ),
            ));
        }
        patch.insert("contact_email".into(), Some(Value::from(email.as_str())));
    }
    let old_status = str_field(&company, "status").to_string();
    patch.insert("updated_at".into(), Some(Value::from(now)));
    ctx.db.scoped(&scope).patch(&company.id, patch)?;
    if let Some(status) = status.filter(|s| *s != old_status) {
        change_status(ctx, &viewer, &company.id, &scope, &old_status, &status, now)?;
    }
    let updated = ctx.db.scoped(&scope).get(&company.id)?;
    company_row(&updated.ok_or_else(company_not_found)?)
}

/// Sets a company's status, audited; suspending also ends its users' sessions. The caller has
/// checked that the viewer may change it.
pub(super) fn change_status(
    ctx: &mut MutationCtx<'_>,
    viewer: &Viewer,
    company: &DocumentId,
    scope: &Scope,
    old_status: &str,
    status: &str,
    now: f64,
) -> FnResult<()> {
    let mut patch = Patch::new();
    patch.insert("status".into(), Some(Value::from(status)));
    patch.insert("updated_at".into(), Some(Value::from(now)));
    ctx.db.scoped(scope).patch(company, patch)?;
    let ended = if status == "suspended" {
        end_company_sessions(ctx, scope)?
    } else {
        0
    };
    let ended = ended.to_string();
    let entry = Entry {
        event: Event::CompanyStatusChanged,
        actor: Some(&viewer.user_id),
        target: Some(company.encode()),
        company: Some(company),
        details: &[
            ("from", old_status),
            ("to", status),
            ("sessions_ended", &ended),
        ],
    };
    audit::record_by(&mut ctx.db, now, ctx.request_id.as_str(), viewer, entry)
}

/// Ends every session of the scope's company's users; returns how many ended.
fn end_company_sessions(ctx: &mut MutationCtx<'_>, scope: &Scope) -> FnResult<usize> {
    let users: Vec<DocumentId> = ctx
        .db
        .scoped(scope)
        .query("users", "by_company", |q| q)?
        .collect()?
        .into_iter()
        .map(|u| u.id)
        .collect();
    let mut ended = 0;
    for user in &users {
        ended += sessions::end_all(&mut ctx.db, user, None)?;
    }
    Ok(ended)
}
